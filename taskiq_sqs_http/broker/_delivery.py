"""What happens to a received message: made ready for taskiq (or left in SQS), acked, or handed back.

A message taskiq cannot run is never deleted: it stays in SQS, so the queue's redrive policy moves it to
the dead-letter queue. A task that raised is, with ``redeliver_failed``, handed back instead of deleted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq.abc.formatter import TaskiqFormatter
from taskiq.acks import AckableMessage

from ..aws import AWSError, Message, ReceiptHandleIsInvalidError, SQSClient
from ..batching import VisibilityBatcher
from ..exceptions import BrokerNotStartedError
from ..extended import PayloadStore, PointerError, S3Pointer, decode_pointer
from ._config import MAX_VISIBILITY_TIMEOUT
from ._consumer import Target, make_visible
from ._envelope import (
    MalformedMessageError,
    SQSMessageMetadata,
    decode_body,
    encode_envelope,
    not_before,
)
from ._errors import broker_error

__all__ = [
    "Ack",
    "FailureTracker",
    "RecentSet",
    "delete",
    "hand_back",
    "hide_until",
    "prepare",
    "redeliver",
    "task_problem",
]

# The broker's records keep the logger name they had before the broker was split into modules.
logger = logging.getLogger("taskiq_sqs_http.broker._broker")
# A message received this much before its not-before time runs anyway rather than being hidden again.
NOT_BEFORE_TOLERANCE = 1.0


class Ack:
    """The ack of one delivery; ``metadata`` says which delivery (2.1.1 attached it to the function)."""

    __slots__ = ("_acknowledge", "_queue_name", "metadata", "pointer", "task_id")

    def __init__(
        self,
        acknowledge: Callable[[str, Ack], Awaitable[None]],
        queue_name: str,
        metadata: SQSMessageMetadata,
        task_id: str,
        pointer: S3Pointer | None,
    ) -> None:
        self._acknowledge = acknowledge
        self._queue_name = queue_name
        self.metadata = metadata
        self.task_id = task_id
        self.pointer = pointer

    async def __call__(self) -> None:
        await self._acknowledge(self._queue_name, self)


class RecentSet:
    """A set that forgets its oldest members beyond ``limit``.

    Failed task ids are normally removed by their ack; with ``ack_type=when_received`` the ack comes first
    and nothing would ever remove them, so the set must not grow without bound in a long-lived worker.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._items: dict[str, None] = {}
        self._limit = limit

    def add(self, item: str) -> None:
        self._items.pop(item, None)
        self._items[item] = None
        if len(self._items) > self._limit:
            del self._items[next(iter(self._items))]

    def discard(self, item: str) -> None:
        self._items.pop(item, None)

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __len__(self) -> int:
        return len(self._items)


class FailureTracker(TaskiqMiddleware):
    """Notes which deliveries raised, so their ack can hand them back to SQS instead of deleting them.

    taskiq runs ``on_error`` inside the task's execution, before the ack of ``when_executed`` and
    ``when_saved``; with ``when_received`` the message is gone before the task runs, so there is nothing
    to redeliver.
    """

    def __init__(self, failed: RecentSet) -> None:
        super().__init__()
        self._failed = failed

    def on_error(self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException) -> None:
        self._failed.add(message.task_id)


async def prepare(
    target: Target,
    message: Message,
    *,
    payloads: PayloadStore,
    hide_until: Callable[[Target, Message, float], Awaitable[None]],
    task_problem: Callable[[bytes], tuple[str, str | None]],
    acknowledge: Callable[[str, Ack], Awaitable[None]],
    expose_metadata: bool,
    delete_payloads: bool,
) -> AckableMessage | None:
    """Task bytes and ack for a received message, or None to leave it in SQS (logged)."""
    try:
        due = not_before(message.message_attributes)
        if due is not None and due - time.time() > NOT_BEFORE_TOLERANCE:
            await hide_until(target, message, due)
            return None
        pointer = decode_pointer(message.body, message.message_attributes)
        if pointer is not None:
            payload = await payloads.fetch(pointer, message.message_id)
        else:
            payload = decode_body(message.body, message.message_attributes)
    except (MalformedMessageError, PointerError) as exc:
        logger.error(
            "Message %s from queue %s is malformed (%s); leaving it in SQS for redrive",
            message.message_id,
            target.name,
            exc,
        )
        return None
    task_id, problem = task_problem(payload)
    if problem is not None:
        logger.error(
            "Message %s from queue %s is not a task this worker can run (%s); leaving it in SQS for redrive",
            message.message_id,
            target.name,
            problem,
        )
        return None
    count = message.attributes.get("ApproximateReceiveCount", "")
    metadata = SQSMessageMetadata(
        receipt_handle=message.receipt_handle,
        queue_url=target.url,
        message_id=message.message_id or None,
        approximate_receive_count=int(count) if count.isdigit() else None,
    )
    if expose_metadata:
        payload = encode_envelope(metadata, payload)
    ack = Ack(acknowledge, target.name, metadata, task_id, pointer if delete_payloads else None)
    return AckableMessage(data=payload, ack=ack)


def task_problem(
    payload: bytes, formatter: TaskiqFormatter, find_task: Callable[[str], object] | None
) -> tuple[str, str | None]:
    """The task id, and why taskiq could not run this payload (None when it can).

    taskiq would ack (delete) a message it cannot parse; we leave it in SQS for redrive instead.
    ``find_task`` is given in worker processes only: elsewhere no task is registered to look up.
    """
    try:
        task_message = formatter.loads(payload)
        task_message.parse_labels()
    except Exception as exc:
        return "", f"{type(exc).__name__}: {exc}"
    if find_task is not None and find_task(task_message.task_name) is None:
        return task_message.task_id, f"unknown task {task_message.task_name!r}"
    return task_message.task_id, None


async def hide_until(sqs: SQSClient, target: Target, message: Message, due: float) -> None:
    """A long-delayed message arrived early: hide it again until it is due (at most 12 h a time)."""
    remaining = min(max(int(due - time.time()) + 1, 1), MAX_VISIBILITY_TIMEOUT)
    try:
        await sqs.change_message_visibility(target.url, message.receipt_handle, remaining)
    except AWSError as exc:
        logger.warning("Could not hide early message %s for %d s: %s", message.message_id, remaining, exc)
    else:
        logger.debug("Message %s is not due; hidden for %d s", message.message_id, remaining)


async def hand_back(sqs: SQSClient, in_flight: dict[str, str], timeout: float) -> None:
    """Make every un-acked message (receipt handle -> queue URL) visible again; empties ``in_flight``."""
    by_url: dict[str, list[str]] = {}
    for receipt_handle, url in in_flight.items():
        by_url.setdefault(url, []).append(receipt_handle)
    in_flight.clear()
    logger.info("Handing %d un-acked messages back to SQS", sum(map(len, by_url.values())))
    try:
        await asyncio.wait_for(
            asyncio.gather(*(make_visible(sqs, url, rhs) for url, rhs in by_url.items())),
            timeout,
        )
    except asyncio.TimeoutError:
        logger.warning("Timed out handing un-acked messages back; they reappear after their timeout")


async def delete(
    delivery: Ack, queue_name: str, ack: Callable[[str, str], Awaitable[None]], payloads: PayloadStore
) -> None:
    """The task is done: delete its message through ``ack``, then its S3 payload when the ack owns it."""
    metadata = delivery.metadata
    try:
        await ack(metadata.queue_url, metadata.receipt_handle)
    except ReceiptHandleIsInvalidError as exc:
        logger.warning(
            "Ack of message %s on queue %s came too late (%s): it was already redelivered, so "
            "its task may run again",
            metadata.message_id,
            queue_name,
            exc.code,
        )
    except AWSError as exc:
        raise broker_error(exc, queue_name) from exc
    if delivery.pointer is not None:
        await payloads.delete(delivery.pointer)


async def redeliver(
    visibility: VisibilityBatcher | None, queue_name: str, metadata: SQSMessageMetadata, delay: int
) -> None:
    """The task raised: let SQS deliver it again after ``delay`` seconds (and, past the queue's
    maxReceiveCount, move it to the dead-letter queue) instead of deleting it."""
    logger.info(
        "Task of message %s failed; SQS redelivers it in %d s (receive count so far: %s)",
        metadata.message_id,
        delay,
        metadata.approximate_receive_count,
    )
    if visibility is None:
        raise BrokerNotStartedError(operation="ack")
    try:
        await visibility.change(metadata.queue_url, metadata.receipt_handle, delay)
    except ReceiptHandleIsInvalidError:
        logger.warning("Message %s was already redelivered; nothing to hand back", metadata.message_id)
    except AWSError as exc:
        raise broker_error(exc, queue_name) from exc
