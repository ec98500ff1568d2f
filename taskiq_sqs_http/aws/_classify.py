"""What a failure means: the one place that sorts AWS error codes and client errors into kinds.

The retry loop, the batchers, the broker and the result backend all need the same answers — is this worth
trying again later, is this receipt handle simply stale, will this request never succeed as sent — so the
code lists live here once and every layer asks these predicates.
"""

from __future__ import annotations

import asyncio

from ._errors import (
    ConfigurationError,
    CredentialsError,
    CredentialSourceError,
    CredentialsRejectedError,
    ReceiptHandleIsInvalidError,
    ServiceError,
    TransportError,
)

__all__ = [
    "CLOCK_SKEW_CODES",
    "EXPIRED_TOKEN_CODES",
    "PERMANENT_REQUEST_CODES",
    "STALE_RECEIPT_HANDLE_CODES",
    "THROTTLING_CODES",
    "TRANSIENT_CODES",
    "is_permanent_request_error",
    "is_stale_receipt_handle",
    "is_throttling",
    "is_transient",
    "throttling_hint",
]

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "AWS.SimpleQueueService.RequestThrottled",
        "KmsThrottled",
        # ReceiveMessage on a queue holding the maximum number of in-flight messages: it clears as
        # consumers delete or release messages, so it is waited out like throttling.
        "OverLimit",
        "AWS.SimpleQueueService.OverLimit",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "IDPCommunicationError",
    }
)
# Codes that may mean our clock is off; the client re-signs once with the server's clock before
# treating them as anything else.
CLOCK_SKEW_CODES = frozenset(
    {
        "RequestTimeTooSkewed",
        "RequestExpired",
        "RequestInTheFuture",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "AuthFailure",
    }
)
# Codes after which temporary credentials are fetched again once before giving up.
EXPIRED_TOKEN_CODES = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "RequestExpiredException", "TokenRefreshRequired"}
)
STALE_RECEIPT_HANDLE_CODES = frozenset(ReceiptHandleIsInvalidError.codes)
# Codes for which a whole request (not one entry of a batch) can never succeed as sent.
PERMANENT_REQUEST_CODES = frozenset(
    {
        "QueueDoesNotExist",
        "AWS.SimpleQueueService.NonExistentQueue",
        "AccessDenied",
        "AccessDeniedException",
        "InvalidParameterValue",
        "InvalidAddress",
        "InvalidSecurity",
        "KmsAccessDenied",
        "KmsDisabled",
        "KmsInvalidKeyUsage",
        "KmsInvalidState",
        "KmsNotFound",
        "KmsOptInRequired",
    }
)

_THROTTLING_HINTS = {
    "OverLimit": "the queue holds the maximum number of in-flight messages (received but not yet "
    "deleted or made visible again); it clears as consumers finish their messages",
    "KmsThrottled": "KMS is throttling the queue's encryption key",
}


def is_throttling(error: BaseException) -> bool:
    return isinstance(error, ServiceError) and bool(error.codes_seen & THROTTLING_CODES)


def throttling_hint(error: ServiceError) -> str:
    """What a throttling answer means, for the log line that announces the wait."""
    for code in (error.code, error.query_error_code or ""):
        hint = _THROTTLING_HINTS.get(code.removeprefix("AWS.SimpleQueueService."))
        if hint:
            return hint
    return "the service asks for fewer requests"


def is_transient(exc: BaseException) -> bool:
    """True when trying again later may succeed without anyone changing anything.

    Transient: 5xx answers (except 501), 429 and throttling (including SQS ``OverLimit``), timeouts,
    connection errors, and a credential source that failed to answer. Not transient: missing queues,
    buckets and keys, access denied, rejected or missing credentials, any other 4xx, bad arguments.
    """
    if isinstance(exc, CredentialsRejectedError):
        return False
    if isinstance(exc, ServiceError):
        if exc.codes_seen & (THROTTLING_CODES | TRANSIENT_CODES):
            return True
        return exc.status == 429 or (exc.status >= 500 and exc.status != 501)
    if isinstance(exc, (TransportError, CredentialSourceError)):
        return True
    if isinstance(exc, (ConfigurationError, CredentialsError)):
        return False
    return isinstance(exc, (TimeoutError, asyncio.TimeoutError, ConnectionError))


def is_stale_receipt_handle(code: str) -> bool:
    """True for the codes SQS gives when a receipt handle no longer names an in-flight receipt.

    The message was deleted, or its visibility lapsed and it was received again (possibly elsewhere):
    acking, extending or releasing it through this handle is pointless, and not an error worth raising.
    """
    return code in STALE_RECEIPT_HANDLE_CODES


def is_permanent_request_error(exc: BaseException) -> bool:
    """True when the request can never succeed as sent, so retrying it only delays the error.

    A missing queue, access denied, an invalid parameter, a KMS key that cannot be used, credentials
    AWS rejects, and anything refused before sending (bad arguments, a closed session).
    """
    if isinstance(exc, CredentialsRejectedError):
        return True
    if isinstance(exc, ServiceError):
        return bool(exc.codes_seen & PERMANENT_REQUEST_CODES)
    if isinstance(exc, CredentialSourceError):
        return False
    return isinstance(exc, (ConfigurationError, CredentialsError))
