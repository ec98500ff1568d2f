"""Caching and refreshing of temporary credentials, shared by every provider that fetches them.

Temporary credentials must be renewed before they expire, but a worker may sign hundreds of requests
a second: the refresh has to happen once, not once per request, and should happen before anyone has
to wait. Two windows, as in botocore and aiodynamo:

* advisory (15 min before expiry): the caller gets the current credentials at once and a single
  background task fetches new ones; if that fails, the failure is logged and the old credentials
  stay in use;
* mandatory (10 min before expiry): callers wait for the fetch (all of them for the same one), and a
  failure is raised, because the credentials may stop working before the next attempt.

Instance metadata sometimes hands out credentials that are already inside the refresh window (during
an IMDS outage it keeps serving the old ones). Re-fetching on every call would hammer a struggling
endpoint, so for such sources the local expiry is pushed out by the advisory window plus 2 to 10
random minutes.

`RefreshableCredentialProvider` is the base of every source that fetches temporary credentials (container
endpoint, instance metadata, web identity, profiles): a source implements ``fetch()``, one uncached
exchange, and inherits the caching, refreshing and closing. It can also wrap any ``async`` callable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from ._credentials import Credentials

__all__ = ["RefreshSettings", "RefreshableCredentialProvider", "utc_now"]

logger = logging.getLogger("taskiq_sqs_http.aws")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True, slots=True)
class RefreshSettings:
    """Refresh timing; injectable so tests (and chaos tests) can run the windows in seconds."""

    advisory_window: timedelta = timedelta(minutes=15)
    mandatory_window: timedelta = timedelta(minutes=10)
    # After a failed background refresh, wait this long before trying again in the background, so
    # that every request in the advisory window does not start its own doomed fetch.
    retry_after_failure: timedelta = timedelta(seconds=30)
    extension_jitter: tuple[timedelta, timedelta] = (timedelta(minutes=2), timedelta(minutes=10))
    now: Callable[[], datetime] = utc_now

    def __post_init__(self) -> None:
        if self.mandatory_window < timedelta(0) or self.advisory_window < self.mandatory_window:
            raise ValueError("refresh windows must satisfy 0 <= mandatory_window <= advisory_window")
        low, high = self.extension_jitter
        if low < timedelta(0) or high < low:
            raise ValueError("extension_jitter must be (low, high) with 0 <= low <= high")

    def scaled(self, factor: float) -> RefreshSettings:
        """The same policy with every duration multiplied by ``factor`` (for fast chaos tests)."""
        low, high = self.extension_jitter
        return replace(
            self,
            advisory_window=self.advisory_window * factor,
            mandatory_window=self.mandatory_window * factor,
            retry_after_failure=self.retry_after_failure * factor,
            extension_jitter=(low * factor, high * factor),
        )


class RefreshableCredentialProvider:
    """Caching, refresh windows and single-flight refresh around ``fetch`` (one network exchange).

    Subclass it and implement ``fetch()``, or pass any ``async def () -> Credentials`` as ``fetch``.

    Only one fetch is ever in flight: a refresh is an ``asyncio.Task`` that every waiting caller
    shields and awaits, so a caller that is cancelled does not cancel the fetch the others are
    waiting for. The task is kept referenced until it finishes and ``aclose()`` cancels it, so no
    task is left pending when the event loop closes.
    """

    __slots__ = (
        "_awaited",
        "_credentials",
        "_description",
        "_extend_stale",
        "_fetch",
        "_fetches",
        "_retry_not_before",
        "_rng",
        "_settings",
        "_stale",
        "_task",
    )

    def __init__(
        self,
        fetch: Callable[[], Awaitable[Credentials]] | None = None,
        *,
        description: str = "refreshable credentials",
        settings: RefreshSettings | None = None,
        extend_stale: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        self._fetch = fetch if fetch is not None else self.fetch
        self._description = description
        self._settings = settings or RefreshSettings()
        self._extend_stale = extend_stale
        self._rng = rng or random.Random()
        self._credentials: Credentials | None = None
        self._stale = False
        self._task: asyncio.Task[Credentials] | None = None
        self._awaited = False
        self._retry_not_before: datetime | None = None
        self._fetches = 0

    async def fetch(self) -> Credentials:
        """One uncached exchange with the source; subclasses implement it."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement fetch() or be given a fetch callable"
        )

    @property
    def current(self) -> Credentials | None:
        """The cached snapshot, without refreshing (None before the first fetch)."""
        return self._credentials

    @property
    def fetch_count(self) -> int:
        """How many fetches were started; lets tests and metrics check single-flight behaviour."""
        return self._fetches

    @property
    def settings(self) -> RefreshSettings:
        return self._settings

    async def get_credentials(self) -> Credentials:
        credentials = self._credentials
        if credentials is None or self._stale:
            return await self._wait_for_refresh()
        now = self._settings.now()
        left = credentials.seconds_left(now)
        if left is None or left > self._settings.advisory_window.total_seconds():
            return credentials
        if left <= self._settings.mandatory_window.total_seconds():
            return await self._wait_for_refresh()
        self._refresh_in_background(now)
        return credentials

    def invalidate(self) -> None:
        """Make the next call wait for fresh credentials (after an ``ExpiredToken`` answer)."""
        self._stale = True
        self._retry_not_before = None

    def describe(self) -> str:
        return self._description

    async def aclose(self) -> None:
        """Cancel a background refresh still running; the provider stays usable afterwards."""
        task, self._task = self._task, None
        if task is None or task.done():
            return
        task.cancel()
        if task.get_loop() is asyncio.get_running_loop():
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def __repr__(self) -> str:
        expiration = self._credentials.expiration if self._credentials else None
        return (
            f"{type(self).__name__}({self._description!r}, "
            f"expiration={expiration.isoformat() if expiration else None!r})"
        )

    # -- internals
    # ----------------------------------------------------------------------------------
    async def _wait_for_refresh(self) -> Credentials:
        task = self._ensure_task()
        self._awaited = True
        return await asyncio.shield(task)

    def _refresh_in_background(self, now: datetime) -> None:
        if self._task is not None and not self._task.done():
            return
        if self._retry_not_before is not None and now < self._retry_not_before:
            return
        self._ensure_task()

    def _ensure_task(self) -> asyncio.Task[Credentials]:
        loop = asyncio.get_running_loop()
        task = self._task
        if task is not None and not task.done() and task.get_loop() is loop:
            return task
        self._fetches += 1
        self._awaited = False
        task = loop.create_task(self._run(), name=f"refresh {self._description}")
        task.add_done_callback(self._on_done)
        self._task = task
        return task

    async def _run(self) -> Credentials:
        fresh = await self._fetch()
        if self._extend_stale:
            fresh = self._extend_if_inside_window(fresh)
        self._credentials = fresh
        self._stale = False
        self._retry_not_before = None
        return fresh

    def _extend_if_inside_window(self, fresh: Credentials) -> Credentials:
        now = self._settings.now()
        left = fresh.seconds_left(now)
        if left is None or left > self._settings.advisory_window.total_seconds():
            return fresh
        low, high = self._settings.extension_jitter
        jitter = self._rng.uniform(low.total_seconds(), high.total_seconds())
        extension = self._settings.advisory_window + timedelta(seconds=jitter)
        logger.info(
            "%s handed out credentials expiring in %.0f s; using them for another %.0f s before "
            "asking again, to avoid hammering a struggling endpoint",
            self._description,
            left,
            extension.total_seconds(),
        )
        return replace(fresh, expiration=now + extension)

    def _on_done(self, task: asyncio.Task[Credentials]) -> None:
        if self._task is task:
            # Drop the reference once settled; the result lives in ``_credentials``.
            self._task = None
        if task.cancelled():
            return
        exc = task.exception()  # also marks the exception as retrieved
        if exc is None or self._awaited:
            return
        self._retry_not_before = self._settings.now() + self._settings.retry_after_failure
        # Exception messages in this package never contain secrets; type and message are enough.
        logger.warning(
            "background refresh of %s failed, keeping the current credentials until they enter the "
            "mandatory window: %s: %s",
            self._description,
            type(exc).__name__,
            exc,
        )
