"""The receive loop of ``listen()``: one long-polling task per queue feeding one bounded buffer.

Why this shape:

* Real long polling: each ReceiveMessage waits the queue's full ``wait_time_seconds`` (one request per
  idle wait period); with ``wait_time_seconds=0`` an empty answer is followed by a short sleep, never a
  tight loop.
* Bounded prefetch: a queue is polled again only when every message of its previous receive has been
  handed to the consumer (or settled by the inbox), so at most ``max_number_of_messages`` per queue are
  ever held here, on top of what the consumer has already taken.
* Stopping never hides messages. ``aclose()`` returns at once, but a ReceiveMessage already on the wire is
  not cancelled: the server may already have handed it messages, which would then stay invisible for the
  whole visibility timeout (a latency spike on every rolling deploy). It finishes in the background,
  bounded by its wait time, and whatever it returns is handed back at once; ``drain()`` (called by the
  broker's shutdown) waits for it. Messages received but not yet taken are handed back too.
* Nothing stops the consumer: receive errors (throttling, ``OverLimit`` at the in-flight quota, outages)
  back off exponentially with a warning; each message's fate is the inbox's (`_lifecycle`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from ..aws import Message, SQSClient
from ..aws._aio import bounded
from ._lifecycle import Delivery, Inbox
from ._queues import Target

__all__ = ["Consumer"]

logger = logging.getLogger("taskiq_sqs_http.broker")

# Sleep after an empty receive when the queue does not long-poll (wait_time_seconds=0).
IDLE_SLEEP_SECONDS = 1.0
# Backoff after a failed receive: doubles from the first value up to the cap.
ERROR_BACKOFF_SECONDS = 0.5
MAX_ERROR_BACKOFF_SECONDS = 20.0
# Upper bound on handing messages back when listen() stops.
RETURN_TIMEOUT_SECONDS = 10.0
# A receive still in flight at stop gets its wait time plus this margin to come back.
RECEIVE_MARGIN_SECONDS = 5.0


class Consumer:
    def __init__(
        self,
        client: SQSClient,
        targets: Sequence[Target],
        inbox: Inbox,
        *,
        idle_sleep: float = IDLE_SLEEP_SECONDS,
        error_backoff: float = ERROR_BACKOFF_SECONDS,
        return_timeout: float = RETURN_TIMEOUT_SECONDS,
    ) -> None:
        self._client = client
        self._targets = list(targets)
        self._inbox = inbox
        self._idle_sleep = idle_sleep
        self._error_backoff = error_backoff
        self._return_timeout = return_timeout
        self._ready: asyncio.Queue[Delivery] = asyncio.Queue()
        # Received from SQS and not yet admitted by the inbox, by receipt handle.
        self._held: dict[str, tuple[Target, Message]] = {}
        self._outstanding: dict[str, int] = {t.name: 0 for t in self._targets}
        self._drained: dict[str, asyncio.Event] = {t.name: asyncio.Event() for t in self._targets}
        self._pollers: dict[str, asyncio.Task[None]] = {}
        # Pollers whose ReceiveMessage is on the wire right now.
        self._receiving: set[str] = set()
        self._stopping = False

    def start(self) -> None:
        for target in self._targets:
            self._drained[target.name].set()
            task = asyncio.create_task(self._poll(target), name=f"sqs-poll-{target.name}")
            task.add_done_callback(self._poller_done)
            self._pollers[target.name] = task

    @staticmethod
    def _poller_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("SQS poller %s stopped", task.get_name(), exc_info=task.exception())

    @property
    def draining(self) -> bool:
        """Receives started before ``aclose()`` are still on the wire."""
        return any(not task.done() for task in self._pollers.values())

    async def get(self) -> Delivery:
        """The next delivery; from here on it is in flight (the inbox hands it back if never settled)."""
        delivery = await self._ready.get()
        self._release_slot(delivery.target)
        self._inbox.dispatched(delivery)
        return delivery

    def _release_slot(self, target: Target) -> None:
        self._outstanding[target.name] -= 1
        if self._outstanding[target.name] <= 0:
            self._outstanding[target.name] = 0
            self._drained[target.name].set()

    async def _poll(self, target: Target) -> None:
        queue = target.queue
        failures = 0
        while not self._stopping:
            await self._drained[target.name].wait()
            started = time.monotonic()
            self._receiving.add(target.name)
            try:
                messages = await self._client.receive_message(
                    target.url,
                    max_number_of_messages=queue.max_number_of_messages,
                    wait_time_seconds=queue.wait_seconds,
                    visibility_timeout=queue.visibility_timeout,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._stopping:
                    return
                failures += 1
                delay = min(self._error_backoff * 2 ** (failures - 1), MAX_ERROR_BACKOFF_SECONDS)
                logger.warning(
                    "Receiving from queue %s failed (%s); retrying in %.1f s", target.name, exc, delay
                )
                self._receiving.discard(target.name)
                await asyncio.sleep(delay)
                continue
            finally:
                self._receiving.discard(target.name)
            if self._stopping:
                # listen() stopped while this receive was on the wire: nobody will take these.
                await self._inbox.make_visible(
                    [(target.url, m.receipt_handle) for m in messages], self._return_timeout
                )
                return
            failures = 0
            if not messages:
                # An empty answer faster than the wait (wait 0, or a server that does not long-poll)
                # is followed by a pause, so an idle queue never spins.
                floor = min(self._idle_sleep, queue.wait_seconds or self._idle_sleep)
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
        delivery: Delivery | None = None
        try:
            delivery = await self._inbox.admit(target, message)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception(
                "Message %s from queue %s could not be prepared; leaving it in SQS for redrive",
                message.message_id,
                target.name,
            )
        self._held.pop(message.receipt_handle, None)
        if delivery is None:
            self._release_slot(target)
            return
        self._ready.put_nowait(delivery)

    async def aclose(self) -> None:
        """Stop yielding now; hand back what was received but not taken.

        Pollers waiting on a ReceiveMessage keep waiting for its answer (see `drain`); the others stop.
        """
        self._stopping = True
        idle = [task for name, task in self._pollers.items() if name not in self._receiving]
        for task in idle:
            task.cancel()
        for task in idle:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        held = list(self._held.values())
        self._held.clear()
        ready: list[Delivery] = []
        while not self._ready.empty():
            ready.append(self._ready.get_nowait())
        if ready:
            await self._inbox.hand_back(ready, self._return_timeout)
        if held:
            await self._inbox.make_visible(
                [(target.url, message.receipt_handle) for target, message in held], self._return_timeout
            )

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for receives that were on the wire at ``aclose()``; what they return is handed back."""
        tasks = [task for task in self._pollers.values() if not task.done()]
        if not tasks:
            return
        longest = max(t.queue.wait_seconds for t in self._targets) + RECEIVE_MARGIN_SECONDS
        limit = longest if timeout is None else min(timeout, longest)
        finished, _ = await bounded(asyncio.gather(*tasks, return_exceptions=True), limit)
        if not finished:
            logger.warning("Gave up after %.0f s waiting for %d receives to come back", limit, len(tasks))
