"""Options shared by the broker and the result backend, as frozen values checked once.

`ClientOptions` says how to reach AWS: region, endpoint, credentials, retries, timeouts and an optional
``httpx.AsyncClient`` to share. `SQSBroker` and `S3Backend` build one from their flat keyword arguments
(the drop-in signature of taskiq-aio-sqs) at construction, so a wrong value fails there, naming the
parameter; users may also build one and pass it to both. Access keys given as arguments are kept only
inside a `Credentials` object, whose ``repr`` never shows the secret or the token: an error reporter that
captures a broker's attributes does not send them away.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from .aws import (
    ConfigurationError,
    Credentials,
    CredentialsLike,
    HTTPSession,
    RetryPolicy,
    S3Client,
    ServerSideEncryption,
    SQSClient,
    Timeouts,
)

__all__ = ["ClientOptions", "encryption_of"]

# Region names: lower-case words and digits joined by dashes (us-east-1, eu-central-2, local emulators).
_REGION = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def _check_str(name: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise ConfigurationError(f"'{name}' must be a string, got {type(value).__name__}")


def _check_instance(name: str, value: object, expected: type) -> None:
    if value is not None and not isinstance(value, expected):
        raise ConfigurationError(
            f"'{name}' must be a {expected.__module__}.{expected.__qualname__}, got {type(value).__name__}"
        )


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """How the SQS and S3 clients reach AWS; checked at construction."""

    region_name: str | None = None
    endpoint_url: str | None = None
    credentials: CredentialsLike | None = None
    retry_policy: RetryPolicy | None = None
    timeouts: Timeouts | None = None
    http_client: httpx.AsyncClient | None = None

    def __post_init__(self) -> None:
        _check_str("region_name", self.region_name)
        if self.region_name is not None and not _REGION.match(self.region_name):
            raise ConfigurationError(
                f"'region_name' is {self.region_name!r}; a region is lower-case letters, digits and dashes, "
                "such as 'us-east-1'"
            )
        _check_str("endpoint_url", self.endpoint_url)
        if self.endpoint_url is not None:
            parts = urlsplit(self.endpoint_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigurationError(
                    f"'endpoint_url' is {self.endpoint_url!r}; it must be an http:// or https:// URL "
                    "with a host, such as 'http://localhost:4566'"
                )
        _check_instance("retry_policy", self.retry_policy, RetryPolicy)
        _check_instance("timeouts", self.timeouts, Timeouts)
        _check_instance("http_client", self.http_client, httpx.AsyncClient)

    @classmethod
    def from_arguments(
        cls,
        *,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        credentials: CredentialsLike | None = None,
        retry_policy: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> ClientOptions:
        """From taskiq-aio-sqs's flat keyword arguments; access keys become one `Credentials`."""
        _check_str("aws_access_key_id", aws_access_key_id)
        _check_str("aws_secret_access_key", aws_secret_access_key)
        _check_str("aws_session_token", aws_session_token)
        if aws_access_key_id or aws_secret_access_key or aws_session_token:
            if credentials is not None:
                raise ConfigurationError("pass 'credentials' or access keys, not both")
            if not aws_access_key_id:
                raise ConfigurationError(
                    "'aws_secret_access_key' or 'aws_session_token' is set but 'aws_access_key_id' is not"
                )
            if not aws_secret_access_key:
                raise ConfigurationError("'aws_access_key_id' is set but 'aws_secret_access_key' is not")
            credentials = Credentials(
                aws_access_key_id, aws_secret_access_key, aws_session_token or None, source="arguments"
            )
        return cls(
            region_name=region_name,
            endpoint_url=endpoint_url,
            credentials=credentials,
            retry_policy=retry_policy,
            timeouts=timeouts,
            http_client=http_client,
        )

    def open_session(self) -> HTTPSession:
        """A new pool for these options; the caller owns it and closes it."""
        return HTTPSession(http_client=self.http_client, timeouts=self.timeouts)

    def sqs_client(self, session: HTTPSession) -> SQSClient:
        return SQSClient(
            session=session,
            region_name=self.region_name,
            endpoint_url=self.endpoint_url,
            credentials=self.credentials,
            retry_policy=self.retry_policy,
        )

    def s3_client(self, session: HTTPSession) -> S3Client:
        return S3Client(
            session=session,
            region_name=self.region_name,
            endpoint_url=self.endpoint_url,
            credentials=self.credentials,
            retry_policy=self.retry_policy,
        )


def encryption_of(
    value: str | ServerSideEncryption | None, kms_key_id: str | None
) -> ServerSideEncryption | None:
    """The encryption for objects we write: ``"AES256"`` (SSE-S3), ``"aws:kms"`` (+ key id) or None."""
    if isinstance(value, ServerSideEncryption):
        if kms_key_id is not None and kms_key_id != value.kms_key_id:
            raise ConfigurationError(
                "sse_kms_key_id is set and server_side_encryption already names another key"
            )
        return value
    if value is None:
        if kms_key_id is not None:
            return ServerSideEncryption("aws:kms", kms_key_id)
        return None
    return ServerSideEncryption(value, kms_key_id)
