"""SQS on the JSON 1.0 protocol."""

from ._client import (
    LONG_POLL_READ_MARGIN,
    MAX_BATCH_BYTES,
    MAX_BATCH_ENTRIES,
    MAX_DELAY_SECONDS,
    MAX_MESSAGE_BYTES,
    MAX_VISIBILITY_TIMEOUT,
    MAX_WAIT_TIME_SECONDS,
    SQSClient,
)
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
    "LONG_POLL_READ_MARGIN",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_ENTRIES",
    "MAX_DELAY_SECONDS",
    "MAX_MESSAGE_BYTES",
    "MAX_VISIBILITY_TIMEOUT",
    "MAX_WAIT_TIME_SECONDS",
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
