"""The lean async AWS client: SigV4, credentials, SQS (JSON 1.0) and S3 (REST) on one httpx pool.

This package never imports taskiq, so it can be used and tested on its own::

    from taskiq_sqs_http.aws import HTTPSession, SQSClient, S3Client

    async with HTTPSession() as http:
        async with SQSClient(session=http) as sqs, S3Client(session=http) as s3:
            url = await sqs.get_queue_url("jobs")
            await sqs.send_message(url, "hello")
"""

from ._credentials import (
    CredentialProvider,
    Credentials,
    EnvironmentCredentialProvider,
    StaticCredentialProvider,
    as_provider,
)
from ._endpoints import resolve_endpoint, resolve_region
from ._errors import (
    AWSError,
    BatchRequestTooLongError,
    ConfigurationError,
    ConnectError,
    CredentialsError,
    InvalidS3KeyError,
    MalformedResponseError,
    NoCredentialsError,
    NoSuchBucketError,
    NoSuchKeyError,
    PartialCredentialsError,
    QueueDoesNotExistError,
    ReceiptHandleIsInvalidError,
    S3Error,
    ServiceError,
    SQSError,
    TimeoutError,
    TransportError,
)
from ._http import HTTPSession, Timeouts
from ._retry import RetryPolicy, RetryQuota
from ._sigv4 import SigV4Signer
from .s3 import (
    DeleteObjectsResult,
    GetObjectResult,
    HeadObjectResult,
    S3Client,
    ServerSideEncryption,
)
from .sqs import (
    BatchResult,
    BatchResultError,
    ChangeVisibilityEntry,
    DeleteMessageEntry,
    Message,
    MessageAttributeValue,
    SendMessageBatchResult,
    SendMessageEntry,
    SendMessageResult,
    SQSClient,
)

__all__ = [
    "AWSError",
    "BatchRequestTooLongError",
    "BatchResult",
    "BatchResultError",
    "ChangeVisibilityEntry",
    "ConfigurationError",
    "ConnectError",
    "CredentialProvider",
    "Credentials",
    "CredentialsError",
    "DeleteMessageEntry",
    "DeleteObjectsResult",
    "EnvironmentCredentialProvider",
    "GetObjectResult",
    "HTTPSession",
    "HeadObjectResult",
    "InvalidS3KeyError",
    "MalformedResponseError",
    "Message",
    "MessageAttributeValue",
    "NoCredentialsError",
    "NoSuchBucketError",
    "NoSuchKeyError",
    "PartialCredentialsError",
    "QueueDoesNotExistError",
    "ReceiptHandleIsInvalidError",
    "RetryPolicy",
    "RetryQuota",
    "S3Client",
    "S3Error",
    "SQSClient",
    "SQSError",
    "SendMessageBatchResult",
    "SendMessageEntry",
    "SendMessageResult",
    "ServerSideEncryption",
    "ServiceError",
    "SigV4Signer",
    "StaticCredentialProvider",
    "TimeoutError",
    "Timeouts",
    "TransportError",
    "as_provider",
    "resolve_endpoint",
    "resolve_region",
]
