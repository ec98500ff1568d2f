"""Keep received messages invisible while they wait or run, so a long task is not delivered twice.

A heartbeat starts when a message is received (so messages waiting in the prefetch buffer are covered)
and stops when it is acked, skipped or handed back. Each one is a small task that calls
ChangeMessageVisibility every ``interval`` seconds, at most ``max_extensions`` times; it never raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from ..aws import AWSError, ReceiptHandleIsInvalidError

# (queue_url, receipt_handle, visibility_timeout): the broker passes a batched ChangeMessageVisibility.
ChangeVisibility = Callable[[str, str, int], Awaitable[None]]

__all__ = ["Heartbeats"]

logger = logging.getLogger("taskiq_sqs_http.broker")


class Heartbeats:
    def __init__(self, change_visibility: ChangeVisibility, *, max_extensions: int) -> None:
        self._change = change_visibility
        self._max_extensions = max_extensions
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def start(
        self, queue_name: str, queue_url: str, receipt_handle: str, visibility_timeout: int, interval: float
    ) -> None:
        if receipt_handle in self._tasks:
            return
        task = asyncio.create_task(
            self._beat(queue_name, queue_url, receipt_handle, visibility_timeout, interval),
            name=f"sqs-heartbeat-{queue_name}",
        )
        self._tasks[receipt_handle] = task
        task.add_done_callback(lambda done: self._forget(receipt_handle, done))

    def _forget(self, receipt_handle: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(receipt_handle) is task:
            del self._tasks[receipt_handle]

    async def stop(self, receipt_handle: str) -> None:
        task = self._tasks.pop(receipt_handle, None)
        if task is None or task.done():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _beat(
        self,
        queue_name: str,
        queue_url: str,
        receipt_handle: str,
        visibility_timeout: int,
        interval: float,
    ) -> None:
        for _ in range(self._max_extensions):
            await asyncio.sleep(interval)
            try:
                await self._change(queue_url, receipt_handle, visibility_timeout)
            except ReceiptHandleIsInvalidError:
                return  # acked or redelivered elsewhere: nothing left to keep invisible
            except AWSError as exc:
                logger.warning("Failed to extend visibility timeout for queue %s: %s", queue_name, exc)
                return
            except Exception:
                logger.exception("Heartbeat for queue %s failed unexpectedly", queue_name)
                return
        logger.warning(
            "Heartbeat for queue %s reached heartbeat_max_extensions (%d); the message may become "
            "visible to other consumers again if its task has not finished.",
            queue_name,
            self._max_extensions,
        )
