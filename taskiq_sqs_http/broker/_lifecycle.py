"""The life of a received message, in one place: from an SQS message to a taskiq delivery, and back.

A message arrives (from a ReceiveMessage long poll, or in a Lambda event) and meets `Inbox.admit`:

1. a heartbeat starts, when the queue has one, so it stays hidden while it waits and runs;
2. a message that is not yet due (a delay beyond SQS's 15 minutes) is hidden again until it is;
3. its payload is decoded, or fetched from S3 when the body is a pointer into a trusted bucket. A
   *transient* fetch failure (5xx, throttling, timeouts, connection errors) is retried with backoff while
   the message stays hidden, and then handed back with a warning that names the cause: a brief S3 outage
   must never send a valid task to the dead-letter queue;
4. a message that is not a task this worker can run (malformed, bad or untrusted pointer, missing payload,
   unknown task) is *poison*: it is never deleted, but left for the queue's redrive policy, hidden for a
   time that grows with its receive count so that it cannot come back in a tight loop;
5. otherwise it becomes a `Delivery`: the `AckableMessage` taskiq runs, whose ack settles it.

Settling (`Inbox.settle`, what taskiq's ack calls) deletes the message through the batched deleter and then
its S3 payload; or, when the task raised and ``redeliver_failed`` is on, hides it for ``redelivery_delay`` so
that SQS delivers it again (and its redrive policy moves it to the dead-letter queue in the end). An ack
lingers to share a DeleteMessageBatch only while another ack may join it: while other deliveries are in
flight, or wait to be taken by a consumer that takes several at a time. A lone ack (a worker with
``--max-async-tasks 1``, which takes the next message only once this one is acked) leaves at once.

`Inbox.hand_back` makes deliveries that will not run visible again at once (a stopping consumer, a Lambda
invocation running out of time). Nothing here assumes a polling loop: the consumer and the serverless
handler drive the same calls.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq.abc.formatter import TaskiqFormatter
from taskiq.acks import AckableMessage

from ..aws import AWSError, ChangeVisibilityEntry, Message, ReceiptHandleIsInvalidError, SQSClient
from ..aws._aio import bounded
from ..aws.sqs import MAX_BATCH_ENTRIES
from ..batching import DeleteBatcher, VisibilityBatcher
from ..extended import PayloadStore, PayloadUnavailableError, PointerError, S3Pointer, decode_pointer
from ..options import DeliveryOptions, PayloadOptions
from ._config import MAX_VISIBILITY_TIMEOUT
from ._envelope import (
    MalformedMessageError,
    SQSMessageMetadata,
    decode_body,
    encode_envelope,
    expires_at,
    not_before,
)
from ._errors import broker_error
from ._heartbeat import Heartbeats
from ._queues import Target

__all__ = [
    "Delivery",
    "FailureTracker",
    "Inbox",
    "InboxSettings",
    "Outcome",
    "RecentSet",
    "TaskCheck",
    "check_task",
]

logger = logging.getLogger("taskiq_sqs_http.broker")

# A consumer seen holding two deliveries at once within this many seconds is taking in parallel.
_PARALLEL_MEMORY_SECONDS = 1.0
# A message received this much before its not-before time runs anyway rather than being hidden again.
NOT_BEFORE_TOLERANCE = 1.0


class Outcome(enum.Enum):
    """How a delivery was settled."""

    DELETED = "deleted"
    """The task is done: the message (and its S3 payload) is gone."""
    REDELIVERED = "redelivered"
    """The task raised and ``redeliver_failed`` is on: SQS delivers it again after ``redelivery_delay``."""
    HANDED_BACK = "handed_back"
    """It never ran here: visible again at once, for any consumer."""


class TaskCheck(NamedTuple):
    """Whether taskiq can run a payload: its task id, and the reason it cannot (None when it can)."""

    task_id: str
    problem: str | None


@dataclass(frozen=True, slots=True)
class InboxSettings:
    """What the broker's options say about received messages."""

    expose_metadata: bool = False
    delete_payloads: bool = True
    redeliver_failed: bool = False
    redelivery_delay: int = 30
    ack_linger: float = 0.02
    heartbeat_max_extensions: int = 100
    # Waits between attempts to fetch a payload while S3 fails transiently (about 30 s in all).
    fetch_retry_delays: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 15.0)
    # Poison messages are hidden for base * 2 ** (receive count - 1) seconds, at most 12 hours.
    poison_backoff_base: float = 2.0
    # Transiently unreadable messages come back after base * 2 ** (receive count - 1) seconds.
    unavailable_backoff_base: float = 5.0
    # The same message's "left for redrive" line is logged at most once per this many seconds.
    poison_log_interval: float = 60.0

    @classmethod
    def from_options(cls, delivery: DeliveryOptions, payloads: PayloadOptions) -> InboxSettings:
        return cls(
            expose_metadata=delivery.expose_message_metadata,
            delete_payloads=payloads.delete_payloads_after_ack,
            redeliver_failed=delivery.redeliver_failed,
            redelivery_delay=delivery.redelivery_delay,
            ack_linger=delivery.ack_batch_linger,
            heartbeat_max_extensions=delivery.heartbeat_max_extensions,
        )


def backoff_visibility(base: float, receive_count: int) -> int:
    """Seconds to hide a message that came back ``receive_count`` times: grows, never beyond 12 hours."""
    exponent = min(max(receive_count, 1) - 1, 30)
    return int(min(max(base * 2**exponent, 1.0), MAX_VISIBILITY_TIMEOUT))


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


@dataclass(eq=False, slots=True)
class Delivery:
    """A received message that taskiq may run; calling it is the ack (``ack.metadata`` as in 2.1.1)."""

    inbox: Inbox
    target: Target
    message: Message
    task_id: str
    metadata: SQSMessageMetadata
    pointer: S3Pointer | None
    payload: bytes
    outcome: Outcome | None = None
    taken: bool = False
    ackable: AckableMessage = field(init=False)

    def __post_init__(self) -> None:
        self.ackable = AckableMessage(data=self.payload, ack=self)

    @property
    def receipt_handle(self) -> str:
        return self.message.receipt_handle

    async def __call__(self) -> None:
        await self.inbox.settle(self)


class _LogLimiter:
    """Logs a repeated line about the same message at most once per interval, counting the rest."""

    def __init__(self, interval: float, limit: int = 10_000) -> None:
        self._interval = interval
        self._seen: dict[str, tuple[float, int]] = {}
        self._limit = limit

    def allow(self, key: str) -> tuple[bool, int]:
        """(log now?, how many were suppressed since the last line)."""
        now = time.monotonic()
        last, suppressed = self._seen.get(key, (-math.inf, 0))
        if now - last < self._interval:
            self._seen[key] = (last, suppressed + 1)
            return False, 0
        self._seen.pop(key, None)
        self._seen[key] = (now, 0)
        if len(self._seen) > self._limit:
            del self._seen[next(iter(self._seen))]
        return True, suppressed


class Inbox:
    """Owns received messages: the deleter, the visibility batcher, heartbeats, the deliveries in flight,
    the memory of failed tasks and the payload store."""

    def __init__(
        self,
        sqs: SQSClient,
        *,
        payloads: PayloadStore,
        check_task: Callable[[bytes], TaskCheck],
        settings: InboxSettings,
        failed_tasks: RecentSet | None = None,
    ) -> None:
        self._sqs = sqs
        self._payloads = payloads
        self._check_task = check_task
        self.settings = settings
        self.failed_tasks = failed_tasks if failed_tasks is not None else RecentSet()
        self._deleter = DeleteBatcher(sqs, linger=settings.ack_linger)
        self._visibility = VisibilityBatcher(sqs, linger=settings.ack_linger)
        self._heartbeats = Heartbeats(
            self._visibility.change, max_extensions=settings.heartbeat_max_extensions
        )
        # Heartbeat timing per queue name: (visibility timeout, interval); queues absent here have none.
        self._heartbeat_timing: dict[str, tuple[int, float]] = {}
        # Handed to taskiq and not yet settled, by receipt handle.
        self._in_flight: dict[str, Delivery] = {}
        # Admitted and not yet taken (waiting in a consumer's buffer).
        self._waiting = 0
        # When a consumer last held two deliveries at once: it takes in parallel, so waiting ones will
        # be taken (and acked) soon; a one-at-a-time consumer takes the next only after this ack.
        self._parallel_at = -math.inf
        self._poison_log = _LogLimiter(settings.poison_log_interval)
        self._closed = False

    # -- state ----------------------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        """Deliveries handed to taskiq and not yet settled."""
        return len(self._in_flight)

    @property
    def heartbeats(self) -> int:
        return len(self._heartbeats)

    def use_heartbeat(self, queue_name: str, visibility_timeout: int, interval: float) -> None:
        """Keep this queue's messages hidden while they wait and run (a timeout of 0 means never)."""
        if visibility_timeout > 0:
            self._heartbeat_timing[queue_name] = (visibility_timeout, interval)

    def has_heartbeat(self, queue_name: str) -> bool:
        return queue_name in self._heartbeat_timing

    # -- from SQS message to delivery -----------------------------------------------------------------
    async def admit(self, target: Target, message: Message) -> Delivery | None:
        """The delivery taskiq may run, or None when the message was settled here instead.

        None means: not yet due (hidden until due), poison (left for redrive, hidden with backoff) or
        transiently unreadable (handed back with backoff). The message is never deleted here.
        """
        self._start_heartbeat(target, message)
        try:
            delivery = await self._admit(target, message)
        except BaseException:
            await self._heartbeats.stop(message.receipt_handle)
            raise
        if delivery is None:
            await self._heartbeats.stop(message.receipt_handle)
        else:
            self._waiting += 1
        return delivery

    def dispatched(self, delivery: Delivery) -> None:
        """taskiq now holds ``delivery``: it is in flight until settled or handed back."""
        self._untake(delivery)
        delivery.taken = True
        self._in_flight[delivery.receipt_handle] = delivery
        if len(self._in_flight) > 1:
            self._parallel_at = time.monotonic()

    def _untake(self, delivery: Delivery) -> None:
        """A delivery leaves the waiting count: taken by a consumer, settled or handed back untaken."""
        if not delivery.taken:
            delivery.taken = True
            self._waiting = max(self._waiting - 1, 0)

    def _company_expected(self) -> bool:
        """Whether another ack may join a batch within the linger."""
        if self._in_flight:
            return True
        recently_parallel = time.monotonic() - self._parallel_at < _PARALLEL_MEMORY_SECONDS
        return self._waiting > 0 and recently_parallel

    async def _admit(self, target: Target, message: Message) -> Delivery | None:
        try:
            expiry = expires_at(message.message_attributes)
            if expiry is not None and time.time() > expiry:
                await self._discard_expired(target, message, expiry)
                return None
            due = not_before(message.message_attributes)
            if due is not None and due - time.time() > NOT_BEFORE_TOLERANCE:
                await self._hide_until(target, message, due)
                return None
            pointer = decode_pointer(message.body, message.message_attributes)
            if pointer is None:
                payload = decode_body(message.body, message.message_attributes)
            else:
                payload = await self._fetch(target, message, pointer)
                if payload is None:
                    return None
        except (MalformedMessageError, PointerError) as exc:
            await self._leave_for_redrive(target, message, f"malformed: {exc}")
            return None
        check = self._check_task(payload)
        if check.problem is not None:
            await self._leave_for_redrive(target, message, f"not a task this worker can run: {check.problem}")
            return None
        metadata = SQSMessageMetadata(
            receipt_handle=message.receipt_handle,
            queue_url=target.url,
            message_id=message.message_id or None,
            approximate_receive_count=message.receive_count or None,
        )
        if self.settings.expose_metadata:
            payload = encode_envelope(metadata, payload)
        pointer = pointer if self.settings.delete_payloads else None
        return Delivery(self, target, message, check.task_id, metadata, pointer, payload)

    async def _fetch(self, target: Target, message: Message, pointer: S3Pointer) -> bytes | None:
        """The offloaded payload; None when S3 kept failing transiently and the message was handed back.

        Permanent causes (untrusted bucket, missing object, access denied) raise `PointerError`.
        """
        delays = self.settings.fetch_retry_delays
        hidden = False
        for attempt in range(len(delays) + 1):
            try:
                return await self._payloads.fetch(pointer, message.message_id)
            except PayloadUnavailableError as exc:
                if attempt == len(delays):
                    delay = backoff_visibility(self.settings.unavailable_backoff_base, message.receive_count)
                    logger.warning(
                        "Payload of message %s from queue %s is unavailable after %d attempts (%s); "
                        "handing the message back for %d s (a transient failure: the message is kept, not "
                        "treated as poison)",
                        message.message_id,
                        target.name,
                        attempt + 1,
                        exc.cause,
                        delay,
                    )
                    await self._change_visibility(target, message, delay)
                    return None
                if not hidden and not self.has_heartbeat(target.name):
                    # Stay hidden while retrying: another consumer would only meet the same outage.
                    hidden = True
                    await self._change_visibility(target, message, int(sum(delays)) + 30)
                logger.info(
                    "Payload of message %s is unavailable (%s); retrying in %.0f s",
                    message.message_id,
                    exc.cause,
                    delays[attempt],
                )
                await _sleep(delays[attempt])
        return None  # pragma: no cover - the loop always returns

    async def _leave_for_redrive(self, target: Target, message: Message, why: str) -> None:
        """Poison: never deleted, hidden for a time that grows with each receive, so the redrive policy
        still applies and the message cannot come back in a tight loop."""
        delay = backoff_visibility(self.settings.poison_backoff_base, message.receive_count)
        log, suppressed = self._poison_log.allow(message.message_id)
        if log:
            logger.error(
                "Message %s from queue %s is %s; leaving it in SQS for redrive (receive count %d, hidden "
                "for %d s)%s",
                message.message_id,
                target.name,
                why,
                message.receive_count,
                delay,
                f" [{suppressed} similar lines suppressed]" if suppressed else "",
            )
        await self._change_visibility(target, message, delay)

    async def _discard_expired(self, target: Target, message: Message, expiry: float) -> None:
        """The task's ``sqs_expiry`` has passed: it must not run, so its message is deleted unrun."""
        logger.warning(
            "Message %s from queue %s expired %.0f s ago (sqs_expiry); deleting it without running it",
            message.message_id,
            target.name,
            time.time() - expiry,
        )
        try:
            await self._deleter.delete(target.url, message.receipt_handle, linger=False)
        except AWSError as exc:
            logger.warning("Could not delete expired message %s: %s", message.message_id, exc)
            return
        pointer = decode_pointer(message.body, message.message_attributes)
        if pointer is not None and self.settings.delete_payloads and pointer.bucket in self._payloads.trusted:
            await self._payloads.delete(pointer)

    async def _hide_until(self, target: Target, message: Message, due: float) -> None:
        """A long-delayed message arrived early: hide it again until it is due (at most 12 h at a time)."""
        await self._heartbeats.stop(message.receipt_handle)
        remaining = min(max(int(due - time.time()) + 1, 1), MAX_VISIBILITY_TIMEOUT)
        if await self._change_visibility(target, message, remaining):
            logger.debug("Message %s is not due; hidden for %d s", message.message_id, remaining)

    async def _change_visibility(self, target: Target, message: Message, seconds: int) -> bool:
        try:
            await self._visibility.change(target.url, message.receipt_handle, seconds, linger=False)
        except AWSError as exc:
            logger.warning(
                "Could not set the visibility of message %s to %d s: %s", message.message_id, seconds, exc
            )
            return False
        return True

    def _start_heartbeat(self, target: Target, message: Message) -> None:
        timing = self._heartbeat_timing.get(target.name)
        if timing is not None and not self._closed:
            self._heartbeats.start(target.name, target.url, message.receipt_handle, *timing)

    # -- settling -------------------------------------------------------------------------------------
    async def settle(self, delivery: Delivery) -> None:
        """taskiq's ack: delete the message (then its payload), or hide it for redelivery when it failed."""
        if delivery.outcome is not None:
            return
        self._untake(delivery)
        self._in_flight.pop(delivery.receipt_handle, None)
        await self._heartbeats.stop(delivery.receipt_handle)
        # Linger for company only while another delivery may still ack; a lone ack leaves at once.
        linger = self._company_expected()
        settings = self.settings
        metadata = delivery.metadata
        try:
            if settings.redeliver_failed and delivery.task_id in self.failed_tasks:
                self.failed_tasks.discard(delivery.task_id)
                delivery.outcome = Outcome.REDELIVERED
                await self._redeliver(delivery, linger)
                return
            delivery.outcome = Outcome.DELETED
            try:
                await self._deleter.delete(metadata.queue_url, metadata.receipt_handle, linger=linger)
            except AWSError as exc:
                delivery.outcome = None
                raise broker_error(exc, delivery.target.name) from exc
        finally:
            if not self._company_expected():
                self._deleter.flush()
                self._visibility.flush()
        if delivery.pointer is not None:
            await self._payloads.delete(delivery.pointer)

    async def _redeliver(self, delivery: Delivery, linger: bool) -> None:
        metadata = delivery.metadata
        delay = self.settings.redelivery_delay
        logger.info(
            "Task of message %s failed; SQS redelivers it in %d s (receive count so far: %s)",
            metadata.message_id,
            delay,
            metadata.approximate_receive_count,
        )
        try:
            await self._visibility.change(metadata.queue_url, metadata.receipt_handle, delay, linger=linger)
        except ReceiptHandleIsInvalidError:
            logger.warning("Message %s was already redelivered; nothing to hand back", metadata.message_id)
        except AWSError as exc:
            raise broker_error(exc, delivery.target.name) from exc

    async def hand_back(self, deliveries: Iterable[Delivery], timeout: float) -> None:
        """Make deliveries that will not run here visible again at once (within ``timeout`` seconds)."""
        pending = [d for d in deliveries if d.outcome is None]
        for delivery in pending:
            delivery.outcome = Outcome.HANDED_BACK
            self._untake(delivery)
            self._in_flight.pop(delivery.receipt_handle, None)
            await self._heartbeats.stop(delivery.receipt_handle)
        await self.make_visible([(d.target.url, d.receipt_handle) for d in pending], timeout)

    async def make_visible(self, handles: Sequence[tuple[str, str]], timeout: float) -> None:
        """ChangeMessageVisibility 0, ten per request per queue, for (queue URL, receipt handle) pairs."""
        if not handles:
            return
        by_url: dict[str, list[str]] = {}
        for url, receipt_handle in handles:
            by_url.setdefault(url, []).append(receipt_handle)
        logger.info("Handing %d messages back to SQS", len(handles))
        finished, _ = await bounded(_gather_visible(self._sqs, by_url), timeout)
        if not finished:
            logger.warning("Timed out handing messages back; they reappear after their visibility timeout")

    async def aclose(self, timeout: float) -> None:
        """At shutdown: hand back what taskiq still holds, stop heartbeats, send the acks still waiting."""
        self._closed = True
        if self._in_flight:
            await self.hand_back(list(self._in_flight.values()), timeout)
        await self._heartbeats.aclose()
        for name, batcher in (("pending acks", self._deleter), ("visibility changes", self._visibility)):
            finished, _ = await bounded(batcher.aclose(), timeout)
            if not finished:
                logger.warning("Shutdown: gave up waiting for %s after %.0f s", name, timeout)


async def _gather_visible(sqs: SQSClient, by_url: dict[str, list[str]]) -> None:
    for url, handles in by_url.items():
        for start in range(0, len(handles), MAX_BATCH_ENTRIES):
            chunk = handles[start : start + MAX_BATCH_ENTRIES]
            entries = [ChangeVisibilityEntry(str(i), rh, 0) for i, rh in enumerate(chunk)]
            try:
                result = await sqs.change_message_visibility_batch(url, entries)
            except AWSError as exc:
                logger.warning("Could not hand %d messages back to %s: %s", len(chunk), url, exc)
                continue
            for failed in result.failed:
                logger.warning("Could not hand a message back to %s: %s %s", url, failed.code, failed.message)


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def check_task(
    payload: bytes, formatter: TaskiqFormatter, find_task: Callable[[str], object] | None
) -> TaskCheck:
    """Whether taskiq can run ``payload``.

    taskiq would ack (delete) a message it cannot parse; we leave it in SQS for redrive instead.
    ``find_task`` is given in worker processes only: elsewhere no task is registered to look up.
    """
    try:
        task_message = formatter.loads(payload)
        task_message.parse_labels()
    except Exception as exc:
        return TaskCheck("", f"{type(exc).__name__}: {exc}")
    if find_task is not None and find_task(task_message.task_name) is None:
        return TaskCheck(task_message.task_id, f"unknown task {task_message.task_name!r}")
    return TaskCheck(task_message.task_id, None)
