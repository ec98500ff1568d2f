"""The result backend's errors beyond taskiq-aio-sqs 2.1.1's, and the mapping from client-layer errors.

Every class is an `S3ResultBackendError`, so code written for 2.1.1 (``except S3ResultBackendError``) keeps
catching them; the subclasses say which of three different fixes applies:

- `ResultBucketMissingError`: configuration, the bucket does not exist (2.1.1 reported ``NoSuchBucket``
  too, never "result is missing").
- `ResultCredentialsError`: the credentials are wrong, expired or incomplete; permissions are not the
  problem, so advice about IAM actions would send the reader the wrong way.
- `ResultBackendUnavailableError`: transient (5xx, throttling, timeout, connection), left after the
  client's retries; the same call may succeed later.

`ResultAccessDeniedError` (403 AccessDenied) and `ResultIsMissingError` stay in `taskiq_sqs_http.exceptions`
with their 2.1.1 templates.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..aws import (
    AWSError,
    CredentialsError,
    CredentialsRejectedError,
    NoSuchBucketError,
    S3Error,
    ServiceError,
    is_transient,
)
from ..exceptions import ResultAccessDeniedError, S3ResultBackendError

__all__ = [
    "ResultBackendUnavailableError",
    "ResultBucketMissingError",
    "ResultCredentialsError",
    "S3Call",
    "is_missing_key",
    "map_error",
]


class ResultBucketMissingError(S3ResultBackendError):
    """The result bucket does not exist: a configuration error, not a missing result."""

    __template__ = (
        "The result bucket {bucket!r} does not exist (NoSuchBucket) at {endpoint}: create it, "
        "or pass create_bucket=True to S3Backend to create it at startup"
    )
    code: str | None = "NoSuchBucket"
    bucket: str
    endpoint: str


class ResultCredentialsError(S3ResultBackendError):
    """S3 rejected the credentials themselves (wrong secret, unknown key id, bad or expired token)."""

    __template__ = (
        "S3 rejected the credentials for {operation} on s3://{bucket}/{key} ({code}): {hint}. "
        "Using {source}; check aws_access_key_id, aws_secret_access_key and aws_session_token "
        "(or that source). This is not a missing IAM permission."
    )
    code: str | None = None
    operation: str
    bucket: str
    key: str
    hint: str
    source: str


class ResultBackendUnavailableError(S3ResultBackendError):
    """S3 stayed unavailable through every retry; nothing is wrong with the configuration."""

    __template__ = (
        "S3 {operation} on s3://{bucket}/{key} failed after retries with a transient error "
        "({cause}); S3 was unavailable, throttling or unreachable, and the call may succeed later"
    )
    code: str | None = None
    operation: str
    bucket: str
    key: str
    cause: str


# The codes S3 answers when the signature's key, secret or token is wrong, whatever the IAM policy.
_CREDENTIAL_HINTS: dict[str, str] = {
    "SignatureDoesNotMatch": "the secret access key does not belong to the access key id",
    "InvalidAccessKeyId": "the access key id is unknown to this endpoint (mistyped, deleted, or of "
    "another partition or emulator)",
    "InvalidToken": "the session token is malformed or does not belong to the access key id",
    "ExpiredToken": "the session token has expired; renew the temporary credentials",
    "TokenRefreshRequired": "the session token has expired; renew the temporary credentials",
}
# S3 names the bucket's region in these answers (301 for a HEAD, which has no body).
_WRONG_REGION_CODES = frozenset({"PermanentRedirect", "AuthorizationHeaderMalformed", "301"})


@dataclass(frozen=True, slots=True)
class S3Call:
    """One request of the backend, as its error message describes it."""

    operation: str
    bucket: str
    key: str
    permission: str
    """The IAM action that allows the request, named when S3 answers AccessDenied."""


def is_missing_key(error: S3Error) -> bool:
    """NoSuchKey, or a body-less 404 (HEAD, some proxies); never NoSuchBucket."""
    return error.code in ("NoSuchKey", "404") and not isinstance(error, NoSuchBucketError)


def map_error(
    error: AWSError, call: S3Call, *, endpoint: str, region: str, source: str
) -> S3ResultBackendError:
    """The backend error for a client-layer error; ``source`` describes where the credentials came from."""
    if isinstance(error, CredentialsError) and not is_transient(error):
        return ResultCredentialsError(
            code=type(error).__name__,
            operation=call.operation,
            bucket=call.bucket,
            key=call.key,
            hint=str(error),
            source=source,
        )
    if isinstance(error, ServiceError):
        if isinstance(error, CredentialsRejectedError) or error.code in _CREDENTIAL_HINTS:
            hint = _CREDENTIAL_HINTS.get(
                error.code, "AWS refused the credentials the request was signed with"
            )
            return ResultCredentialsError(
                code=error.code,
                operation=call.operation,
                bucket=call.bucket,
                key=call.key,
                hint=hint,
                source=source,
            )
        if error.code == "NoSuchBucket":
            return ResultBucketMissingError(bucket=call.bucket, endpoint=endpoint)
        if error.status == 301 or error.code in _WRONG_REGION_CODES:
            return S3ResultBackendError(
                code=f"{error.code}: bucket {call.bucket!r} is not in region {region!r}; set region_name "
                "(or AWS_REGION) to the bucket's region"
            )
        if error.status == 403 or error.code in ("403", "AccessDenied"):
            return ResultAccessDeniedError(
                operation=call.operation, bucket=call.bucket, key=call.key, permission=call.permission
            )
    if is_transient(error):
        cause = f"{error.code} (HTTP {error.status})" if isinstance(error, ServiceError) else str(error)
        return ResultBackendUnavailableError(
            code=error.code if isinstance(error, ServiceError) else type(error).__name__,
            operation=call.operation,
            bucket=call.bucket,
            key=call.key,
            cause=cause,
        )
    if isinstance(error, ServiceError):
        return S3ResultBackendError(code=f"{error.code}: {error.message}")
    return S3ResultBackendError(code=str(error))
