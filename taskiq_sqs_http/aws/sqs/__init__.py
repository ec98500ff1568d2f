"""SQS on the JSON 1.0 protocol."""

from ._client import MAX_BATCH_BYTES, MAX_BATCH_ENTRIES, MAX_DELAY_SECONDS, SQSClient
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

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_ENTRIES",
    "MAX_DELAY_SECONDS",
    "BatchResult",
    "BatchResultError",
    "ChangeVisibilityEntry",
    "DeleteMessageEntry",
    "Message",
    "MessageAttributeValue",
    "SQSClient",
    "SendMessageBatchResult",
    "SendMessageEntry",
    "SendMessageResult",
]
