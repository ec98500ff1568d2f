"""What the batchers need from an SQS client, so unit tests can hand them fakes instead of HTTP."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..aws.sqs import (
    BatchResult,
    ChangeVisibilityEntry,
    DeleteMessageEntry,
    SendMessageBatchResult,
    SendMessageEntry,
)


class SQSBatchAPI(Protocol):
    """The three batch calls the batchers make: an `SQSClient`, or a fake in tests."""

    async def send_message_batch(
        self, queue_url: str, entries: Sequence[SendMessageEntry]
    ) -> SendMessageBatchResult: ...

    async def delete_message_batch(
        self, queue_url: str, entries: Sequence[DeleteMessageEntry]
    ) -> BatchResult: ...

    async def change_message_visibility_batch(
        self, queue_url: str, entries: Sequence[ChangeVisibilityEntry]
    ) -> BatchResult: ...
