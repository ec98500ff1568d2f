"""The lean async AWS client: SigV4, credentials, SQS (JSON 1.0) and S3 (REST) on one httpx pool.

This package never imports taskiq, so it can be used and tested on its own::

    from taskiq_sqs_http.aws import HTTPSession, SQSClient, S3Client

    async with HTTPSession() as http:
        async with SQSClient(session=http) as sqs, S3Client(session=http) as s3:
            url = await sqs.get_queue_url("jobs")
            await sqs.send_message(url, "hello")
"""

from ._classify import is_permanent_request_error, is_stale_receipt_handle, is_transient
from ._credentials import (
    CredentialProvider,
    Credentials,
    CredentialsLike,
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
    CredentialsExpiredError,
    CredentialSourceError,
    CredentialsRejectedError,
    DeadlineExceededError,
    InvalidRequestError,
    InvalidS3KeyError,
    MalformedResponseError,
    NoCredentialsError,
    NoSuchBucketError,
    NoSuchKeyError,
    PartialCredentialsError,
    ProfileNotFoundError,
    QueueDoesNotExistError,
    ReceiptHandleIsInvalidError,
    RequestTimeoutError,
    S3CredentialsRejectedError,
    S3Error,
    ServiceError,
    SessionClosedError,
    SQSCredentialsRejectedError,
    SQSError,
    TransportError,
    UnsupportedCredentialSourceError,
)
from ._http import HTTPSession, Timeouts
from ._providers import (
    ChainCredentialProvider,
    ContainerCredentialProvider,
    InstanceMetadataCredentialProvider,
    ProfileCredentialProvider,
    WebIdentityCredentialProvider,
    default_credential_provider,
)
from ._refresh import RefreshableCredentialProvider, RefreshSettings
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
    "ChainCredentialProvider",
    "ChangeVisibilityEntry",
    "ConfigurationError",
    "ConnectError",
    "ContainerCredentialProvider",
    "CredentialProvider",
    "CredentialSourceError",
    "Credentials",
    "CredentialsError",
    "CredentialsExpiredError",
    "CredentialsLike",
    "CredentialsRejectedError",
    "DeadlineExceededError",
    "DeleteMessageEntry",
    "DeleteObjectsResult",
    "EnvironmentCredentialProvider",
    "GetObjectResult",
    "HTTPSession",
    "HeadObjectResult",
    "InstanceMetadataCredentialProvider",
    "InvalidRequestError",
    "InvalidS3KeyError",
    "MalformedResponseError",
    "Message",
    "MessageAttributeValue",
    "NoCredentialsError",
    "NoSuchBucketError",
    "NoSuchKeyError",
    "PartialCredentialsError",
    "ProfileCredentialProvider",
    "ProfileNotFoundError",
    "QueueDoesNotExistError",
    "ReceiptHandleIsInvalidError",
    "RefreshSettings",
    "RefreshableCredentialProvider",
    "RequestTimeoutError",
    "RetryPolicy",
    "RetryQuota",
    "S3Client",
    "S3CredentialsRejectedError",
    "S3Error",
    "SQSClient",
    "SQSCredentialsRejectedError",
    "SQSError",
    "SendMessageBatchResult",
    "SendMessageEntry",
    "SendMessageResult",
    "ServerSideEncryption",
    "ServiceError",
    "SessionClosedError",
    "SigV4Signer",
    "StaticCredentialProvider",
    "Timeouts",
    "TransportError",
    "UnsupportedCredentialSourceError",
    "WebIdentityCredentialProvider",
    "as_provider",
    "default_credential_provider",
    "is_permanent_request_error",
    "is_stale_receipt_handle",
    "is_transient",
    "resolve_endpoint",
    "resolve_region",
]
