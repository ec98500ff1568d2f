"""taskiq-aio-sqs 2.1.1's ``message_metadata`` module: delivery metadata, its labels and its envelope.

``expose_message_metadata=True`` puts these labels on every received task; `SQSMessageMetadata` is also
attached to each ack as ``ack.metadata``. The envelope format is 2.1.1's, so the helpers interoperate.
"""

from __future__ import annotations

from .broker._envelope import (
    SQS_APPROXIMATE_RECEIVE_COUNT_LABEL,
    SQS_MESSAGE_ID_LABEL,
    SQS_QUEUE_URL_LABEL,
    SQS_RECEIPT_HANDLE_LABEL,
    MetadataUnwrappingFormatter,
    SQSMessageMetadata,
    encode_envelope,
    try_decode_envelope,
)

__all__ = [
    "SQS_APPROXIMATE_RECEIVE_COUNT_LABEL",
    "SQS_MESSAGE_ID_LABEL",
    "SQS_QUEUE_URL_LABEL",
    "SQS_RECEIPT_HANDLE_LABEL",
    "MetadataUnwrappingFormatter",
    "SQSMessageMetadata",
    "encode_envelope",
    "try_decode_envelope",
]
