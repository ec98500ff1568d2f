"""Small asyncio helpers of the broker's lifecycle: fail fast at startup, never hang at shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

__all__ = ["bounded", "first_error_gather"]

# The broker's records keep the logger name they had before the broker was split into modules.
logger = logging.getLogger("taskiq_sqs_http.broker._broker")
_T = TypeVar("_T")


async def first_error_gather(coros: Iterable[Coroutine[Any, Any, _T]]) -> list[_T]:
    """Run concurrently; on the first failure cancel the rest and raise it."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    if not tasks:
        return []
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return [task.result() for task in tasks]


async def bounded(coro: Coroutine[Any, Any, None], timeout: float, what: str) -> None:
    """Await ``coro`` for at most ``timeout`` seconds (``asyncio.wait``: never swallows a cancellation)."""
    task = asyncio.ensure_future(coro)
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        logger.warning("Shutdown: gave up waiting for %s after %.0f s", what, timeout)
    elif not task.cancelled() and task.exception() is not None:
        logger.warning("Shutdown: %s failed: %s", what, task.exception())
