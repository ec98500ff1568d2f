"""PayloadStore: decide by real size, move big bodies to S3, and fetch them back only from trusted buckets.

Size is what SQS counts: UTF-8 bytes of the body plus the message attributes, against 1 MiB or a lower
threshold. A worker follows a pointer only into buckets it is configured to trust (the extended bucket plus an
allow-list): otherwise one crafted message could make it read any object its IAM role can reach.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from typing import Protocol

from ..aws import (
    AWSError,
    ConfigurationError,
    NoSuchKeyError,
    S3Client,
    ServerSideEncryption,
    ServiceError,
    is_transient,
)
from ..aws.sqs import MAX_MESSAGE_BYTES, MessageAttributeValue, SendMessageEntry
from ._pointer import PayloadFormat, PointerError, S3Pointer, encode_pointer

__all__ = ["OffloadBucketMissingError", "PayloadStore", "PayloadUnavailableError"]

logger = logging.getLogger("taskiq_sqs_http.extended")


class OffloadBucketMissingError(ConfigurationError):
    """A message is too large for SQS and no extended bucket is configured."""


class PayloadUnavailableError(AWSError):
    """S3 failed transiently (after the client's own retries) while fetching a payload: the message is
    valid, and trying again later may succeed. ``cause`` is the client error."""

    def __init__(self, message: str, cause: AWSError) -> None:
        super().__init__(message)
        self.cause = cause


S3Source = S3Client | Callable[[], Awaitable[S3Client]] | None


class PayloadOptionsLike(Protocol):
    """What the store reads from the taskiq layer's `PayloadOptions` (this layer never imports it)."""

    @property
    def s3_extended_bucket_name(self) -> str | None: ...
    @property
    def extended_payload_threshold(self) -> int: ...
    @property
    def extended_payload_format(self) -> str: ...
    @property
    def trusted_payload_buckets(self) -> Iterable[str]: ...
    @property
    def server_side_encryption(self) -> ServerSideEncryption | None: ...


class PayloadStore:
    """``s3`` may be a client or a coroutine function returning one, so the client is opened on first use."""

    def __init__(
        self,
        s3: S3Source,
        bucket: str | None,
        *,
        threshold: int = MAX_MESSAGE_BYTES,
        payload_format: PayloadFormat | str = PayloadFormat.AIO_SQS,
        trusted_buckets: Iterable[str] = (),
        encryption: ServerSideEncryption | None = None,
    ) -> None:
        if not 1 <= threshold <= MAX_MESSAGE_BYTES:
            raise ConfigurationError(
                f"extended_payload_threshold is {threshold!r}; allowed range is 1..{MAX_MESSAGE_BYTES} bytes"
            )
        try:
            self.format = PayloadFormat(payload_format)
        except ValueError:
            raise ConfigurationError(
                f"extended_payload_format is {payload_format!r}; allowed values are 'aio-sqs', 'aws'"
            ) from None
        self._s3 = s3
        self.bucket = bucket
        self.threshold = threshold
        self.trusted: frozenset[str] = frozenset([*trusted_buckets, *([bucket] if bucket else [])])
        self._encryption = encryption

    @classmethod
    def from_options(cls, s3: S3Source, options: PayloadOptionsLike) -> PayloadStore:
        return cls(
            s3,
            options.s3_extended_bucket_name,
            threshold=options.extended_payload_threshold,
            payload_format=options.extended_payload_format,
            trusted_buckets=options.trusted_payload_buckets,
            encryption=options.server_side_encryption,
        )

    def needs_offload(self, entry: SendMessageEntry) -> bool:
        """At or above the threshold, as taskiq-aio-sqs decides (but counting bytes, not characters)."""
        return entry.wire_size() >= self.threshold

    def check(self, entry: SendMessageEntry) -> None:
        """Raise before any network call when the message would need a bucket we do not have."""
        if self.bucket is None and self.needs_offload(entry):
            raise OffloadBucketMissingError(
                f"message {entry.id} is {entry.wire_size()} bytes, over the {self.threshold}-byte SQS limit, "
                "and s3_extended_bucket_name is not set"
            )

    async def _client(self) -> S3Client:
        if self._s3 is None:
            raise ConfigurationError("extended payloads need an S3 client")
        return self._s3 if isinstance(self._s3, S3Client) else await self._s3()

    async def offload(
        self,
        entry: SendMessageEntry,
        payload: bytes | None = None,
        keep_attributes: Mapping[str, MessageAttributeValue] | None = None,
        *,
        force: bool = False,
    ) -> SendMessageEntry:
        """Store the payload in S3 and return the entry carrying a pointer instead of its body.

        ``payload`` defaults to the body's bytes; the broker passes the task's raw bytes (what 2.1.1
        stores). The pointer replaces the body's own attributes; ``keep_attributes`` (a not-before time,
        say) travel with it. ``force``: the caller already knows the message is too large (its raw bytes
        alone reach the threshold), so its body was never encoded and is not measured here.
        """
        if not force:
            self.check(entry)
            if not self.needs_offload(entry):
                return entry
        elif self.bucket is None:
            raise OffloadBucketMissingError(
                f"message {entry.id} is over the {self.threshold}-byte SQS limit and "
                "s3_extended_bucket_name is not set"
            )
        assert self.bucket is not None
        s3 = await self._client()
        # A unique key: retries re-kick with the same task id, and an acked message deletes its payload.
        key = f"{entry.id}-{uuid.uuid4().hex[:12]}.json"
        data = entry.body.encode() if payload is None else payload
        await s3.put_object(self.bucket, key, data, encryption=self._encryption)
        body, pointer_attributes = encode_pointer(self.bucket, key, len(data), self.format)
        attributes = {**(keep_attributes or {}), **pointer_attributes}
        return replace(entry, body=body, message_attributes=attributes)

    async def ensure_bucket(self) -> bool:
        """Create the extended bucket unless it exists; True when it was created.

        HeadBucket first, so an existing bucket is never touched; a 403 (no s3:ListBucket, or another
        account's bucket) is logged and left alone.
        """
        if self.bucket is None:
            return False
        s3 = await self._client()
        try:
            await s3.head_bucket(self.bucket)
            return False
        except ServiceError as exc:
            if exc.status == 403:
                logger.warning(
                    "cannot tell whether extended bucket %r exists (HeadBucket answered 403); "
                    "not creating it",
                    self.bucket,
                )
                return False
            if exc.status != 404:
                raise
        try:
            await s3.create_bucket(self.bucket)
        except ServiceError as exc:
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
            return False
        logger.info("Created extended bucket %r", self.bucket)
        return True

    async def fetch(self, pointer: S3Pointer, message_id: str) -> bytes:
        """The payload a pointer refers to.

        `PointerError` when untrusted, missing or forbidden (permanent: the message is poison);
        `PayloadUnavailableError` when S3 failed in a way that time may cure.
        """
        if pointer.bucket not in self.trusted:
            trusted = ", ".join(sorted(self.trusted)) or "none (set s3_extended_bucket_name)"
            raise PointerError(
                f"message {message_id} points into untrusted bucket {pointer.bucket!r}; trusted: {trusted}"
            )
        if self._s3 is None:
            raise PointerError(f"message {message_id} needs S3 but no S3 client is configured")
        location = f"s3://{pointer.bucket}/{pointer.key}"
        try:
            s3 = await self._client()
            return (await s3.get_object(pointer.bucket, pointer.key)).body
        except NoSuchKeyError:
            raise PointerError(f"message {message_id}: payload {location} is missing") from None
        except AWSError as exc:
            if is_transient(exc):
                raise PayloadUnavailableError(
                    f"message {message_id}: payload {location} is unavailable: {exc}", exc
                ) from exc
            raise PointerError(f"message {message_id}: cannot read payload {location}: {exc}") from exc

    async def delete(self, pointer: S3Pointer) -> None:
        """Remove a payload after its message was acked; a failure is logged, the task already succeeded."""
        if self._s3 is None:
            return
        try:
            s3 = await self._client()
            await s3.delete_object(pointer.bucket, pointer.key)
        except AWSError as exc:
            logger.warning("could not delete payload s3://%s/%s: %s", pointer.bucket, pointer.key, exc)
