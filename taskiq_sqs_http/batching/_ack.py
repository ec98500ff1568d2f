"""Coalesce deletes (acks) and visibility changes (heartbeats) into their batch calls.

Unlike sends, a caller here awaits the outcome: ``ack()`` must still mean "deleted". Each call waits for
the batch that carries it, which leaves after a short linger (default 20 ms) or as soon as it holds 10
entries. A caller that knows no other entry can join (the broker, when no other delivery is in flight)
asks for the batch to leave at once: coalescing must never make a lone ack wait for company.

A stale receipt handle (the message was already deleted, or its visibility expired and someone else received
it) is logged, not raised, for deletes: there is nothing the caller can do about it, and raising would make
taskiq treat a finished task as failed. For visibility changes it raises `ReceiptHandleIsInvalidError`, so a
heartbeat learns at the first stale answer that its message is gone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from ..aws import ConfigurationError, ReceiptHandleIsInvalidError, ServiceError, is_stale_receipt_handle
from ..aws._aio import retrieve_exception
from ..aws.sqs import MAX_BATCH_ENTRIES, BatchResult, ChangeVisibilityEntry, DeleteMessageEntry
from ._protocols import SQSBatchAPI

__all__ = ["BatchEntryError", "DeleteBatcher", "VisibilityBatcher"]

logger = logging.getLogger("taskiq_sqs_http.batching")


Item = TypeVar("Item")
Entry = TypeVar("Entry")


class BatchEntryError(ServiceError):
    """One entry of a DeleteMessageBatch / ChangeMessageVisibilityBatch failed."""


class _Coalescer(Generic[Item, Entry]):
    def __init__(
        self,
        *,
        name: str,
        call: Callable[[str, Sequence[Entry]], Awaitable[BatchResult]],
        make_entry: Callable[[str, Item], Entry],
        linger: float,
        batch_size: int,
        stale_ok: bool,
        max_attempts: int = 3,
    ) -> None:
        if not 0 <= linger <= 1:
            raise ConfigurationError(f"linger is {linger!r}; allowed range is 0..1 seconds")
        if not 1 <= batch_size <= MAX_BATCH_ENTRIES:
            raise ConfigurationError(f"batch_size is {batch_size!r}; allowed range is 1..{MAX_BATCH_ENTRIES}")
        self._name = name
        self._call = call
        self._make_entry = make_entry
        self._linger = linger
        self._batch_size = batch_size
        self._max_attempts = max_attempts
        self._stale_ok = stale_ok
        self._queues: dict[str, list[tuple[Item, asyncio.Future[None], int]]] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, queue_url: str, item: Item, *, linger: bool = True) -> None:
        """Add ``item`` to its queue's next batch and wait for the batch's answer.

        ``linger=False``: no other entry is expected, so the batch leaves now with whatever it holds.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.add_done_callback(retrieve_exception)
        self._add(queue_url, item, future, 0, linger=linger)
        # Shielded: a cancelled caller must not cancel a batch that carries other callers' entries.
        await asyncio.shield(future)

    def flush(self) -> None:
        """Send every waiting batch now: the caller knows that no more entries will join them."""
        for queue_url in list(self._queues):
            self._dispatch(queue_url)

    def _add(
        self, queue_url: str, item: Item, future: asyncio.Future[None], attempts: int, *, linger: bool = True
    ) -> None:
        pending = self._queues.setdefault(queue_url, [])
        pending.append((item, future, attempts))
        if len(pending) >= self._batch_size or self._linger == 0 or not linger:
            self._dispatch(queue_url)
        elif queue_url not in self._timers:
            self._timers[queue_url] = self._spawn(self._later(queue_url))

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _later(self, queue_url: str) -> None:
        await asyncio.sleep(self._linger)
        self._timers.pop(queue_url, None)
        self._dispatch(queue_url)

    def _dispatch(self, queue_url: str) -> None:
        pending = self._queues.pop(queue_url, [])
        timer = self._timers.pop(queue_url, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
        for start in range(0, len(pending), self._batch_size):
            self._spawn(self._send(queue_url, pending[start : start + self._batch_size]))

    async def _send(self, queue_url: str, batch: list[tuple[Item, asyncio.Future[None], int]]) -> None:
        entries = [self._make_entry(str(i), item) for i, (item, _, _) in enumerate(batch)]
        try:
            result = await self._call(queue_url, entries)
        except BaseException as exc:
            for _, future, _ in batch:
                if not future.done():
                    if isinstance(exc, asyncio.CancelledError):
                        future.cancel()
                    else:
                        future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for index in result.successful:
            future = batch[int(index)][1]
            if not future.done():
                future.set_result(None)
        for failed in result.failed:
            item, future, attempts = batch[int(failed.id)]
            if future.done():
                continue
            if is_stale_receipt_handle(failed.code):
                if self._stale_ok:
                    logger.warning(
                        "%s: stale receipt handle ignored (%s: %s)", self._name, failed.code, failed.message
                    )
                    future.set_result(None)
                else:
                    future.set_exception(
                        ReceiptHandleIsInvalidError(
                            failed.code, failed.message, status=200, operation=self._name
                        )
                    )
            elif not failed.sender_fault and attempts + 1 < self._max_attempts:
                self._add(queue_url, item, future, attempts + 1)
            else:
                future.set_exception(
                    BatchEntryError(failed.code, failed.message, status=200, operation=self._name)
                )
        answered = set(result.successful) | {f.id for f in result.failed}
        for index, (_, future, _) in enumerate(batch):
            if str(index) not in answered and not future.done():
                future.set_exception(
                    BatchEntryError(
                        "MissingEntry", "SQS did not report this entry", status=200, operation=self._name
                    )
                )

    async def aclose(self) -> None:
        """Send whatever is waiting now and wait for every batch in flight."""
        self.flush()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


class DeleteBatcher:
    """``await delete(queue_url, receipt_handle)`` returns once SQS deleted the message."""

    def __init__(
        self, client: SQSBatchAPI, *, linger: float = 0.02, batch_size: int = MAX_BATCH_ENTRIES
    ) -> None:
        self._coalescer: _Coalescer[str, DeleteMessageEntry] = _Coalescer(
            name="DeleteMessageBatch",
            call=client.delete_message_batch,
            make_entry=DeleteMessageEntry,
            linger=linger,
            batch_size=batch_size,
            stale_ok=True,
        )

    async def delete(self, queue_url: str, receipt_handle: str, *, linger: bool = True) -> None:
        """Return once SQS deleted the message; ``linger=False`` when no other ack can join the batch."""
        await self._coalescer.submit(queue_url, receipt_handle, linger=linger)

    def flush(self) -> None:
        self._coalescer.flush()

    async def aclose(self) -> None:
        await self._coalescer.aclose()


class VisibilityBatcher:
    """``await change(queue_url, receipt_handle, seconds)`` for heartbeats and early returns.

    A stale receipt handle raises `ReceiptHandleIsInvalidError` here: a heartbeat must learn that its
    message is gone so that it stops.
    """

    def __init__(
        self, client: SQSBatchAPI, *, linger: float = 0.02, batch_size: int = MAX_BATCH_ENTRIES
    ) -> None:
        self._coalescer: _Coalescer[tuple[str, int], ChangeVisibilityEntry] = _Coalescer(
            name="ChangeMessageVisibilityBatch",
            call=client.change_message_visibility_batch,
            make_entry=lambda i, item: ChangeVisibilityEntry(i, item[0], item[1]),
            linger=linger,
            batch_size=batch_size,
            stale_ok=False,
        )

    async def change(
        self, queue_url: str, receipt_handle: str, visibility_timeout: int, *, linger: bool = True
    ) -> None:
        await self._coalescer.submit(queue_url, (receipt_handle, visibility_timeout), linger=linger)

    def flush(self) -> None:
        self._coalescer.flush()

    async def aclose(self) -> None:
        await self._coalescer.aclose()
