"""The client layer's exceptions, and the parsers that turn AWS error bodies into them.

Tree::

    AWSError
    ├── ConfigurationError          bad argument or environment value, raised before any request
    │   ├── InvalidS3KeyError       a key httpx cannot address faithfully (``.`` / ``..`` segments)
    │   ├── InvalidRequestError     the HTTP stack refused to send the request as built (never retried)
    │   ├── SessionClosedError      a client used, or built, on an `HTTPSession` that is closed
    │   └── PartialCredentialsError (also a CredentialsError)
    ├── CredentialsError            no credentials, or a source that failed
    │   ├── NoCredentialsError      nothing found; says where we looked
    │   ├── PartialCredentialsError a key without its secret (or the reverse)
    │   ├── CredentialsExpiredError credentials whose stated expiration has passed; nothing is sent
    │   ├── CredentialSourceError   a configured source failed (HTTP error, bad body, exit code)
    │   ├── UnsupportedCredentialSourceError  a profile needs SSO / assume-role, which we do not do
    │   └── ProfileNotFoundError    AWS_PROFILE (or an argument) names a profile no file defines
    ├── TransportError              no usable HTTP response (the request may or may not have run)
    │   ├── ConnectError
    │   └── RequestTimeoutError     connect, read, write or pool timeout
    │       └── DeadlineExceededError  the operation's total deadline passed, across its attempts
    └── ServiceError                AWS answered with an error: code, message, status, request id
        ├── CredentialsRejectedError  AWS refused the credentials (bad signature, unknown key, token)
        ├── MalformedResponseError  a body we could not parse (truncated, not JSON, not XML)
        ├── SQSError
        │   ├── QueueDoesNotExistError
        │   ├── ReceiptHandleIsInvalidError
        │   ├── BatchRequestTooLongError
        │   └── SQSCredentialsRejectedError (also a CredentialsRejectedError)
        └── S3Error
            ├── NoSuchBucketError
            ├── NoSuchKeyError
            └── S3CredentialsRejectedError (also a CredentialsRejectedError)

Nothing in this module, nor any message it builds, includes a secret or session token: messages are made
from the response body and the operation name only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, NamedTuple
from xml.etree import ElementTree

import orjson

__all__ = [
    "AWSError",
    "BatchRequestTooLongError",
    "ConfigurationError",
    "ConnectError",
    "CredentialSourceError",
    "CredentialsError",
    "CredentialsExpiredError",
    "CredentialsRejectedError",
    "DeadlineExceededError",
    "InvalidRequestError",
    "InvalidS3KeyError",
    "MalformedResponseError",
    "NoCredentialsError",
    "NoSuchBucketError",
    "NoSuchKeyError",
    "PartialCredentialsError",
    "ProfileNotFoundError",
    "QueueDoesNotExistError",
    "ReceiptHandleIsInvalidError",
    "RequestTimeoutError",
    "S3CredentialsRejectedError",
    "S3Error",
    "SQSCredentialsRejectedError",
    "SQSError",
    "ServiceError",
    "SessionClosedError",
    "TransportError",
    "UnsupportedCredentialSourceError",
]


class AWSError(Exception):
    """Base of every error raised by ``taskiq_sqs_http.aws``."""


class ConfigurationError(AWSError, ValueError):
    """An argument or environment value is invalid; raised before any network call."""


class InvalidS3KeyError(ConfigurationError):
    """An S3 key that cannot be sent as written (httpx would rewrite it to another object)."""


class InvalidRequestError(ConfigurationError):
    """The HTTP stack refused to send the request as built (an illegal header name or value).

    Nothing reached the network and the same request would be refused again, so it is never retried.
    """

    def __init__(self, message: str, *, operation: str = "") -> None:
        self.operation = operation
        super().__init__(f"{operation}: {message}" if operation else message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_with_operation, (type(self), str(self), self.operation))


class SessionClosedError(ConfigurationError):
    """A client was built on, or sent through, an `HTTPSession` that its owner has closed."""


class CredentialsError(AWSError):
    """Credentials could not be obtained."""


class NoCredentialsError(CredentialsError):
    """No provider in the chain had credentials."""

    def __init__(self, looked_in: Iterable[str]) -> None:
        self.looked_in = list(looked_in)
        super().__init__(
            "no AWS credentials found; looked in: "
            + "; ".join(self.looked_in)
            + ". Pass aws_access_key_id/aws_secret_access_key, or configure one of these sources."
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.looked_in,))


class PartialCredentialsError(CredentialsError, ConfigurationError):
    """A source holds half a key pair: an error, never a silent fall-through to another identity."""

    def __init__(self, detail: str, *, source: str) -> None:
        self.source = source
        self.detail = detail
        super().__init__(f"incomplete credentials from {source}: {detail}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_with_source, (type(self), self.detail, self.source))


class CredentialsExpiredError(CredentialsError):
    """Credentials whose stated expiration has passed: refused locally instead of signing a request
    that AWS would answer with a less helpful ExpiredToken."""


class CredentialSourceError(CredentialsError):
    """A source that is configured failed; the chain stops here instead of trying another identity.

    Falling through to, say, instance metadata after the container endpoint failed would silently
    run with a different role, which is worse than failing.
    """

    def __init__(self, detail: str, *, source: str) -> None:
        self.source = source
        self.detail = detail
        super().__init__(f"cannot get credentials from {source}: {detail}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_with_source, (type(self), self.detail, self.source))


class UnsupportedCredentialSourceError(CredentialsError):
    """The profile asks for a feature this client does not implement (SSO, assume-role chains).

    Raised rather than skipped: skipping would pick up some other identity the user did not mean.
    """

    def __init__(self, feature: str, *, profile: str, hint: str = "") -> None:
        self.feature = feature
        self.profile = profile
        super().__init__(
            f"profile {profile!r} uses {feature}, which taskiq_sqs_http does not support"
            + (f"; {hint}" if hint else "")
        )


class ProfileNotFoundError(CredentialsError):
    """The profile chosen by AWS_PROFILE / AWS_DEFAULT_PROFILE or in code exists in neither file."""

    def __init__(self, profile: str, *, chosen_by: str, looked_in: Iterable[str]) -> None:
        self.profile = profile
        self.looked_in = list(looked_in)
        super().__init__(f"profile {profile!r} (from {chosen_by}) not found in " + ", ".join(self.looked_in))


def _rebuild_with_source(cls: type[Any], detail: str, source: str) -> Any:
    return cls(detail, source=source)


def _rebuild_with_operation(cls: type[AWSError], message: str, operation: str) -> AWSError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    setattr(error, "operation", operation)  # noqa: B010 - every class rebuilt here defines it
    return error


class TransportError(AWSError):
    """The request did not get an HTTP response; it may or may not have reached AWS."""

    def __init__(self, message: str, *, operation: str = "") -> None:
        self.operation = operation
        super().__init__(f"{operation}: {message}" if operation else message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_with_operation, (type(self), str(self), self.operation))


class ConnectError(TransportError):
    """The connection could not be opened (so the request certainly did not run)."""


class RequestTimeoutError(TransportError):
    """Connect, read, write or pool timeout of one attempt."""


class DeadlineExceededError(RequestTimeoutError):
    """The operation's total deadline (``Timeouts.total``, plus the wait time of a long poll) passed.

    Raised instead of starting or finishing another attempt, so a dead endpoint costs the caller one
    deadline, not ``max_attempts`` read timeouts.
    """

    def __init__(self, *, operation: str, deadline: float, attempts: int, last_error: str = "") -> None:
        self.deadline = deadline
        self.attempts = attempts
        self.last_error = last_error
        plural = "s" if attempts != 1 else ""
        detail = f"; last error: {last_error}" if last_error else ""
        super().__init__(
            f"no answer within the {deadline:g} s deadline ({attempts} attempt{plural}){detail}",
            operation=operation,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_deadline,
            (type(self), self.operation, self.deadline, self.attempts, self.last_error),
        )


def _rebuild_deadline(
    cls: type[DeadlineExceededError], operation: str, deadline: float, attempts: int, last_error: str
) -> DeadlineExceededError:
    return cls(operation=operation, deadline=deadline, attempts=attempts, last_error=last_error)


class ServiceError(AWSError):
    """AWS answered with an error response."""

    # Appended to the message: what the caller should check, for classes that know it.
    hint: ClassVar[str] = ""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int,
        request_id: str | None = None,
        operation: str = "",
        query_error_code: str | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.status = status
        self.request_id = request_id
        self.operation = operation
        self.query_error_code = query_error_code
        prefix = f"{operation} failed: " if operation else ""
        super().__init__(
            f"{prefix}{code} (HTTP {status}): {message}"
            + (f" [request id {request_id}]" if request_id else "")
            + (f". {self.hint}" if self.hint else "")
        )

    @property
    def codes_seen(self) -> frozenset[str]:
        """The error code and, when SQS sent one, the Query-protocol code of the same error."""
        return frozenset(c for c in (self.code, self.query_error_code) if c)

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_service_error,
            (
                type(self),
                self.code,
                self.message,
                self.status,
                self.request_id,
                self.operation,
                self.query_error_code,
            ),
        )


def _rebuild_service_error(
    cls: type[ServiceError],
    code: str,
    message: str,
    status: int,
    request_id: str | None,
    operation: str,
    query_error_code: str | None,
) -> ServiceError:
    return cls(
        code,
        message,
        status=status,
        request_id=request_id,
        operation=operation,
        query_error_code=query_error_code,
    )


class CredentialsRejectedError(ServiceError):
    """AWS refused the credentials the request was signed with: wrong secret, unknown key id, or a
    session token that is invalid or expired. Retrying with the same credentials cannot succeed."""

    codes: ClassVar[tuple[str, ...]] = (
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidToken",
        "ExpiredToken",
        "ExpiredTokenException",
        "TokenRefreshRequired",
        "MissingAuthenticationToken",
        "MissingAuthenticationTokenException",
        "AuthFailure",
    )
    hint = (
        "AWS rejected the credentials: the access key id is unknown, the secret does not match it, "
        "or the session token is invalid or expired. Check which credentials the client uses "
        "(its describe() names the source) and that they belong to this account and region"
    )


class MalformedResponseError(ServiceError):
    """A response body we could not parse; carries the status so retry rules still apply."""


class SQSError(ServiceError):
    """An error answered by SQS."""

    codes: ClassVar[tuple[str, ...]] = ()


class QueueDoesNotExistError(SQSError):
    """SQS has no queue by this name or URL (in this account and region)."""

    codes = ("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue")


class ReceiptHandleIsInvalidError(SQSError):
    """The receipt handle no longer names an in-flight receipt (see `is_stale_receipt_handle`)."""

    codes = (
        "ReceiptHandleIsInvalid",
        "ReceiptHandleIsInvalidException",
        "InvalidReceiptHandle",
        "MessageNotInflight",
        "AWS.SimpleQueueService.MessageNotInflight",
    )


class BatchRequestTooLongError(SQSError):
    """A batch call whose entries add up to more than SQS accepts in one request (1 MiB)."""

    codes = ("BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong")


class SQSCredentialsRejectedError(CredentialsRejectedError, SQSError):
    """`CredentialsRejectedError` answered by SQS."""

    codes = CredentialsRejectedError.codes


class S3Error(ServiceError):
    """An error answered by S3."""

    codes: ClassVar[tuple[str, ...]] = ()


class NoSuchBucketError(S3Error):
    """The bucket does not exist: a configuration error, never "no such object"."""

    codes = ("NoSuchBucket",)


class NoSuchKeyError(S3Error):
    """The bucket exists but the object does not."""

    codes = ("NoSuchKey",)


class S3CredentialsRejectedError(CredentialsRejectedError, S3Error):
    """`CredentialsRejectedError` answered by S3."""

    codes = CredentialsRejectedError.codes


_SQS_ERRORS: dict[str, type[SQSError]] = {
    code: cls
    for cls in (
        QueueDoesNotExistError,
        ReceiptHandleIsInvalidError,
        BatchRequestTooLongError,
        SQSCredentialsRejectedError,
    )
    for code in cls.codes
}
_S3_ERRORS: dict[str, type[S3Error]] = {
    code: cls for cls in (NoSuchBucketError, NoSuchKeyError, S3CredentialsRejectedError) for code in cls.codes
}


class _XMLError(NamedTuple):
    code: str
    message: str
    request_id: str | None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _xml_error(body: bytes) -> _XMLError | None:
    """Code, message and request id of an XML error body, namespaced or not.

    Two shapes: S3's ``<Error><Code>...`` and the Query protocol's
    ``<ErrorResponse><Error><Code>...</Error><RequestId>...``. None when the body is not XML or has no code.
    """
    try:
        root = ElementTree.fromstring(body)  # noqa: S314 - AWS response, no entity expansion in etree
    except ElementTree.ParseError:
        return None
    error = root if _local(root.tag) == "Error" else None
    if error is None:
        error = next((e for e in root.iter() if _local(e.tag) == "Error"), None)
    if error is None:
        return None
    fields = {_local(child.tag): (child.text or "").strip() for child in error}
    if not fields.get("Code"):
        return None
    request_id = fields.get("RequestId") or next(
        ((e.text or "").strip() for e in root.iter() if _local(e.tag) == "RequestId"), None
    )
    return _XMLError(fields["Code"], fields.get("Message", ""), request_id or None)


def _short_json_code(raw: str) -> str:
    """``com.amazonaws.sqs#QueueDoesNotExist:http://...`` -> ``QueueDoesNotExist``."""
    code = raw.split(":", 1)[0]
    return code.rsplit("#", 1)[-1]


def _sqs_class(code: str, query_code: str | None) -> type[SQSError]:
    return _SQS_ERRORS.get(code) or (_SQS_ERRORS.get(query_code) if query_code else None) or SQSError


def parse_sqs_error(status: int, headers: dict[str, str], body: bytes, operation: str) -> ServiceError:
    """Build the error for a JSON 1.0 error response; never raises itself.

    Some endpoints (proxies, emulators, older regional fleets) answer a JSON-protocol request with a
    Query-protocol XML body; its code is used rather than reporting a malformed response.
    """
    request_id = headers.get("x-amzn-requestid") or headers.get("x-amz-request-id")
    query_code: str | None = None
    query_header = headers.get("x-amzn-query-error")
    if query_header:
        query_code = query_header.split(";", 1)[0] or None
    try:
        data: Any = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        xml = _xml_error(body) if body.lstrip().startswith(b"<") else None
        if xml is None:
            return MalformedResponseError(
                "MalformedResponse",
                f"error response is neither JSON nor an XML error (first bytes: {body[:80]!r})",
                status=status,
                request_id=request_id,
                operation=operation,
                query_error_code=query_code,
            )
        return _sqs_class(xml.code, query_code)(
            xml.code,
            xml.message,
            status=status,
            request_id=request_id or xml.request_id,
            operation=operation,
            query_error_code=query_code,
        )
    fields: dict[str, Any] = data  # pyright: ignore[reportUnknownVariableType]
    raw_type = fields.get("__type") or fields.get("code") or ""
    code = _short_json_code(str(raw_type)) if raw_type else (query_code or f"HTTP{status}")
    message = str(fields.get("message") or fields.get("Message") or "")
    return _sqs_class(code, query_code)(
        code,
        message,
        status=status,
        request_id=request_id,
        operation=operation,
        query_error_code=query_code,
    )


def parse_s3_error(
    status: int, headers: dict[str, str], body: bytes, operation: str, *, head: bool = False
) -> ServiceError:
    """Build the error for an S3 REST-XML error response (HEAD errors have no body)."""
    request_id = headers.get("x-amz-request-id")
    code = str(status)
    message = ""
    if body and not head:
        xml = _xml_error(body)
        if xml is None:
            return MalformedResponseError(
                "MalformedResponse",
                f"error response is not an XML error (first bytes: {body[:80]!r})",
                status=status,
                request_id=request_id,
                operation=operation,
            )
        code, message = xml.code, xml.message
        request_id = xml.request_id or request_id
    elif status == 404:
        message = "Not Found"
    elif status == 403:
        message = "Forbidden"
    cls = _S3_ERRORS.get(code, S3Error)
    return cls(code, message, status=status, request_id=request_id, operation=operation)
