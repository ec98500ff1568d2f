"""The client layer's exceptions, and the parsers that turn AWS error bodies into them.

Tree::

    AWSError
    ├── ConfigurationError          bad argument or environment value, raised before any request
    │   └── InvalidS3KeyError       a key httpx cannot address faithfully (``.`` / ``..`` segments)
    ├── CredentialsError            no credentials, or a source that failed
    │   ├── NoCredentialsError      nothing found; says where we looked
    │   ├── PartialCredentialsError a key without its secret (or the reverse)
    │   ├── CredentialSourceError   a configured source failed (HTTP error, bad body, exit code)
    │   ├── UnsupportedCredentialSourceError  a profile needs SSO / assume-role, which we do not do
    │   └── ProfileNotFoundError    AWS_PROFILE (or an argument) names a profile no file defines
    ├── TransportError              no usable HTTP response (the request may or may not have run)
    │   ├── ConnectError
    │   └── TimeoutError
    └── ServiceError                AWS answered with an error: code, message, status, request id
        ├── MalformedResponseError  a body we could not parse (truncated, not JSON, not XML)
        ├── SQSError
        │   ├── QueueDoesNotExistError
        │   ├── ReceiptHandleIsInvalidError
        │   └── BatchRequestTooLongError ...
        └── S3Error
            ├── NoSuchBucketError
            └── NoSuchKeyError

Nothing in this module, nor any message it builds, includes a secret or session token: messages are made
from the response body and the operation name only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar
from xml.etree import ElementTree

import orjson

__all__ = [
    "AWSError",
    "BatchRequestTooLongError",
    "ConfigurationError",
    "ConnectError",
    "CredentialSourceError",
    "CredentialsError",
    "InvalidS3KeyError",
    "MalformedResponseError",
    "NoCredentialsError",
    "NoSuchBucketError",
    "NoSuchKeyError",
    "PartialCredentialsError",
    "ProfileNotFoundError",
    "QueueDoesNotExistError",
    "ReceiptHandleIsInvalidError",
    "S3Error",
    "SQSError",
    "ServiceError",
    "TimeoutError",
    "TransportError",
    "UnsupportedCredentialSourceError",
]


class AWSError(Exception):
    """Base of every error raised by ``taskiq_sqs_http.aws``."""


class ConfigurationError(AWSError, ValueError):
    """An argument or environment value is invalid; raised before any network call."""


class InvalidS3KeyError(ConfigurationError):
    """An S3 key that cannot be sent as written (httpx would rewrite it to another object)."""


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


class PartialCredentialsError(CredentialsError):
    """A source holds half a key pair: an error, never a silent fall-through to another identity."""

    def __init__(self, detail: str, *, source: str) -> None:
        self.source = source
        super().__init__(f"incomplete credentials from {source}: {detail}")


class CredentialSourceError(CredentialsError):
    """A source that is configured failed; the chain stops here instead of trying another identity.

    Falling through to, say, instance metadata after the container endpoint failed would silently
    run with a different role, which is worse than failing.
    """

    def __init__(self, detail: str, *, source: str) -> None:
        self.source = source
        self.detail = detail
        super().__init__(f"cannot get credentials from {source}: {detail}")


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


class TransportError(AWSError):
    """The request did not get an HTTP response; it may or may not have reached AWS."""

    def __init__(self, message: str, *, operation: str = "") -> None:
        self.operation = operation
        super().__init__(f"{operation}: {message}" if operation else message)


class ConnectError(TransportError):
    """The connection could not be opened (so the request certainly did not run)."""


class TimeoutError(TransportError):
    """Connect, read, write or pool timeout."""


class ServiceError(AWSError):
    """AWS answered with an error response."""

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
        )

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


class MalformedResponseError(ServiceError):
    """A response body we could not parse; carries the status so retry rules still apply."""


class SQSError(ServiceError):
    """An error answered by SQS."""

    codes: ClassVar[tuple[str, ...]] = ()


class QueueDoesNotExistError(SQSError):
    codes = ("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue")


class ReceiptHandleIsInvalidError(SQSError):
    codes = ("ReceiptHandleIsInvalid", "InvalidReceiptHandle", "MessageNotInflight")


class BatchRequestTooLongError(SQSError):
    codes = ("BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong")


class S3Error(ServiceError):
    """An error answered by S3."""

    codes: ClassVar[tuple[str, ...]] = ()


class NoSuchBucketError(S3Error):
    codes = ("NoSuchBucket",)


class NoSuchKeyError(S3Error):
    codes = ("NoSuchKey",)


_SQS_ERRORS: dict[str, type[SQSError]] = {
    code: cls
    for cls in (QueueDoesNotExistError, ReceiptHandleIsInvalidError, BatchRequestTooLongError)
    for code in cls.codes
}
_S3_ERRORS: dict[str, type[S3Error]] = {
    code: cls for cls in (NoSuchBucketError, NoSuchKeyError) for code in cls.codes
}


def _short_json_code(raw: str) -> str:
    """``com.amazonaws.sqs#QueueDoesNotExist:http://...`` -> ``QueueDoesNotExist``."""
    code = raw.split(":", 1)[0]
    return code.rsplit("#", 1)[-1]


def parse_sqs_error(status: int, headers: dict[str, str], body: bytes, operation: str) -> ServiceError:
    """Build the error for a JSON 1.0 error response; never raises itself."""
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
        return MalformedResponseError(
            "MalformedResponse",
            f"error response is not a JSON object (first bytes: {body[:80]!r})",
            status=status,
            request_id=request_id,
            operation=operation,
        )
    fields: dict[str, Any] = data  # pyright: ignore[reportUnknownVariableType]
    raw_type = fields.get("__type") or fields.get("code") or ""
    code = _short_json_code(str(raw_type)) if raw_type else (query_code or f"HTTP{status}")
    message = str(fields.get("message") or fields.get("Message") or "")
    cls = _SQS_ERRORS.get(code) or (_SQS_ERRORS.get(query_code) if query_code else None) or SQSError
    return cls(
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
        try:
            root = ElementTree.fromstring(body)  # noqa: S314 - AWS response, no entity expansion in etree
        except ElementTree.ParseError:
            return MalformedResponseError(
                "MalformedResponse",
                f"error response is not XML (first bytes: {body[:80]!r})",
                status=status,
                request_id=request_id,
                operation=operation,
            )
        code = root.findtext("Code") or code
        message = root.findtext("Message") or ""
        request_id = root.findtext("RequestId") or request_id
    elif status == 404:
        message = "Not Found"
    elif status == 403:
        message = "Forbidden"
    cls = _S3_ERRORS.get(code, S3Error)
    return cls(code, message, status=status, request_id=request_id, operation=operation)
