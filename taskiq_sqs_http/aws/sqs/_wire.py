"""SQS JSON 1.0 protocol: the only module that knows AWS field names.

Pure functions from our dataclasses to request dicts and from response dicts back. Responses are read
defensively: a field of the wrong type becomes a `MalformedResponseError`, never a ``KeyError`` deep in a
worker.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any, cast

from .._errors import MalformedResponseError
from ._models import (
    BatchResult,
    BatchResultError,
    ChangeVisibilityEntry,
    DeleteMessageEntry,
    Message,
    MessageAttributeValue,
    SendMessageBatchResult,
    SendMessageEntry,
    SendMessageResult,
)

JSON = dict[str, Any]


# Bytes SQS refuses in a message body: the C0 controls other than tab, newline and carriage return
# (SQS accepts XML 1.0's Char production). A UTF-8 encoded control is always the byte itself.
_FORBIDDEN_BYTES = tuple(bytes((b,)) for b in range(0x20) if b not in (0x09, 0x0A, 0x0D))
# Below this size one byte-by-byte pass (translate) beats 29 separate searches' fixed costs.
_SEARCH_ABOVE = 4096
# The searches run chunk by chunk so that 29 passes read the cache, not memory 29 times: for a 32 MiB
# body this is 26 ms instead of 185 (translate: 23), and at 256 KiB no slower than whole-body searches.
_SEARCH_CHUNK = 64 * 1024
_ALLOWED_BYTES = bytes(b for b in range(0x100) if bytes((b,)) not in _FORBIDDEN_BYTES)


def sqs_text(payload: bytes) -> str | None:
    """``payload`` as an SQS message body, or None when it is not UTF-8 text that SQS accepts.

    This runs on every message, so it makes one decoding pass and no copy: each forbidden control byte
    is looked for with ``find`` (memchr), and the 29 searches together cost about a tenth of the regex
    over the decoded text that this replaced (the largest per-byte cost of a send, issue 13). Strict
    UTF-8 decoding already rejects surrogates, which leaves only U+FFFE and U+FFFF, and those only in
    non-ASCII text (``str.isascii`` is O(1) in CPython).
    """
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return None
    size = len(payload)
    if size > _SEARCH_ABOVE:
        find = payload.find
        for start in range(0, size, _SEARCH_CHUNK):
            end = start + _SEARCH_CHUNK
            for byte in _FORBIDDEN_BYTES:
                if find(byte, start, end) >= 0:
                    return None
    elif payload.translate(None, _ALLOWED_BYTES):
        return None
    if not text.isascii() and ("\ufffe" in text or "\uffff" in text):
        return None
    return text


def malformed(operation: str, status: int, detail: str) -> MalformedResponseError:
    return MalformedResponseError("MalformedResponse", detail, status=status, operation=operation)


def encode_attributes(attributes: Mapping[str, MessageAttributeValue]) -> JSON:
    out: JSON = {}
    for name, value in attributes.items():
        item: JSON = {"DataType": value.data_type}
        if value.binary_value is not None:
            item["BinaryValue"] = base64.b64encode(value.binary_value).decode("ascii")
        else:
            item["StringValue"] = value.string_value or ""
        out[name] = item
    return out


def encode_send_entry(entry: SendMessageEntry, *, with_id: bool) -> JSON:
    out: JSON = {"Id": entry.id} if with_id else {}
    out["MessageBody"] = entry.body
    if entry.delay_seconds is not None:
        out["DelaySeconds"] = entry.delay_seconds
    if entry.message_attributes:
        out["MessageAttributes"] = encode_attributes(entry.message_attributes)
    if entry.message_group_id is not None:
        out["MessageGroupId"] = entry.message_group_id
    if entry.message_deduplication_id is not None:
        out["MessageDeduplicationId"] = entry.message_deduplication_id
    return out


def encode_delete_entries(entries: Sequence[DeleteMessageEntry]) -> list[JSON]:
    return [{"Id": e.id, "ReceiptHandle": e.receipt_handle} for e in entries]


def encode_visibility_entries(entries: Sequence[ChangeVisibilityEntry]) -> list[JSON]:
    return [
        {"Id": e.id, "ReceiptHandle": e.receipt_handle, "VisibilityTimeout": e.visibility_timeout}
        for e in entries
    ]


def _str(data: JSON, key: str, operation: str, status: int) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise malformed(operation, status, f"field {key!r} missing or not a string")
    return value


def _decode_attribute(raw: Any, operation: str, status: int) -> MessageAttributeValue:
    if not isinstance(raw, dict):
        raise malformed(operation, status, "message attribute is not an object")
    item = cast(JSON, raw)
    data_type = str(item.get("DataType", "String"))
    binary = item.get("BinaryValue")
    if binary is not None:
        try:
            return MessageAttributeValue(data_type, binary_value=base64.b64decode(str(binary)))
        except (binascii.Error, ValueError):
            raise malformed(operation, status, "BinaryValue is not base64") from None
    string = item.get("StringValue")
    return MessageAttributeValue(data_type, string_value=None if string is None else str(string))


def decode_messages(data: JSON, operation: str, status: int) -> list[Message]:
    raw_messages: Any = data.get("Messages") or []
    if not isinstance(raw_messages, list):
        raise malformed(operation, status, "Messages is not a list")
    messages: list[Message] = []
    for raw in cast(list[Any], raw_messages):
        if not isinstance(raw, dict):
            raise malformed(operation, status, "message is not an object")
        item = cast(JSON, raw)
        attributes: Any = item.get("Attributes") or {}
        message_attributes: Any = item.get("MessageAttributes") or {}
        if not isinstance(attributes, dict) or not isinstance(message_attributes, dict):
            raise malformed(operation, status, "message attributes are not objects")
        messages.append(
            Message(
                message_id=_str(item, "MessageId", operation, status),
                receipt_handle=_str(item, "ReceiptHandle", operation, status),
                body=str(item.get("Body", "")),
                md5_of_body=item.get("MD5OfBody"),
                attributes={str(k): str(v) for k, v in cast(JSON, attributes).items()},
                message_attributes={
                    str(k): _decode_attribute(v, operation, status)
                    for k, v in cast(JSON, message_attributes).items()
                },
            )
        )
    return messages


def decode_send_result(data: JSON, operation: str, status: int) -> SendMessageResult:
    return SendMessageResult(
        message_id=_str(data, "MessageId", operation, status),
        md5_of_body=data.get("MD5OfMessageBody"),
        sequence_number=data.get("SequenceNumber"),
    )


def _decode_failed(data: JSON, operation: str, status: int) -> list[BatchResultError]:
    raw_failed: Any = data.get("Failed") or []
    if not isinstance(raw_failed, list):
        raise malformed(operation, status, "Failed is not a list")
    failed: list[BatchResultError] = []
    for raw in cast(list[Any], raw_failed):
        if not isinstance(raw, dict):
            raise malformed(operation, status, "Failed entry is not an object")
        item = cast(JSON, raw)
        failed.append(
            BatchResultError(
                id=_str(item, "Id", operation, status),
                code=str(item.get("Code", "")),
                message=str(item.get("Message", "")),
                sender_fault=bool(item.get("SenderFault", False)),
            )
        )
    return failed


def _successful_list(data: JSON, operation: str, status: int) -> list[JSON]:
    raw: Any = data.get("Successful") or []
    if not isinstance(raw, list) or not all(isinstance(x, dict) for x in cast(list[Any], raw)):
        raise malformed(operation, status, "Successful is not a list of objects")
    return cast(list[JSON], raw)


def decode_send_batch(data: JSON, operation: str, status: int) -> SendMessageBatchResult:
    successful = {
        _str(item, "Id", operation, status): decode_send_result(item, operation, status)
        for item in _successful_list(data, operation, status)
    }
    return SendMessageBatchResult(successful, _decode_failed(data, operation, status))


def decode_batch(data: JSON, operation: str, status: int) -> BatchResult:
    successful = [_str(item, "Id", operation, status) for item in _successful_list(data, operation, status)]
    return BatchResult(successful, _decode_failed(data, operation, status))
