"""The SQS wire format of a task, and the in-memory metadata envelope.

Wire format (read and written identically by taskiq-aio-sqs 2.1.1 for everything it supports):

* A body that is valid UTF-8 and only holds characters SQS accepts is sent verbatim as the message body,
  with no message attributes (2.1.1's format, byte for byte).
* Any other body (msgpack, pickle, cbor, or text with control characters) is sent base64-encoded with the
  attribute ``taskiq_body_encoding = "base64"``. 2.1.1 could not send these at all.
* A message too large for SQS goes to S3 (2.1.1's extended format): the body is
  ``{"s3_bucket": "<bucket>", "s3_key": "<key>"}`` and the attribute ``s3_extended_message = "True"``.
* A delay longer than SQS allows is sent with the longest DelaySeconds plus the attribute
  ``taskiq_not_before`` (Number, Unix seconds); a consumer that receives it early hides it again.

The metadata envelope exists only in memory, between ``listen()`` and the formatter, and is 2.1.1's:
``{"__taskiq_aio_sqs_metadata__": {labels}, "__taskiq_aio_sqs_body__": "<base64 body>"}``.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import orjson
from taskiq import BrokerMessage, TaskiqMessage
from taskiq.abc.formatter import TaskiqFormatter

from ..aws import MessageAttributeValue
from ..aws.sqs._wire import sqs_text

__all__ = [
    "BODY_ENCODING_ATTRIBUTE",
    "NOT_BEFORE_ATTRIBUTE",
    "SQS_APPROXIMATE_RECEIVE_COUNT_LABEL",
    "SQS_MESSAGE_ID_LABEL",
    "SQS_QUEUE_URL_LABEL",
    "SQS_RECEIPT_HANDLE_LABEL",
    "MalformedMessageError",
    "MetadataUnwrappingFormatter",
    "SQSMessageMetadata",
    "decode_body",
    "encode_body",
    "encode_envelope",
    "not_before",
    "try_decode_envelope",
]

SQS_RECEIPT_HANDLE_LABEL = "sqs_receipt_handle"
SQS_QUEUE_URL_LABEL = "sqs_queue_url"
SQS_MESSAGE_ID_LABEL = "sqs_message_id"
SQS_APPROXIMATE_RECEIVE_COUNT_LABEL = "sqs_approximate_receive_count"

_METADATA_KEY = "__taskiq_aio_sqs_metadata__"
_BODY_KEY = "__taskiq_aio_sqs_body__"

BODY_ENCODING_ATTRIBUTE = "taskiq_body_encoding"
NOT_BEFORE_ATTRIBUTE = "taskiq_not_before"
# Unix time after which the message must not run: ours and taskiq-sqs's name, and its older one.
EXPIRY_ATTRIBUTE = "sqs_expiry"
_LEGACY_EXPIRY_ATTRIBUTE = "expiry"
_BASE64 = "base64"


class MalformedMessageError(ValueError):
    """A received message this broker cannot turn into task bytes; it is left in SQS for redrive."""


def encode_body(payload: bytes) -> tuple[str, dict[str, MessageAttributeValue]]:
    """SQS body and attributes for a task payload (text verbatim, anything else base64).

    `sqs_text` checks the characters SQS accepts at memchr speed: this runs on every task. It is never
    skipped: ``kick()`` takes any bytes, not only what a formatter made.
    """
    text = sqs_text(payload)
    if text is not None:
        return text, {}
    return (
        base64.b64encode(payload).decode("ascii"),
        {BODY_ENCODING_ATTRIBUTE: MessageAttributeValue.string(_BASE64)},
    )


def _attribute_string(attributes: Mapping[str, MessageAttributeValue], name: str) -> str | None:
    value = attributes.get(name)
    if value is None:
        return None
    if value.string_value is not None:
        return value.string_value
    if value.binary_value is not None:
        return value.binary_value.decode("utf-8", "replace")
    return ""


def decode_body(body: str, attributes: Mapping[str, MessageAttributeValue]) -> bytes:
    encoding = _attribute_string(attributes, BODY_ENCODING_ATTRIBUTE)
    if encoding is None:
        return body.encode("utf-8")
    if encoding != _BASE64:
        raise MalformedMessageError(f"unknown {BODY_ENCODING_ATTRIBUTE} {encoding!r}")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedMessageError("body is marked base64 but is not valid base64") from None


def not_before_attribute(due: float) -> dict[str, MessageAttributeValue]:
    return {NOT_BEFORE_ATTRIBUTE: MessageAttributeValue.number(f"{due:.3f}")}


def not_before(attributes: Mapping[str, MessageAttributeValue]) -> float | None:
    """The Unix time before which this message must not run, if it carries one."""
    raw = _attribute_string(attributes, NOT_BEFORE_ATTRIBUTE)
    if raw is None:
        return None
    try:
        due = float(raw)
    except ValueError:
        raise MalformedMessageError(f"{NOT_BEFORE_ATTRIBUTE} is {raw!r}, not a number") from None
    if not math.isfinite(due):
        raise MalformedMessageError(f"{NOT_BEFORE_ATTRIBUTE} is {raw!r}, not a finite time")
    return due


def expiry_attribute(expires_at: float) -> dict[str, MessageAttributeValue]:
    return {EXPIRY_ATTRIBUTE: MessageAttributeValue.number(f"{expires_at:.3f}")}


def expires_at(attributes: Mapping[str, MessageAttributeValue]) -> float | None:
    """The Unix time after which this message must not run, if it carries one (0 means never)."""
    raw = _attribute_string(attributes, EXPIRY_ATTRIBUTE)
    if raw is None:
        raw = _attribute_string(attributes, _LEGACY_EXPIRY_ATTRIBUTE)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise MalformedMessageError(f"{EXPIRY_ATTRIBUTE} is {raw!r}, not a number") from None
    if not math.isfinite(value):
        raise MalformedMessageError(f"{EXPIRY_ATTRIBUTE} is {raw!r}, not a finite time")
    return value if value > 0 else None


@dataclass(slots=True, frozen=True)
class SQSMessageMetadata:
    """Where a delivery came from; attached to every ack as ``ack.metadata``."""

    receipt_handle: str
    queue_url: str
    message_id: str | None = None
    approximate_receive_count: int | None = None

    def as_labels(self) -> dict[str, str]:
        labels = {
            SQS_RECEIPT_HANDLE_LABEL: self.receipt_handle,
            SQS_QUEUE_URL_LABEL: self.queue_url,
        }
        if self.message_id is not None:
            labels[SQS_MESSAGE_ID_LABEL] = self.message_id
        if self.approximate_receive_count is not None:
            labels[SQS_APPROXIMATE_RECEIVE_COUNT_LABEL] = str(self.approximate_receive_count)
        return labels


def encode_envelope(metadata: SQSMessageMetadata, body: bytes) -> bytes:
    """Wrap a payload with its delivery metadata; base64 keeps any formatter's bytes intact."""
    return orjson.dumps(
        {_METADATA_KEY: metadata.as_labels(), _BODY_KEY: base64.b64encode(body).decode("ascii")}
    )


def try_decode_envelope(data: bytes) -> tuple[dict[str, str], bytes] | None:
    """The (labels, payload) of an envelope, or None when ``data`` is not one."""
    if not data.startswith(b"{"):
        return None
    try:
        envelope: Any = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(envelope, dict):
        return None
    fields = cast(dict[str, Any], envelope)
    labels, encoded = fields.get(_METADATA_KEY), fields.get(_BODY_KEY)
    if not isinstance(labels, dict) or not isinstance(encoded, str):
        return None
    try:
        body = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
    return {str(k): str(v) for k, v in cast(dict[Any, Any], labels).items()}, body


class MetadataUnwrappingFormatter(TaskiqFormatter):
    """Delegates to ``inner``; ``loads`` first unwraps the metadata envelope into the task's labels."""

    def __init__(self, inner: TaskiqFormatter) -> None:
        self.inner = inner

    def dumps(self, message: TaskiqMessage) -> BrokerMessage:
        return self.inner.dumps(message)

    def loads(self, message: bytes) -> TaskiqMessage:
        decoded = try_decode_envelope(message)
        if decoded is None:
            return self.inner.loads(message)
        labels, body = decoded
        taskiq_message = self.inner.loads(body)
        taskiq_message.labels.update(labels)
        return taskiq_message
