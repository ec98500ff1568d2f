"""The taskiq broker on SQS."""

from ._broker import MAX_SQS_MESSAGE_SIZE, SQSBroker
from ._config import SQSQueue
from ._envelope import (
    SQS_APPROXIMATE_RECEIVE_COUNT_LABEL,
    SQS_MESSAGE_ID_LABEL,
    SQS_QUEUE_URL_LABEL,
    SQS_RECEIPT_HANDLE_LABEL,
    MetadataUnwrappingFormatter,
    SQSMessageMetadata,
)

__all__ = [
    "MAX_SQS_MESSAGE_SIZE",
    "SQS_APPROXIMATE_RECEIVE_COUNT_LABEL",
    "SQS_MESSAGE_ID_LABEL",
    "SQS_QUEUE_URL_LABEL",
    "SQS_RECEIPT_HANDLE_LABEL",
    "MetadataUnwrappingFormatter",
    "SQSBroker",
    "SQSMessageMetadata",
    "SQSQueue",
]
