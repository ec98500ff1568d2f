"""The two wire formats of an SQS message whose body lives in S3.

- taskiq-aio-sqs 2.1.1: attribute ``s3_extended_message`` = ``"True"``, body
  ``{"s3_bucket": "...", "s3_key": "..."}``. We write this by default, so a fleet migrating between the two
  libraries keeps working.
- The AWS extended client library (Java, .NET, Lambda Powertools, the Python sqs-extended-client): attribute
  ``ExtendedPayloadSize`` (legacy ``SQSLargePayloadSize``) with the payload size, body
  ``["software.amazon.payloadoffloading.PayloadS3Pointer", {"s3BucketName": ..., "s3Key": ...}]`` (legacy
  class name ``com.amazon.sqs.javamessaging.MessageS3Pointer``).

Decoding is strict: a message that announces a pointer but whose body is not a valid one is an error (the
worker logs it and leaves the message for redrive), never a task body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, cast

from ..aws import AWSError
from ..aws.sqs import MessageAttributeValue

__all__ = [
    "AIO_SQS_ATTRIBUTE",
    "AWS_LEGACY_POINTER_CLASS",
    "AWS_LEGACY_SIZE_ATTRIBUTE",
    "AWS_POINTER_CLASS",
    "AWS_SIZE_ATTRIBUTE",
    "PayloadFormat",
    "PointerError",
    "S3Pointer",
    "decode_pointer",
    "encode_pointer",
]

AIO_SQS_ATTRIBUTE = "s3_extended_message"
AWS_SIZE_ATTRIBUTE = "ExtendedPayloadSize"
AWS_LEGACY_SIZE_ATTRIBUTE = "SQSLargePayloadSize"
AWS_POINTER_CLASS = "software.amazon.payloadoffloading.PayloadS3Pointer"
AWS_LEGACY_POINTER_CLASS = "com.amazon.sqs.javamessaging.MessageS3Pointer"
_AWS_CLASSES = (AWS_POINTER_CLASS, AWS_LEGACY_POINTER_CLASS)


class PayloadFormat(str, Enum):
    """Which pointer format a producer writes: taskiq-aio-sqs's ("aio-sqs") or the AWS extended client's."""

    AIO_SQS = "aio-sqs"
    AWS = "aws"


class PointerError(AWSError):
    """A message announces an S3 payload but its pointer is unusable (malformed, untrusted, missing)."""


@dataclass(frozen=True, slots=True)
class S3Pointer:
    """Where an offloaded payload lives, and in which format the message pointed to it."""

    bucket: str
    key: str
    format: PayloadFormat


def encode_pointer(
    bucket: str, key: str, size: int, fmt: PayloadFormat
) -> tuple[str, dict[str, MessageAttributeValue]]:
    """Body and attributes that replace an offloaded message's own."""
    if fmt is PayloadFormat.AWS:
        body = json.dumps([AWS_POINTER_CLASS, {"s3BucketName": bucket, "s3Key": key}])
        return body, {AWS_SIZE_ATTRIBUTE: MessageAttributeValue.number(size)}
    # Python's default separators, exactly as taskiq-aio-sqs 2.1.1 writes it.
    body = json.dumps({"s3_bucket": bucket, "s3_key": key})
    return body, {AIO_SQS_ATTRIBUTE: MessageAttributeValue.string("True")}


def decode_pointer(body: str, attributes: Mapping[str, MessageAttributeValue]) -> S3Pointer | None:
    """The pointer a message carries, None for an ordinary message; `PointerError` when it is broken."""
    # 2.1.1 treats the attribute's presence as the mark, whatever its value; so do we.
    if AIO_SQS_ATTRIBUTE in attributes:
        data = _load(body)
        if not isinstance(data, dict):
            raise PointerError("s3_extended_message body is not a JSON object")
        fields = cast(dict[str, Any], data)
        return S3Pointer(
            _text(fields.get("s3_bucket"), "s3_bucket"),
            _text(fields.get("s3_key"), "s3_key"),
            PayloadFormat.AIO_SQS,
        )
    if AWS_SIZE_ATTRIBUTE in attributes or AWS_LEGACY_SIZE_ATTRIBUTE in attributes:
        data = _load(body)
        items = cast(list[Any], data) if isinstance(data, list) else []
        if len(items) != 2 or items[0] not in _AWS_CLASSES or not isinstance(items[1], dict):
            raise PointerError("extended payload body is not a PayloadS3Pointer")
        fields = cast(dict[str, Any], items[1])
        return S3Pointer(
            _text(fields.get("s3BucketName"), "s3BucketName"),
            _text(fields.get("s3Key"), "s3Key"),
            PayloadFormat.AWS,
        )
    return None


def _load(body: str) -> object:
    try:
        return cast(object, json.loads(body))
    except ValueError:
        raise PointerError("extended payload pointer is not JSON") from None


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise PointerError(f"extended payload pointer has no valid {name}")
    return value
