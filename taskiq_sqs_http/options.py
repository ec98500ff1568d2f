"""Options as frozen values, checked once at construction.

`ClientOptions` says how to reach AWS: region, endpoint, credentials, retries, timeouts and an optional
``httpx.AsyncClient`` to share; `SQSBroker` and `S3Backend` both take it. `BatchingOptions`,
`DeliveryOptions` and `PayloadOptions` group the broker's other settings. The broker keeps the flat keyword
arguments of taskiq-aio-sqs (the drop-in signature) and packs them into these values at once, so a wrong
value fails at construction, naming the parameter; users may also build the values and pass them.

Access keys given as arguments are kept only inside a `Credentials` object, whose ``repr`` never shows the
secret or the token: an error reporter that captures a broker's attributes does not send them away.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from . import _validate
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
from .aws.sqs import MAX_MESSAGE_BYTES, MAX_VISIBILITY_TIMEOUT
from .exceptions import BrokerConfigError

if TYPE_CHECKING:
    from .batching import SendFailure

__all__ = ["BatchingOptions", "ClientOptions", "DeliveryOptions", "PayloadOptions", "encryption_of"]

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


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchingOptions:
    """How sends are coalesced into SendMessageBatch, and how much may wait in memory.

    The buffer is bounded by ``max_buffered_messages`` and ``max_buffered_bytes``: when SQS is slow or
    down, ``kiq()`` waits up to ``send_buffer_timeout`` seconds for room, then raises `SendFailedError`.
    """

    enable_batching: bool = False
    batch_size: int = 10
    batch_timeout: float = 1.0
    skip_batch_tasks: frozenset[str] = frozenset()
    max_buffered_messages: int = 10_000
    max_buffered_bytes: int = 64 * 1024 * 1024
    send_buffer_timeout: float = 30.0
    on_send_error: Callable[[SendFailure], object] | None = None

    def __post_init__(self) -> None:
        _validate.check_bool("enable_batching", self.enable_batching)
        _set(self, "batch_size", _validate.check_int("BatchSize", self.batch_size, 1, 10))
        _set(self, "batch_timeout", _validate.check_float_at_least("BatchTimeout", self.batch_timeout, 0.1))
        _set(self, "skip_batch_tasks", _validate.check_names("skip_batch_tasks", self.skip_batch_tasks))
        _set(
            self,
            "max_buffered_messages",
            int(
                _validate.check_range_float(
                    "max_buffered_messages", self.max_buffered_messages, 1, 10_000_000
                )
            ),
        )
        _set(
            self,
            "max_buffered_bytes",
            int(
                _validate.check_range_float(
                    "max_buffered_bytes", self.max_buffered_bytes, MAX_MESSAGE_BYTES, 2**40
                )
            ),
        )
        _set(
            self,
            "send_buffer_timeout",
            _validate.check_range_float("send_buffer_timeout", self.send_buffer_timeout, 0.0, 3600.0),
        )
        _validate.check_callable("on_send_error", self.on_send_error)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryOptions:
    """What happens to received messages: metadata labels, redelivery of failed tasks, ack batching,
    heartbeats, and how long shutdown may take."""

    expose_message_metadata: bool = False
    redeliver_failed: bool = False
    redelivery_delay: int = 30
    ack_batch_linger: float = 0.02
    enable_heartbeat: bool = False
    heartbeat_interval: float | None = None
    heartbeat_max_extensions: int = 100
    shutdown_timeout: float = 30.0

    def __post_init__(self) -> None:
        # 2.1.1 checked the heartbeat first; the same wrong argument gives the same error here.
        _set(self, "heartbeat_interval", _validate.parse_heartbeat_interval(self.heartbeat_interval))
        _validate.check_heartbeat_max_extensions(self.heartbeat_max_extensions)
        for name in ("expose_message_metadata", "redeliver_failed", "enable_heartbeat"):
            _validate.check_bool(name, getattr(self, name))
        _set(
            self,
            "redelivery_delay",
            _validate.check_int("redelivery_delay", self.redelivery_delay, 0, MAX_VISIBILITY_TIMEOUT),
        )
        _set(
            self,
            "ack_batch_linger",
            _validate.check_range_float("ack_batch_linger", self.ack_batch_linger, 0.0, 0.05),
        )
        _set(
            self,
            "shutdown_timeout",
            _validate.check_range_float("shutdown_timeout", self.shutdown_timeout, 0.1, 3600.0),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PayloadOptions:
    """Extended (S3-offloaded) messages: where big bodies go, in which pointer format, which buckets a
    worker may follow pointers into, and what happens to a payload once its task is done."""

    s3_extended_bucket_name: str | None = None
    create_extended_bucket: bool = False
    extended_payload_format: str = "aio-sqs"
    extended_payload_threshold: int = MAX_MESSAGE_BYTES
    trusted_payload_buckets: frozenset[str] = frozenset()
    delete_payloads_after_ack: bool = True
    server_side_encryption: ServerSideEncryption | None = None

    def __post_init__(self) -> None:
        _validate.check_bucket_name("s3_extended_bucket_name", self.s3_extended_bucket_name)
        _validate.check_bool("create_extended_bucket", self.create_extended_bucket)
        _validate.check_bool("delete_payloads_after_ack", self.delete_payloads_after_ack)
        _set(
            self,
            "trusted_payload_buckets",
            _validate.check_names("trusted_payload_buckets", self.trusted_payload_buckets),
        )
        if self.extended_payload_format not in ("aio-sqs", "aws"):
            raise BrokerConfigError(
                error=f"extended_payload_format is {self.extended_payload_format!r}; allowed values are "
                "'aio-sqs', 'aws'"
            )
        _validate.check_strict_int(
            "extended_payload_threshold", self.extended_payload_threshold, 1, MAX_MESSAGE_BYTES, "bytes"
        )
        _check_instance("server_side_encryption", self.server_side_encryption, ServerSideEncryption)


def _set(options: object, name: str, value: object) -> None:
    """Store the checked (normalised) value in a frozen options object."""
    object.__setattr__(options, name, value)
