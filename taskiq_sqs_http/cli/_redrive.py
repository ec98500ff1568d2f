"""``taskiq-sqs redrive``: move messages from a dead-letter queue back to where they came from.

Where the endpoint supports it, SQS moves them itself (StartMessageMoveTask, the console's "start DLQ
redrive"), which keeps everything about each message. Otherwise, or with ``--max``, which a move task cannot
limit, messages are received, sent and deleted here: body, message attributes, group id and deduplication
id are kept; a message is deleted from the dead-letter queue only after its destination accepted it.

One hazard of the manual path on FIFO queues: a deduplication id SQS has seen in the last 5 minutes makes it
accept the message and silently drop it. Such messages are left in the dead-letter queue (reported as
skipped), never deleted after a send that may have been discarded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from ..aws import DeleteMessageEntry, Message, SendMessageEntry, ServiceError
from ..aws.sqs import MAX_BATCH_BYTES, MAX_BATCH_ENTRIES
from ._context import CLIError, Operator, QueueRef
from ._output import emit_json, render_table

__all__ = ["RedriveResult", "print_redrive", "redrive"]

# Error codes of an endpoint that does not implement the message-move actions.
_UNSUPPORTED = frozenset(
    {
        "InvalidAction",
        "UnsupportedOperation",
        "AWS.SimpleQueueService.UnsupportedOperation",
        "UnknownOperation",
        "UnknownOperationException",
        "NotImplemented",
    }
)
_DEDUP_WINDOW = 300.0
# How long received messages stay hidden while a manual redrive sends them on.
_REDRIVE_VISIBILITY = 120
_POLL_INTERVAL = 1.0
_FINISHED = frozenset({"COMPLETED", "FAILED", "CANCELLED"})


@dataclass(slots=True)
class RedriveResult:
    dead_letter_queue: str
    method: str
    moved: int = 0
    failed: int = 0
    skipped: int = 0
    destinations: dict[str, int] = field(default_factory=dict[str, int])
    errors: list[str] = field(default_factory=list[str])
    task_handle: str | None = None
    status: str | None = None


def _unsupported(exc: ServiceError) -> bool:
    return (
        exc.code in _UNSUPPORTED or (exc.query_error_code or "") in _UNSUPPORTED or exc.status in (404, 501)
    )


async def _move_task(
    op: Operator, dlq: QueueRef, to: QueueRef | None, wait: bool, timeout: float
) -> RedriveResult:
    source_arn = (await op.attributes(dlq, "QueueArn"))["QueueArn"]
    destination_arn = None
    if to is not None:
        destination_arn = (await op.attributes(to, "QueueArn"))["QueueArn"]
    handle = await op.sqs.start_message_move_task(source_arn, destination_arn=destination_arn)
    result = RedriveResult(dlq.name, "move-task", task_handle=handle, status="RUNNING")
    if to is not None:
        result.destinations[to.name] = 0
    deadline = time.monotonic() + timeout
    while True:
        tasks = await op.sqs.list_message_move_tasks(source_arn)
        task = next((t for t in tasks if t.get("TaskHandle") in (handle, None)), tasks[0] if tasks else {})
        result.status = str(task.get("Status", "UNKNOWN"))
        result.moved = int(task.get("ApproximateNumberOfMessagesMoved", 0) or 0)
        if task.get("FailureReason"):
            result.errors.append(str(task["FailureReason"]))
        if not wait or result.status in _FINISHED or time.monotonic() >= deadline:
            break
        await asyncio.sleep(_POLL_INTERVAL)
    if result.status == "FAILED":
        result.failed = 1
    if to is not None:
        result.destinations[to.name] = result.moved
    return result


def _entry(message: Message, index: int, fifo: bool) -> SendMessageEntry:
    """The message as it was sent: body, attributes, group and (FIFO only) deduplication id."""
    return SendMessageEntry(
        str(index),
        message.body,
        message_attributes=dict(message.message_attributes) or None,
        message_group_id=message.attributes.get("MessageGroupId"),
        message_deduplication_id=message.attributes.get("MessageDeduplicationId") if fifo else None,
    )


def _batches(messages: Sequence[Message], fifo: bool) -> list[list[Message]]:
    """Messages in SendMessageBatch calls that respect SQS's 1 MiB total (each message may be near it)."""
    batches: list[list[Message]] = []
    size = 0
    for message in messages:
        weight = _entry(message, 0, fifo).wire_size()
        if not batches or size + weight > MAX_BATCH_BYTES or len(batches[-1]) == MAX_BATCH_ENTRIES:
            batches.append([])
            size = 0
        batches[-1].append(message)
        size += weight
    return batches


def _recently_deduplicated(message: Message, fifo: bool, now: float) -> bool:
    if not fifo or "MessageDeduplicationId" not in message.attributes:
        return False
    try:
        sent = int(message.attributes.get("SentTimestamp", "0")) / 1000
    except ValueError:
        return True
    return now - sent < _DEDUP_WINDOW


class _Destinations:
    """Destination queues by source ARN (or the ``--to`` queue), with whether each is FIFO."""

    def __init__(self, op: Operator, to: QueueRef | None) -> None:
        self._op = op
        self._to = to
        self._by_arn: dict[str, QueueRef] = {}
        self._fifo: dict[str, bool] = {}

    async def of(self, message: Message) -> QueueRef:
        if self._to is not None:
            return self._to
        arn = message.attributes.get("DeadLetterQueueSourceArn")
        if not arn:
            raise CLIError(
                f"message {message.message_id} does not say which queue it came from; pass --to QUEUE"
            )
        if arn not in self._by_arn:
            self._by_arn[arn] = await self._op.queue_from_arn(arn)
        return self._by_arn[arn]

    async def is_fifo(self, queue: QueueRef) -> bool:
        if queue.url not in self._fifo:
            attributes = await self._op.attributes(queue, "FifoQueue")
            self._fifo[queue.url] = attributes.get("FifoQueue", "false").lower() == "true"
        return self._fifo[queue.url]


async def _send_and_delete(
    op: Operator,
    dlq: QueueRef,
    target: QueueRef,
    messages: Sequence[Message],
    fifo: bool,
    result: RedriveResult,
) -> list[Message]:
    """Send one batch on; delete what was accepted; the messages to hand back (not sent)."""
    entries = [_entry(m, i, fifo) for i, m in enumerate(messages)]
    try:
        sent = await op.sqs.send_message_batch(target.url, entries)
    except ServiceError as exc:
        result.failed += len(messages)
        result.errors.append(f"sending to {target.name}: {exc}")
        return list(messages)
    for failure in sent.failed:
        result.errors.append(
            f"message {messages[int(failure.id)].message_id}: {failure.code}: {failure.message}"
        )
    result.failed += len(sent.failed)
    accepted = [messages[int(i)] for i in sent.successful]
    if accepted:
        deletes = [DeleteMessageEntry(str(i), m.receipt_handle) for i, m in enumerate(accepted)]
        deleted = await op.sqs.delete_message_batch(dlq.url, deletes)
        for failure in deleted.failed:
            # Sent but still in the DLQ: it would be redriven twice; say so rather than hide it.
            result.errors.append(
                f"message {accepted[int(failure.id)].message_id} was sent to {target.name} but could not be "
                f"deleted from {dlq.name} ({failure.code}); it may be delivered twice"
            )
    result.moved += len(accepted)
    result.destinations[target.name] = result.destinations.get(target.name, 0) + len(accepted)
    failed_ids = {messages[int(f.id)].message_id for f in sent.failed}
    return [m for m in messages if m.message_id in failed_ids]


async def _manual(op: Operator, dlq: QueueRef, to: QueueRef | None, limit: int | None) -> RedriveResult:
    result = RedriveResult(dlq.name, "receive-send-delete")
    destinations = _Destinations(op, to)
    seen: set[str] = set()
    keep_hidden: list[Message] = []  # skipped or failed: handed back at the end, not re-received meanwhile
    try:
        while limit is None or result.moved + result.failed + result.skipped < limit:
            want = 10 if limit is None else min(10, limit - result.moved - result.failed - result.skipped)
            batch = await op.sqs.receive_message(
                dlq.url,
                max_number_of_messages=want,
                wait_time_seconds=1,
                visibility_timeout=_REDRIVE_VISIBILITY,
            )
            fresh = [m for m in batch if m.message_id not in seen]
            keep_hidden.extend(m for m in batch if m.message_id in seen)
            if not fresh:
                break
            seen.update(m.message_id for m in fresh)
            groups: dict[str, tuple[QueueRef, list[Message]]] = {}
            now = time.time()
            for message in fresh:
                try:
                    target = await destinations.of(message)
                except CLIError as exc:
                    result.skipped += 1
                    result.errors.append(str(exc))
                    keep_hidden.append(message)
                    continue
                if _recently_deduplicated(message, await destinations.is_fifo(target), now):
                    result.skipped += 1
                    result.errors.append(
                        f"message {message.message_id} was sent less than 5 minutes ago; FIFO deduplication "
                        "would drop it: left in the dead-letter queue, run redrive again later"
                    )
                    keep_hidden.append(message)
                    continue
                groups.setdefault(target.url, (target, []))[1].append(message)
            for target, messages in groups.values():
                fifo = await destinations.is_fifo(target)
                for chunk in _batches(messages, fifo):
                    keep_hidden.extend(await _send_and_delete(op, dlq, target, chunk, fifo, result))
    finally:
        if keep_hidden:
            await op.hand_back(dlq, keep_hidden)
    return result


async def redrive(
    op: Operator,
    dlq: QueueRef,
    *,
    to: QueueRef | None,
    limit: int | None,
    method: str,
    wait: bool,
    timeout: float,
) -> RedriveResult:
    """Redrive with SQS's move task when possible (``auto``), or as asked."""
    if method == "move-task" and limit is not None:
        raise CLIError(
            "--max needs --method manual or auto: a message move task cannot stop after N messages", 2
        )
    if method == "manual" or (method == "auto" and limit is not None):
        return await _manual(op, dlq, to, limit)
    try:
        return await _move_task(op, dlq, to, wait, timeout)
    except ServiceError as exc:
        if method == "auto" and _unsupported(exc):
            return await _manual(op, dlq, to, limit)
        raise


def print_redrive(result: RedriveResult, as_json: bool) -> None:
    if as_json:
        emit_json(asdict(result))
        return
    if result.method == "move-task":
        state = f"move task {result.status}"
        if result.status not in _FINISHED:
            state += f" (handle {result.task_handle}; check progress with `taskiq-sqs stats`)"
        print(f"{result.dead_letter_queue}: {result.moved} message(s) moved by SQS; {state}")
    else:
        print(
            f"{result.dead_letter_queue}: moved {result.moved}, failed {result.failed}, "
            f"skipped {result.skipped} (receive, send, delete)"
        )
    if result.destinations:
        print(render_table(["TO QUEUE", "MOVED"], sorted(result.destinations.items())))
    for error in result.errors:
        print(f"  ! {error}")
