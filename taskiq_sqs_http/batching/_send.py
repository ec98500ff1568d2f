"""SendBatcher: coalesce sends into SendMessageBatch without ever losing a message.

A caller's ``submit`` returns as soon as the message is buffered (``kiq()`` semantics), so the buffer must
be durable in the sense that matters: every buffered message is sent, or retried with backoff, or reported
to the error hook and to the next ``flush()``. Nothing is dropped silently:

- ``Failed`` entries of a batch are retried one by one when SQS says the fault was its own, and reported
  when it was ours (``SenderFault``);
- a request that fails as a whole is retried with backoff, up to ``max_attempts`` per message;
- batches respect both SQS limits, 10 entries and 1 MiB of payload, splitting as needed;
- FIFO queues send one batch at a time and put retried entries back at the head, so order within a
  message group survives retries;
- the buffer is bounded by messages and bytes: when SQS is unreachable, ``put()`` waits for room and then
  raises `SendBufferFullError` to its caller, so a producer never holds an unbounded backlog in memory;
- ``aclose()`` flushes within a deadline and never hangs; whatever is still unsent then is reported.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..aws import AWSError, ConfigurationError, RetryPolicy, ServiceError, is_permanent_request_error
from ..aws._aio import bounded, retrieve_exception, wait_event
from ..aws.sqs import MAX_BATCH_BYTES, MAX_BATCH_ENTRIES, SendMessageEntry, SendMessageResult
from ._protocols import SQSBatchAPI

__all__ = ["SendBatchError", "SendBatcher", "SendBufferFullError", "SendFailure"]

# Defaults of the buffer bound: a minute of a busy producer's tasks, and far below what hurts a process.
DEFAULT_MAX_BUFFERED_MESSAGES = 10_000
DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024

logger = logging.getLogger("taskiq_sqs_http.batching")


@dataclass(frozen=True, slots=True)
class SendFailure:
    """A message that could not be sent; ``entry.id`` is the caller's key (the task id for the broker)."""

    queue_url: str
    entry: SendMessageEntry
    code: str
    message: str
    attempts: int

    def describe(self) -> str:
        return (
            f"message {self.entry.id} to {self.queue_url}: {self.code}: {self.message} "
            f"(attempts: {self.attempts})"
        )


class SendBatchError(AWSError):
    """Raised by ``flush()``/``aclose()`` when messages could not be sent; carries every failure."""

    def __init__(self, failures: list[SendFailure]) -> None:
        self.failures = failures
        shown = "; ".join(f.describe() for f in failures[:5])
        more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
        super().__init__(f"{len(failures)} message(s) could not be sent: {shown}{more}")


@dataclass(slots=True, eq=False)
class _Pending:
    """One buffered message. Kept small: a producer may buffer ten thousand of them."""

    entry: SendMessageEntry
    size: int
    future: asyncio.Future[SendMessageResult] | None
    enqueued: float
    attempts: int = 0
    not_before: float = 0.0
    settled: bool = False


@dataclass(slots=True, eq=False)
class _QueueState:
    url: str
    fifo: bool
    batch_size: int
    linger: float
    buffer: deque[_Pending] = field(default_factory=deque[_Pending])
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    worker: asyncio.Task[None] | None = None
    inflight: set[asyncio.Task[None]] = field(default_factory=set[asyncio.Task[None]])


class SendBufferFullError(SendBatchError):
    """``put()`` waited for room in the full send buffer and gave up: the message was not accepted."""


class SendBatcher:
    """Per-queue buffers drained into SendMessageBatch calls."""

    def __init__(
        self,
        client: SQSBatchAPI,
        *,
        batch_size: int = MAX_BATCH_ENTRIES,
        linger: float = 1.0,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        max_attempts: int = 8,
        max_inflight: int = 4,
        retry_policy: RetryPolicy | None = None,
        on_failure: Callable[[SendFailure], object] | None = None,
        is_fifo: Callable[[str], bool] = lambda url: url.endswith(".fifo"),
        max_buffered_messages: int = DEFAULT_MAX_BUFFERED_MESSAGES,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_ENTRIES:
            raise ConfigurationError(f"batch_size is {batch_size!r}; allowed range is 1..{MAX_BATCH_ENTRIES}")
        if not 0 <= linger <= 60:
            raise ConfigurationError(f"linger is {linger!r}; allowed range is 0..60 seconds")
        if not 1 <= max_batch_bytes <= MAX_BATCH_BYTES:
            raise ConfigurationError(
                f"max_batch_bytes is {max_batch_bytes!r}; allowed range is 1..{MAX_BATCH_BYTES}"
            )
        if not 1 <= max_attempts <= 100:
            raise ConfigurationError(f"max_attempts is {max_attempts!r}; allowed range is 1..100")
        if not 1 <= max_inflight <= 64:
            raise ConfigurationError(f"max_inflight is {max_inflight!r}; allowed range is 1..64")
        if not 1 <= max_buffered_messages <= 10_000_000:
            raise ConfigurationError(
                f"max_buffered_messages is {max_buffered_messages!r}; allowed range is 1..10000000"
            )
        if not MAX_BATCH_BYTES <= max_buffered_bytes <= 2**40:
            raise ConfigurationError(
                f"max_buffered_bytes is {max_buffered_bytes!r}; allowed range is {MAX_BATCH_BYTES}..{2**40}"
            )
        self._client = client
        self._max_buffered_messages = max_buffered_messages
        self._max_buffered_bytes = max_buffered_bytes
        self._buffered_messages = 0
        self._buffered_bytes = 0
        self._room = asyncio.Event()
        self._room.set()
        self._batch_size = batch_size
        self._linger = linger
        # Queues with their own batch size and linger (SQSQueue settings); the others use the defaults.
        self._per_queue: dict[str, tuple[int, float]] = {}
        self._max_bytes = max_batch_bytes
        self._max_attempts = max_attempts
        self._max_inflight = max_inflight
        self._policy = retry_policy or RetryPolicy(base_delay=0.2, max_delay=10.0)
        self._on_failure = on_failure
        self._is_fifo = is_fifo
        self._queues: dict[str, _QueueState] = {}
        self._failures: list[SendFailure] = []
        self._flush_requests = 0
        self._closing = False
        self._idle = asyncio.Event()
        self._idle.set()

    # -- public API ---------------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Messages buffered or in flight."""
        return sum(len(q.buffer) + len(q.inflight) for q in self._queues.values())

    def configure_queue(self, queue_url: str, *, batch_size: int, linger: float) -> None:
        """Batch size and linger for one queue, instead of the batcher's defaults."""
        if not 1 <= batch_size <= MAX_BATCH_ENTRIES:
            raise ConfigurationError(f"batch_size is {batch_size!r}; allowed range is 1..{MAX_BATCH_ENTRIES}")
        if not 0 <= linger <= 60:
            raise ConfigurationError(f"linger is {linger!r}; allowed range is 0..60 seconds")
        self._per_queue[queue_url] = (batch_size, linger)

    @property
    def full(self) -> bool:
        """No room for another message: the buffer is at its message or byte bound."""
        return (
            self._buffered_messages >= self._max_buffered_messages
            or self._buffered_bytes >= self._max_buffered_bytes
        )

    async def put(self, queue_url: str, entry: SendMessageEntry, *, timeout: float) -> None:
        """Buffer one message, first waiting up to ``timeout`` seconds for room in a full buffer.

        Raises `SendBufferFullError` when no room came: the message was not accepted, and the caller
        knows it (the broker raises it from ``kiq()``). Its outcome is reported like every buffered
        message's (the failure hook, ``flush()``), so no future is kept for it.
        """
        if self.full and not self._closing:
            deadline = time.monotonic() + timeout
            while self.full and not self._closing:
                remaining = deadline - time.monotonic()
                self._room.clear()
                arrived = remaining > 0 and await wait_event(self._room, remaining)
                if not arrived and self.full:
                    raise SendBufferFullError(
                        [
                            SendFailure(
                                queue_url,
                                entry,
                                "SendBufferFull",
                                f"the send buffer held {self._buffered_messages} messages "
                                f"({self._buffered_bytes} bytes) for {timeout:.1f} s; SQS is not "
                                "accepting messages fast enough",
                                0,
                            )
                        ]
                    )
        self._buffer(queue_url, entry, None)

    def submit(self, queue_url: str, entry: SendMessageEntry) -> asyncio.Future[SendMessageResult]:
        """Buffer one message. The future resolves when SQS has it, or fails when it never will.

        Does not wait for room: callers that accept work from users go through `put`.
        """
        future: asyncio.Future[SendMessageResult] = asyncio.get_running_loop().create_future()
        future.add_done_callback(retrieve_exception)
        self._buffer(queue_url, entry, future)
        return future

    def _buffer(
        self, queue_url: str, entry: SendMessageEntry, future: asyncio.Future[SendMessageResult] | None
    ) -> None:
        if self._closing:
            raise ConfigurationError("the send batcher is closed; no new messages are accepted")
        size = entry.wire_size()
        if size > self._max_bytes:
            raise ConfigurationError(
                f"message {entry.id} is {size} bytes; allowed at most {self._max_bytes} bytes per message"
            )
        self._buffered_messages += 1
        self._buffered_bytes += size
        state = self._queue(queue_url)
        state.buffer.append(_Pending(entry, size, future, time.monotonic()))
        self._idle.clear()
        state.wake.set()

    async def flush(self) -> None:
        """Send everything buffered now (no linger) and raise `SendBatchError` if anything failed."""
        self._flush_requests += 1
        try:
            for state in self._queues.values():
                state.wake.set()
            await self._wait_idle()
        finally:
            self._flush_requests -= 1
        self._raise_failures()

    async def aclose(self, timeout: float = 30.0) -> None:
        """Flush within ``timeout`` seconds, then stop; unsent messages are reported, never dropped."""
        self._closing = True
        self._flush_requests += 1
        for state in self._queues.values():
            state.wake.set()
        self._room.set()  # waiting producers see the close and fail at once
        try:
            done, _ = await bounded(self._wait_idle(), timeout)
            if not done:
                logger.error("send batcher: %d message(s) still unsent after %.1f s", self.pending, timeout)
        finally:
            await self._stop_workers()
        self._raise_failures()

    # -- internals ----------------------------------------------------------------------------------
    def _settle(self, pending: _Pending) -> bool:
        """The message leaves the buffer's accounting (sent, or failed for good); False if it already had."""
        if pending.settled:
            return False
        pending.settled = True
        self._buffered_messages -= 1
        self._buffered_bytes -= pending.size
        if not self.full:
            self._room.set()
        return True

    def _queue(self, queue_url: str) -> _QueueState:
        state = self._queues.get(queue_url)
        if state is None:
            batch_size, linger = self._per_queue.get(queue_url, (self._batch_size, self._linger))
            state = _QueueState(queue_url, self._is_fifo(queue_url), batch_size, linger)
            self._queues[queue_url] = state
        if state.worker is None or state.worker.done():
            state.worker = asyncio.create_task(self._run(state), name=f"sqs-send-batcher:{queue_url}")
        return state

    async def _wait_idle(self) -> None:
        while self.pending:
            self._idle.clear()
            for state in self._queues.values():
                if state.buffer and (state.worker is None or state.worker.done()):
                    self._queue(state.url)
            await self._idle.wait()

    def _check_idle(self) -> None:
        if not self.pending:
            self._idle.set()

    def _raise_failures(self) -> None:
        if self._failures:
            failures, self._failures = self._failures, []
            raise SendBatchError(failures)

    async def _stop_workers(self) -> None:
        tasks = [t for s in self._queues.values() for t in (s.worker, *s.inflight) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for state in self._queues.values():
            while state.buffer:
                self._fail(state.url, state.buffer.popleft(), "ShutdownTimeout", "not sent before close")
            state.inflight.clear()
        self._check_idle()

    async def _run(self, state: _QueueState) -> None:
        while True:
            if not state.buffer:
                self._check_idle()
                state.wake.clear()
                await state.wake.wait()
                continue
            now = time.monotonic()
            head = state.buffer[0]
            hurry = self._flush_requests > 0 or self._closing
            due = max(head.not_before, head.enqueued + (0 if hurry else state.linger))
            if head.not_before <= now and (len(state.buffer) >= state.batch_size or hurry):
                due = now
            if due > now:
                state.wake.clear()
                await wait_event(state.wake, due - now)
                continue
            batch = self._take(state)
            if state.fifo:
                await self._send(state, batch)
                continue
            while len(state.inflight) >= self._max_inflight:
                await asyncio.wait(state.inflight, return_when=asyncio.FIRST_COMPLETED)
            task = asyncio.create_task(self._send(state, batch))
            state.inflight.add(task)

            def _done(task: asyncio.Task[None], state: _QueueState = state) -> None:
                state.inflight.discard(task)
                self._check_idle()

            task.add_done_callback(_done)

    def _take(self, state: _QueueState) -> list[_Pending]:
        batch: list[_Pending] = []
        total = 0
        now = time.monotonic()
        while state.buffer and len(batch) < state.batch_size:
            item = state.buffer[0]
            if item.not_before > now or (batch and total + item.size > self._max_bytes):
                break
            batch.append(state.buffer.popleft())
            total += item.size
        return batch

    async def _send(self, state: _QueueState, batch: list[_Pending]) -> None:
        wire = [dataclasses.replace(p.entry, id=str(i)) for i, p in enumerate(batch)]
        for pending in batch:
            pending.attempts += 1
        retry: list[_Pending] = []
        try:
            result = await self._client.send_message_batch(state.url, wire)
        except asyncio.CancelledError:
            state.buffer.extendleft(reversed(batch))
            raise
        except AWSError as exc:
            code = exc.code if isinstance(exc, ServiceError) else type(exc).__name__
            permanent = is_permanent_request_error(exc)
            logger.warning("SendMessageBatch to %s failed (%d entries): %s", state.url, len(batch), exc)
            for pending in batch:
                if permanent:
                    self._fail(state.url, pending, code, str(exc))
                else:
                    retry.append(pending)
        except Exception as exc:  # a bug or an unexpected error must not lose the batch either
            logger.exception("SendMessageBatch to %s raised unexpectedly", state.url)
            retry.extend(batch)
            code = type(exc).__name__
        else:
            for index, pending in enumerate(batch):
                sent = result.successful.get(str(index))
                if sent is not None and self._settle(pending):
                    _resolve(pending.future, sent)
            for failed in result.failed:
                pending = batch[int(failed.id)]
                if failed.sender_fault:
                    self._fail(state.url, pending, failed.code, failed.message)
                else:
                    retry.append(pending)
            answered = set(result.successful) | {f.id for f in result.failed}
            retry.extend(p for i, p in enumerate(batch) if str(i) not in answered)
        self._requeue(state, retry)
        self._check_idle()

    def _requeue(self, state: _QueueState, retry: list[_Pending]) -> None:
        now = time.monotonic()
        again: list[_Pending] = []
        for pending in retry:
            if pending.attempts >= self._max_attempts:
                self._fail(
                    state.url, pending, "RetriesExhausted", f"gave up after {pending.attempts} attempts"
                )
                continue
            pending.not_before = now + self._policy.delay(pending.attempts)
            again.append(pending)
        # Back at the head, in their original order: FIFO groups keep their order across retries.
        state.buffer.extendleft(reversed(again))
        if again:
            state.wake.set()

    def _fail(self, queue_url: str, pending: _Pending, code: str, message: str) -> None:
        failure = SendFailure(queue_url, pending.entry, code, message, pending.attempts)
        logger.error("could not send %s", failure.describe())
        self._failures.append(failure)
        if self._settle(pending):
            _resolve(pending.future, SendBatchError([failure]))
        if self._on_failure is not None:
            try:
                self._on_failure(failure)
            except Exception:
                logger.exception("send failure hook raised")


def _resolve(
    future: asyncio.Future[SendMessageResult] | None, outcome: SendMessageResult | Exception
) -> None:
    """Tell a `submit` caller, if there is one still waiting, how its message fared."""
    if future is None or future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
