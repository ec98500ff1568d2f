"""RetryPolicy classification and delays, the retry quota, and error parsing and pickling."""

from __future__ import annotations

import pickle

import pytest

from taskiq_sqs_http.aws import (
    ConfigurationError,
    ConnectError,
    MalformedResponseError,
    NoSuchKeyError,
    QueueDoesNotExistError,
    RequestTimeoutError,
    RetryPolicy,
    RetryQuota,
    S3Error,
    ServiceError,
    SQSError,
)
from taskiq_sqs_http.aws._errors import parse_s3_error, parse_sqs_error


def service_error(code: str, status: int = 400) -> ServiceError:
    return ServiceError(code, "m", status=status)


@pytest.mark.parametrize(
    "error",
    [
        service_error("Throttling"),
        service_error("ThrottlingException"),
        service_error("SlowDown", 503),
        service_error("RequestLimitExceeded"),
        service_error("RequestTimeout"),
        service_error("Whatever", 500),
        service_error("Whatever", 502),
        service_error("Whatever", 503),
        service_error("Whatever", 504),
        service_error("Whatever", 429),
        ConnectError("x"),
        RequestTimeoutError("x"),
    ],
)
def test_retry_policy_retries_transient(error: Exception) -> None:
    """Throttling, 5xx, 429, RequestTimeout and transport errors are retryable."""
    assert RetryPolicy().is_retryable(error)


@pytest.mark.parametrize(
    "error",
    [service_error("InvalidParameterValue"), service_error("AccessDenied", 403), ValueError("x")],
)
def test_retry_policy_does_not_retry_client_errors(error: Exception) -> None:
    """Sender faults and foreign exceptions are not retried."""
    assert not RetryPolicy().is_retryable(error)


def test_retry_policy_delays_are_capped_exponential_with_full_jitter() -> None:
    """delay = random * min(base * 2^(n-1), cap); throttling uses its own base."""
    policy = RetryPolicy(base_delay=0.1, throttling_base_delay=1.0, max_delay=5.0, random=lambda: 1.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.4, 0.8]
    assert policy.delay(10) == 5.0
    assert policy.delay(2, service_error("SlowDown", 503)) == 2.0
    half = RetryPolicy(random=lambda: 0.5)
    assert half.delay(1) == 0.025
    assert RetryPolicy.testing().delay(5, service_error("Throttling")) == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"max_attempts": 0}, "max_attempts is 0"), ({"base_delay": -1}, "base_delay is -1")],
)
def test_retry_policy_validates(kwargs: dict[str, float], match: str) -> None:
    """Out-of-range settings name the parameter, the value and the range."""
    with pytest.raises(ConfigurationError, match=match):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_retry_quota_spends_and_refills() -> None:
    """Retries spend tokens (timeouts more), successes refill, an empty bucket refuses."""
    quota = RetryQuota(capacity=12, retry_cost=5, timeout_cost=10)
    assert quota.acquire(service_error("Throttling")) == 5
    assert quota.acquire(RequestTimeoutError("x")) == 0  # 7 left, a timeout costs 10
    assert quota.acquire(service_error("Throttling")) == 5
    assert quota.acquire(service_error("Throttling")) == 0
    quota.release(5)
    assert quota.available == 7
    quota.release(100)
    assert quota.available == 12


def test_parse_sqs_error_variants() -> None:
    """Codes come from __type (prefix and suffix stripped) or the query header."""
    error = parse_sqs_error(
        400,
        {"x-amzn-requestid": "r1"},
        b'{"__type": "com.amazonaws.sqs#QueueDoesNotExist:http://internal", "message": "m"}',
        "GetQueueUrl",
    )
    assert isinstance(error, QueueDoesNotExistError) and error.request_id == "r1"
    error = parse_sqs_error(
        400, {"x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender"}, b"{}", "X"
    )
    assert isinstance(error, QueueDoesNotExistError)
    error = parse_sqs_error(500, {}, b"", "X")
    assert type(error) is SQSError and error.code == "HTTP500"
    assert isinstance(parse_sqs_error(500, {}, b"\xff\xfe", "X"), MalformedResponseError)


def test_parse_s3_error_variants() -> None:
    """XML errors, HEAD errors without a body, and broken XML."""
    body = b"<Error><Code>NoSuchKey</Code><Message>gone</Message><RequestId>r</RequestId></Error>"
    error = parse_s3_error(404, {}, body, "GetObject")
    assert isinstance(error, NoSuchKeyError) and error.message == "gone" and error.request_id == "r"
    head = parse_s3_error(403, {"x-amz-request-id": "h"}, b"", "HeadObject", head=True)
    assert type(head) is S3Error and head.code == "403" and head.request_id == "h"
    assert parse_s3_error(404, {}, b"", "HeadObject", head=True).message == "Not Found"
    assert isinstance(parse_s3_error(400, {}, b"<Err", "X"), MalformedResponseError)


def test_service_errors_pickle() -> None:
    """Errors cross process boundaries (taskiq results) intact."""
    error = QueueDoesNotExistError("QueueDoesNotExist", "m", status=400, request_id="r", operation="Op")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is QueueDoesNotExistError
    assert (copy.code, copy.status, copy.request_id, str(copy)) == (
        "QueueDoesNotExist",
        400,
        "r",
        str(error),
    )
