"""The receive side of ``listen()``: one long-polling task per queue feeding one bounded buffer.

Why this shape:

* Real long polling: each ReceiveMessage waits the queue's full ``wait_time_seconds`` (one request per
  idle wait period); with ``wait_time_seconds=0`` an empty answer is followed by a short sleep, never a
  tight loop.
* Bounded prefetch: a queue is polled again only when every message of its previous receive has been
  handed to the consumer (or skipped), so at most ``max_number_of_messages`` per queue are ever held
  here, on top of what the consumer has already taken.
* Nothing is stranded: messages held here when ``listen()`` stops are made visible again at once
  (ChangeMessageVisibility 0) instead of staying hidden until their timeout.
* Nothing stops the consumer: receive errors back off and retry, a message that cannot be prepared is
  logged with its id and left in SQS for redrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from taskiq.acks import AckableMessage

from ..aws import AWSError, ChangeVisibilityEntry, Message, SQSClient
from ._config import SQSQueue

__all__ = ["Consumer", "Target"]

logger = logging.getLogger(__name__)

# Sleep after an empty receive when the queue does not long-poll (wait_time_seconds=0).
IDLE_SLEEP_SECONDS = 1.0
# Backoff after a failed receive: doubles from the first value up to the cap.
ERROR_BACKOFF_SECONDS = 0.5
MAX_ERROR_BACKOFF_SECONDS = 20.0
# Upper bound on the time spent handing messages back when listen() stops.
RETURN_TIMEOUT_SECONDS = 10.0
_BATCH = 10


@dataclass(frozen=True, slots=True)
class Target:
    """A registered queue together with its resolved URL."""

    queue: SQSQueue
    url: str

    @property
    def name(self) -> str:
        return self.queue.name


Prepare = Callable[[Target, Message], Awaitable[AckableMessage | None]]
Hook = Callable[[Target, Message], Awaitable[None]]


async def make_visible(client: SQSClient, url: str, receipt_handles: Sequence[str]) -> None:
    """ChangeMessageVisibility 0 for each handle, ten per request; failures are logged only."""
    handles = list(receipt_handles)
    for start in range(0, len(handles), _BATCH):
        chunk = handles[start : start + _BATCH]
        entries = [ChangeVisibilityEntry(str(i), rh, 0) for i, rh in enumerate(chunk)]
        try:
            result = await client.change_message_visibility_batch(url, entries)
        except AWSError as exc:
            logger.warning("Could not hand %d messages back to %s: %s", len(chunk), url, exc)
            continue
        for failed in result.failed:
            logger.warning("Could not hand a message back to %s: %s %s", url, failed.code, failed.message)


class Consumer:
    def __init__(
        self,
        client: SQSClient,
        targets: Sequence[Target],
        *,
        prepare: Prepare,
        on_received: Hook,
        on_released: Hook,
        idle_sleep: float = IDLE_SLEEP_SECONDS,
        error_backoff: float = ERROR_BACKOFF_SECONDS,
    ) -> None:
        self._client = client
        self._targets = list(targets)
        self._prepare = prepare
        self._on_received = on_received
        self._on_released = on_released
        self._idle_sleep = idle_sleep
        self._error_backoff = error_backoff
        self._ready: asyncio.Queue[tuple[Target, Message, AckableMessage]] = asyncio.Queue()
        # Received from SQS and not yet handed to the consumer, by receipt handle.
        self._held: dict[str, tuple[Target, Message]] = {}
        self._outstanding: dict[str, int] = {t.name: 0 for t in self._targets}
        self._drained: dict[str, asyncio.Event] = {t.name: asyncio.Event() for t in self._targets}
        self._pollers: list[asyncio.Task[None]] = []

    @property
    def held(self) -> int:
        return len(self._held)

    def start(self) -> None:
        for target in self._targets:
            self._drained[target.name].set()
            task = asyncio.create_task(self._poll(target), name=f"sqs-poll-{target.name}")
            task.add_done_callback(self._poller_done)
            self._pollers.append(task)

    @staticmethod
    def _poller_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("SQS poller %s stopped", task.get_name(), exc_info=task.exception())

    async def get(self) -> tuple[Target, Message, AckableMessage]:
        target, message, ackable = await self._ready.get()
        self._release_slot(target, message)
        return target, message, ackable

    def _release_slot(self, target: Target, message: Message) -> None:
        self._held.pop(message.receipt_handle, None)
        self._outstanding[target.name] -= 1
        if self._outstanding[target.name] <= 0:
            self._outstanding[target.name] = 0
            self._drained[target.name].set()

    async def _poll(self, target: Target) -> None:
        queue = target.queue
        failures = 0
        while True:
            await self._drained[target.name].wait()
            started = time.monotonic()
            try:
                messages = await self._client.receive_message(
                    target.url,
                    max_number_of_messages=queue.max_number_of_messages,
                    wait_time_seconds=queue.wait_time_seconds,
                    visibility_timeout=queue.visibility_timeout,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                delay = min(self._error_backoff * 2 ** (failures - 1), MAX_ERROR_BACKOFF_SECONDS)
                logger.warning(
                    "Receiving from queue %s failed (%s); retrying in %.1f s", target.name, exc, delay
                )
                await asyncio.sleep(delay)
                continue
            failures = 0
            if not messages:
                # An empty answer faster than the wait (wait 0, or a server that does not long-poll)
                # is followed by a pause, so an idle queue never spins.
                floor = min(self._idle_sleep, queue.wait_time_seconds or self._idle_sleep)
                elapsed = time.monotonic() - started
                if elapsed < floor:
                    await asyncio.sleep(floor - elapsed)
                continue
            self._drained[target.name].clear()
            self._outstanding[target.name] += len(messages)
            for message in messages:
                self._held[message.receipt_handle] = (target, message)
            for message in messages:
                await self._admit(target, message)

    async def _admit(self, target: Target, message: Message) -> None:
        ackable: AckableMessage | None = None
        try:
            await self._on_received(target, message)
            ackable = await self._prepare(target, message)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception(
                "Message %s from queue %s could not be prepared; leaving it in SQS for redrive",
                message.message_id,
                target.name,
            )
        if ackable is None:
            # Skipped (malformed, not yet due, ...): forget it here without changing its visibility.
            self._release_slot(target, message)
            with contextlib.suppress(Exception):
                await self._on_released(target, message)
            return
        self._ready.put_nowait((target, message, ackable))

    async def aclose(self) -> None:
        """Stop polling (cancelling in-flight receives) and hand every held message back to SQS."""
        for task in self._pollers:
            task.cancel()
        for task in self._pollers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._pollers.clear()
        held = list(self._held.values())
        self._held.clear()
        while not self._ready.empty():
            self._ready.get_nowait()
        if not held:
            return
        by_url: dict[str, list[str]] = {}
        for target, message in held:
            with contextlib.suppress(Exception):
                await self._on_released(target, message)
            by_url.setdefault(target.url, []).append(message.receipt_handle)
        logger.info("Handing %d received but unprocessed messages back to SQS", len(held))
        try:
            await asyncio.wait_for(
                asyncio.gather(*(make_visible(self._client, u, h) for u, h in by_url.items())),
                RETURN_TIMEOUT_SECONDS,
            )
        except asyncio.TimeoutError:
            logger.warning("Timed out handing messages back; they reappear after their timeout")
