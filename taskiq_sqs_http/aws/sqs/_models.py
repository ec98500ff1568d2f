"""Typed values for SQS requests and responses.

Frozen slotted dataclasses rather than pydantic models: they are built and read on every message, and a
dataclass costs a fraction of a validated model. Validation of user input happens once, in the layers above.
AWS field spellings (``QueueUrl``, ``ReceiptHandle``) never appear here; `_wire.py` translates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "BatchResult",
    "BatchResultError",
    "ChangeVisibilityEntry",
    "DeleteMessageEntry",
    "Message",
    "MessageAttributeValue",
    "SendMessageBatchResult",
    "SendMessageEntry",
    "SendMessageResult",
]


def utf8_size(text: str) -> int:
    """UTF-8 length of ``text``, without a copy when it is ASCII (``str.isascii`` is O(1) in CPython).

    Every send measures its body (offload and batch limits), so this must not cost a pass over it.
    """
    return len(text) if text.isascii() else len(text.encode())


@dataclass(frozen=True, slots=True)
class MessageAttributeValue:
    """A message attribute: ``String``/``Number`` (and ``String.xyz`` custom types) or ``Binary``."""

    data_type: str
    string_value: str | None = None
    binary_value: bytes | None = None

    @classmethod
    def string(cls, value: str) -> MessageAttributeValue:
        return cls("String", string_value=value)

    @classmethod
    def number(cls, value: int | float | str) -> MessageAttributeValue:
        return cls("Number", string_value=str(value))

    @classmethod
    def binary(cls, value: bytes) -> MessageAttributeValue:
        return cls("Binary", binary_value=value)

    def wire_size(self, name: str) -> int:
        """Bytes SQS counts against the 1 MiB limit: name, type and value."""
        if self.binary_value is not None:
            value = len(self.binary_value)
        else:
            value = utf8_size(self.string_value or "")
        return utf8_size(name) + utf8_size(self.data_type) + value


@dataclass(frozen=True, slots=True)
class Message:
    """A received message: its body and attributes, and the receipt handle that acks or hides it."""

    message_id: str
    receipt_handle: str
    body: str
    md5_of_body: str | None = None
    attributes: dict[str, str] = field(default_factory=dict[str, str])
    message_attributes: dict[str, MessageAttributeValue] = field(
        default_factory=dict[str, MessageAttributeValue]
    )

    @property
    def receive_count(self) -> int:
        try:
            return int(self.attributes.get("ApproximateReceiveCount", "0"))
        except ValueError:
            return 0


@dataclass(frozen=True, slots=True)
class SendMessageEntry:
    """One message to send; ``id`` is only meaningful within a batch (unique, 1..80 chars)."""

    id: str
    body: str
    delay_seconds: int | None = None
    message_attributes: dict[str, MessageAttributeValue] | None = None
    message_group_id: str | None = None
    message_deduplication_id: str | None = None

    def wire_size(self) -> int:
        """Bytes SQS counts against the 1 MiB limit; an ASCII body is measured without encoding it."""
        size = utf8_size(self.body)
        if self.message_attributes:
            size += sum(v.wire_size(k) for k, v in self.message_attributes.items())
        return size


@dataclass(frozen=True, slots=True)
class SendMessageResult:
    """What SQS answered for one sent message: its id, body digest and FIFO sequence number."""

    message_id: str
    md5_of_body: str | None = None
    sequence_number: str | None = None


@dataclass(frozen=True, slots=True)
class BatchResultError:
    """A failed entry of a batch call. ``sender_fault`` False means retrying may succeed."""

    id: str
    code: str
    message: str
    sender_fault: bool


@dataclass(frozen=True, slots=True)
class SendMessageBatchResult:
    """Per-entry outcome of SendMessageBatch: successes by entry id, and the entries that failed."""

    successful: dict[str, SendMessageResult]
    failed: list[BatchResultError]


@dataclass(frozen=True, slots=True)
class DeleteMessageEntry:
    """One entry of DeleteMessageBatch: an id unique within the batch and the receipt handle to delete."""

    id: str
    receipt_handle: str


@dataclass(frozen=True, slots=True)
class ChangeVisibilityEntry:
    """One entry of ChangeMessageVisibilityBatch: id, receipt handle and the new timeout in seconds."""

    id: str
    receipt_handle: str
    visibility_timeout: int


@dataclass(frozen=True, slots=True)
class BatchResult:
    """Result of DeleteMessageBatch / ChangeMessageVisibilityBatch."""

    successful: list[str]
    failed: list[BatchResultError]
