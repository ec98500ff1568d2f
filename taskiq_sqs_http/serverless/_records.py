"""Lambda's SQS event records, turned into the `Message` a ReceiveMessage call would have returned.

Lambda re-serializes what SQS returned: message attribute keys are camelCase (``stringValue``,
``binaryValue`` as base64, ``dataType``) instead of the API's ``StringValue``/``BinaryValue``/``DataType``,
and the queue is named by ``eventSourceARN``. Once converted, a record goes through exactly the same
decoding as a received message (`Inbox.admit`).

A record without a usable ``messageId`` cannot be reported as a batch item failure (Lambda would fail the
whole batch on an empty identifier), so a malformed event raises `LambdaEventError`. A record that has an
id but a broken field is kept, with ``problem`` set, and reported as a failure.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from ..aws import Message, MessageAttributeValue

__all__ = ["LambdaEventError", "Record", "parse_event"]

_SQS_EVENT_SOURCE = "aws:sqs"


class LambdaEventError(ValueError):
    """The event is not an SQS event this handler can answer record by record."""


@dataclass(frozen=True, slots=True)
class Record:
    """One SQS record of a Lambda event."""

    message: Message
    source_arn: str
    problem: str | None = None
    """Why this record cannot become a task (it is then a batch item failure), None when it is fine."""

    @property
    def message_id(self) -> str:
        return self.message.message_id

    @property
    def group_id(self) -> str | None:
        """The FIFO message group; None on standard queues."""
        return self.message.attributes.get("MessageGroupId")

    @property
    def queue_name(self) -> str:
        return self.source_arn.rsplit(":", 1)[-1]


def parse_event(event: object) -> list[Record]:
    """The records of an SQS event, in the order Lambda sent them."""
    if not isinstance(event, Mapping):
        raise LambdaEventError(f"event must be a JSON object with 'Records', got {type(event).__name__}")
    raw_records = cast(Mapping[str, Any], event).get("Records")
    if not isinstance(raw_records, list):
        raise LambdaEventError("event has no 'Records' list: is this function triggered by SQS?")
    return [_parse_record(raw, index) for index, raw in enumerate(cast(list[Any], raw_records))]


def _parse_record(raw: object, index: int) -> Record:
    if not isinstance(raw, Mapping):
        raise LambdaEventError(f"Records[{index}] is not an object")
    record = cast(Mapping[str, Any], raw)
    message_id = record.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        raise LambdaEventError(f"Records[{index}] has no messageId, so it cannot be reported on its own")
    source = record.get("eventSource")
    if source is not None and source != _SQS_EVENT_SOURCE:
        raise LambdaEventError(f"Records[{index}] comes from {source!r}, not from {_SQS_EVENT_SOURCE!r}")
    problems: list[str] = []
    source_arn = record.get("eventSourceARN")
    if not isinstance(source_arn, str) or not source_arn.startswith("arn:"):
        problems.append(f"eventSourceARN {source_arn!r} is not a queue ARN")
        source_arn = ""
    receipt_handle = record.get("receiptHandle")
    if not isinstance(receipt_handle, str) or not receipt_handle:
        problems.append("no receiptHandle")
        receipt_handle = ""
    body = record.get("body")
    if not isinstance(body, str):
        problems.append("body is not a string")
        body = ""
    attributes = _attributes(record.get("attributes"), problems)
    message_attributes = _message_attributes(record.get("messageAttributes"), problems)
    md5 = record.get("md5OfBody")
    message = Message(
        message_id=message_id,
        receipt_handle=receipt_handle,
        body=body,
        md5_of_body=md5 if isinstance(md5, str) else None,
        attributes=attributes,
        message_attributes=message_attributes,
    )
    return Record(message, source_arn, "; ".join(problems) or None)


def _attributes(raw: object, problems: list[str]) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.append("attributes is not an object")
        return {}
    return {str(k): str(v) for k, v in cast(Mapping[str, Any], raw).items() if v is not None}


def _message_attributes(raw: object, problems: list[str]) -> dict[str, MessageAttributeValue]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.append("messageAttributes is not an object")
        return {}
    out: dict[str, MessageAttributeValue] = {}
    for name, value in cast(Mapping[str, Any], raw).items():
        converted = _attribute_value(value)
        if isinstance(converted, str):
            problems.append(f"message attribute {name!r}: {converted}")
        else:
            out[str(name)] = converted
    return out


def _attribute_value(raw: object) -> MessageAttributeValue | str:
    """The attribute in the client layer's form, or why it cannot be read."""
    if not isinstance(raw, Mapping):
        return "not an object"
    item = cast(Mapping[str, Any], raw)
    # camelCase from Lambda; the API's PascalCase accepted too (events replayed from ReceiveMessage output).
    data_type = item.get("dataType", item.get("DataType"))
    if not isinstance(data_type, str) or not data_type:
        return "no dataType"
    binary = item.get("binaryValue", item.get("BinaryValue"))
    if binary is not None:
        if not isinstance(binary, str):
            return "binaryValue is not a base64 string"
        try:
            return MessageAttributeValue(data_type, binary_value=base64.b64decode(binary, validate=True))
        except (binascii.Error, ValueError):
            return "binaryValue is not valid base64"
    string = item.get("stringValue", item.get("StringValue"))
    if string is not None and not isinstance(string, str):
        return "stringValue is not a string"
    return MessageAttributeValue(data_type, string_value=string)
