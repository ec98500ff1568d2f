"""Bounded waits that never swallow a cancellation.

``asyncio.wait_for`` can, on Python 3.10 and 3.11, lose a cancellation that arrives just as the inner
awaitable completes; a shutdown that relies on it can then hang forever. Every bounded wait in this package
goes through these two helpers, which are built on ``asyncio.wait`` and do not have that flaw.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

__all__ = ["bounded", "retrieve_exception", "wait_event"]

_T = TypeVar("_T")


async def bounded(awaitable: Awaitable[_T], timeout: float) -> tuple[bool, _T | None]:
    """Await ``awaitable`` for at most ``timeout`` seconds: ``(True, result)``, or ``(False, None)``
    after cancelling it when the time ran out. Its own exception propagates."""
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except BaseException:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise
    if not done:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return False, None
    return True, task.result()


def retrieve_exception(future: asyncio.Future[Any]) -> None:
    """A done-callback for futures whose failure is reported elsewhere (to an awaiting caller, a hook or
    ``flush()``): asyncio must not also warn that their exception was never retrieved."""
    if not future.cancelled():
        future.exception()


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait for ``event`` at most ``timeout`` seconds; True when it was set."""
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=timeout)
    finally:
        waiter.cancel()
    return event.is_set()
