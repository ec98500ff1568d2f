"""Clients check their arguments when built, and the client layer's public surface and classification."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import taskiq_sqs_http.aws
import taskiq_sqs_http.aws.s3
import taskiq_sqs_http.aws.sqs
from taskiq_sqs_http.aws import (
    AWSError,
    ConfigurationError,
    ConnectError,
    CredentialSourceError,
    CredentialsRejectedError,
    DeadlineExceededError,
    InvalidRequestError,
    NoCredentialsError,
    NoSuchBucketError,
    NoSuchKeyError,
    RequestTimeoutError,
    RetryPolicy,
    S3Client,
    ServiceError,
    SessionClosedError,
    SQSClient,
    SQSError,
    is_permanent_request_error,
    is_stale_receipt_handle,
    is_transient,
)

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize("client", [SQSClient, S3Client])
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"endpoint_url": "not a url"},
            r"endpoint_url is 'not a url'; it must start with http:// or https://",
        ),
        ({"endpoint_url": "http://"}, r"endpoint_url is 'http://'; it has no host"),
        (
            {"endpoint_url": "http://host:99999"},
            r"endpoint_url is 'http://host:99999'; it is not a valid URL",
        ),
        ({"endpoint_url": 123}, r"endpoint_url must be str or None; got int \(123\)"),
        ({"region_name": "Bad Region"}, r"region_name is 'Bad Region'; expected an AWS region name"),
        ({"region_name": 5}, r"region_name must be str or None; got int"),
        ({"aws_access_key_id": "AKIAX"}, "aws_access_key_id is set but aws_secret_access_key is not"),
        ({"aws_secret_access_key": SECRET}, "aws_secret_access_key is set but aws_access_key_id is not"),
        (
            {"aws_access_key_id": "AKIAX", "aws_secret_access_key": 123},
            r"aws_secret_access_key must be a str",
        ),
        ({"verify": "yes"}, r"verify must be bool or None; got str"),
        ({"retry_policy": 3}, r"retry_policy must be RetryPolicy or None"),
        ({"credentials": "AKIA:secret"}, r"credentials: credentials must be Credentials"),
    ],
)
def test_bad_arguments_fail_at_construction_naming_the_parameter(
    client: type[SQSClient] | type[S3Client], kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match):
        client(**kwargs)


def test_a_secret_of_the_wrong_type_is_never_shown() -> None:
    with pytest.raises(ConfigurationError) as info:
        SQSClient(aws_access_key_id="AKIAX", aws_secret_access_key=987654321)  # type: ignore[arg-type]
    assert "987654321" not in str(info.value)
    assert "int (length 9)" in str(info.value)


def test_s3_client_parameters_are_typed_and_checked() -> None:
    with pytest.raises(ConfigurationError, match="force_path_style must be bool"):
        S3Client(force_path_style="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        S3Client(bucket="b")  # type: ignore[call-arg]


# -- classification -----------------------------------------------------------------------------------


def service_error(code: str, status: int = 400, cls: type[ServiceError] = ServiceError) -> ServiceError:
    return cls(code, "m", status=status)


@pytest.mark.parametrize(
    "error",
    [
        service_error("Whatever", 500),
        service_error("Whatever", 503),
        service_error("SlowDown", 503),
        service_error("Whatever", 429),
        service_error("ThrottlingException"),
        service_error("RequestThrottled"),
        service_error("OverLimit", 403),
        SQSError("X", "m", status=400, query_error_code="AWS.SimpleQueueService.OverLimit"),
        service_error("RequestTimeout"),
        ConnectError("refused"),
        RequestTimeoutError("slow"),
        DeadlineExceededError(operation="GetObject", deadline=1.0, attempts=3),
        CredentialSourceError("HTTP 503", source="container endpoint"),
        TimeoutError(),
        asyncio.TimeoutError(),
        ConnectionResetError(),
    ],
)
def test_transient_failures(error: BaseException) -> None:
    assert is_transient(error)
    assert not is_permanent_request_error(error)


@pytest.mark.parametrize(
    "error",
    [
        service_error("NoSuchKey", 404, NoSuchKeyError),
        service_error("NoSuchBucket", 404, NoSuchBucketError),
        service_error("AccessDenied", 403),
        service_error("SignatureDoesNotMatch", 403, CredentialsRejectedError),
        service_error("ExpiredToken", 400, CredentialsRejectedError),
        service_error("InvalidParameterValue"),
        service_error("Whatever", 400),
        service_error("NotImplemented", 501),
        ConfigurationError("bad"),
        InvalidRequestError("bad header"),
        SessionClosedError("closed"),
        NoCredentialsError(["environment"]),
        ValueError("x"),
    ],
)
def test_failures_that_are_not_transient(error: BaseException) -> None:
    assert not is_transient(error)


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        (service_error("QueueDoesNotExist"), True),
        (SQSError("X", "m", status=400, query_error_code="AWS.SimpleQueueService.NonExistentQueue"), True),
        (service_error("AccessDenied", 403), True),
        (service_error("InvalidParameterValue"), True),
        (service_error("KmsDisabled"), True),
        (service_error("KmsThrottled"), False),
        (service_error("SignatureDoesNotMatch", 403, CredentialsRejectedError), True),
        (ConfigurationError("bad"), True),
        (SessionClosedError("closed"), True),
        (service_error("Whatever", 500), False),
        (service_error("Throttling"), False),
        (ConnectError("refused"), False),
        (CredentialSourceError("HTTP 503", source="container endpoint"), False),
        (ValueError("x"), False),
    ],
)
def test_permanent_request_errors(error: BaseException, permanent: bool) -> None:
    assert is_permanent_request_error(error) is permanent


@pytest.mark.parametrize(
    ("code", "stale"),
    [
        ("ReceiptHandleIsInvalid", True),
        ("ReceiptHandleIsInvalidException", True),
        ("InvalidReceiptHandle", True),
        ("MessageNotInflight", True),
        ("AWS.SimpleQueueService.MessageNotInflight", True),
        ("QueueDoesNotExist", False),
        ("", False),
    ],
)
def test_stale_receipt_handles(code: str, stale: bool) -> None:
    assert is_stale_receipt_handle(code) is stale


def test_retry_policy_and_classification_agree() -> None:
    policy = RetryPolicy()
    assert policy.is_retryable(service_error("OverLimit", 403))
    assert not policy.is_retryable(service_error("SignatureDoesNotMatch", 403, CredentialsRejectedError))
    assert not policy.is_retryable(InvalidRequestError("bad header"))
    assert not policy.is_retryable(SessionClosedError("closed"))


# -- the public surface -------------------------------------------------------------------------------


# The public surface is pinned once, for every public module, in tests/unit/test_exported_members.py.


def test_public_names_users_need() -> None:
    aws = set(taskiq_sqs_http.aws.__all__)
    assert {
        "CredentialsLike",
        "ChainCredentialProvider",
        "ContainerCredentialProvider",
        "InstanceMetadataCredentialProvider",
        "ProfileCredentialProvider",
        "WebIdentityCredentialProvider",
        "RefreshableCredentialProvider",
        "RefreshSettings",
        "default_credential_provider",
        "is_transient",
        "is_stale_receipt_handle",
        "is_permanent_request_error",
        "RequestTimeoutError",
        "DeadlineExceededError",
    } <= aws
    assert "TimeoutError" not in aws  # the builtin is never shadowed
    assert issubclass(RequestTimeoutError, AWSError)
    sqs = taskiq_sqs_http.aws.sqs
    assert (sqs.MAX_DELAY_SECONDS, sqs.MAX_WAIT_TIME_SECONDS, sqs.MAX_VISIBILITY_TIMEOUT) == (900, 20, 43_200)
    assert sqs.MAX_MESSAGE_BYTES == sqs.MAX_BATCH_BYTES == 1_048_576
