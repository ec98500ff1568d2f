"""RefreshableCredentialProvider: windows, single flight, failure handling, static stability."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import datetime, timedelta, timezone

import pytest

from taskiq_sqs_http.aws._credentials import Credentials
from taskiq_sqs_http.aws._errors import CredentialSourceError
from taskiq_sqs_http.aws._refresh import RefreshableCredentialProvider, RefreshSettings

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


class Source:
    """A fetch function that counts calls, can fail, and can be held open with a gate."""

    def __init__(self, clock: Clock, lifetime: timedelta = timedelta(hours=1)) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.calls = 0
        self.fail: Exception | None = None
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> Credentials:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return Credentials(
            f"AKIA{self.calls:016d}",
            SECRET,
            TOKEN,
            expiration=self.clock() + self.lifetime,
            source="test source",
        )


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(clock: Clock, source: Source, **kwargs: object) -> RefreshableCredentialProvider:
    return RefreshableCredentialProvider(
        source,
        description="credentials from test source",
        settings=RefreshSettings(now=clock),
        **kwargs,  # type: ignore[arg-type]
    )


async def test_first_call_fetches_and_later_calls_use_the_cache(clock: Clock) -> None:
    source = Source(clock)
    provider = make(clock, source)
    first = await provider.get_credentials()
    clock.advance(minutes=44)  # 16 min left: outside the advisory window
    assert await provider.get_credentials() is first
    assert source.calls == 1
    assert provider.fetch_count == 1


async def test_credentials_without_expiration_are_never_refreshed(clock: Clock) -> None:
    calls = 0

    async def fetch() -> Credentials:
        nonlocal calls
        calls += 1
        return Credentials("AKIDSTATIC", SECRET)

    provider = RefreshableCredentialProvider(fetch, settings=RefreshSettings(now=clock))
    await provider.get_credentials()
    clock.advance(days=3650)
    await provider.get_credentials()
    assert calls == 1


async def test_advisory_window_returns_current_and_refreshes_once_in_background(
    clock: Clock,
) -> None:
    source = Source(clock)
    provider = make(clock, source)
    first = await provider.get_credentials()
    clock.advance(minutes=46)  # 14 min left
    source.gate = asyncio.Event()
    results = [await provider.get_credentials() for _ in range(20)]
    assert all(r is first for r in results)
    assert provider.fetch_count == 2  # one background fetch for twenty callers
    await settle()
    assert source.calls == 2
    source.gate.set()
    await settle()
    second = await provider.get_credentials()
    assert second is not first
    assert second.access_key_id == "AKIA0000000000000002"
    assert source.calls == 2


async def test_advisory_failure_keeps_old_credentials_and_logs_without_secrets(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    source = Source(clock)
    provider = make(clock, source)
    first = await provider.get_credentials()
    clock.advance(minutes=46)
    source.fail = CredentialSourceError("HTTP 500 from endpoint", source="test source")
    with caplog.at_level(logging.WARNING, logger="taskiq_sqs_http.aws"):
        assert await provider.get_credentials() is first
        await settle()
    assert source.calls == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert "HTTP 500" in text and "test source" in text
    assert SECRET not in text and TOKEN not in text
    # The failure is not retried on every call: wait out retry_after_failure first.
    assert await provider.get_credentials() is first
    await settle()
    assert source.calls == 2
    clock.advance(seconds=31)
    source.fail = None
    assert await provider.get_credentials() is first
    await settle()
    assert source.calls == 3
    assert (await provider.get_credentials()).access_key_id == "AKIA0000000000000003"


async def test_mandatory_window_waits_for_fresh_credentials(clock: Clock) -> None:
    source = Source(clock)
    provider = make(clock, source)
    first = await provider.get_credentials()
    clock.advance(minutes=51)  # 9 min left
    second = await provider.get_credentials()
    assert second is not first
    assert source.calls == 2


async def test_mandatory_failure_raises(clock: Clock) -> None:
    source = Source(clock)
    provider = make(clock, source)
    await provider.get_credentials()
    clock.advance(minutes=55)
    source.fail = CredentialSourceError("connection refused", source="test source")
    with pytest.raises(CredentialSourceError, match="connection refused"):
        await provider.get_credentials()


async def test_first_fetch_failure_raises(clock: Clock) -> None:
    source = Source(clock)
    source.fail = CredentialSourceError("nope", source="test source")
    provider = make(clock, source)
    with pytest.raises(CredentialSourceError):
        await provider.get_credentials()
    source.fail = None
    assert (await provider.get_credentials()).access_key_id.startswith("AKIA")


async def test_hundred_concurrent_first_callers_share_one_fetch(clock: Clock) -> None:
    source = Source(clock)
    source.gate = asyncio.Event()
    provider = make(clock, source)
    tasks = [asyncio.ensure_future(provider.get_credentials()) for _ in range(100)]
    await settle()
    source.gate.set()
    results = await asyncio.gather(*tasks)
    assert source.calls == 1
    assert len({id(r) for r in results}) == 1


async def test_hundred_concurrent_callers_in_mandatory_window_share_one_fetch(
    clock: Clock,
) -> None:
    source = Source(clock)
    provider = make(clock, source)
    await provider.get_credentials()
    clock.advance(minutes=55)
    source.gate = asyncio.Event()
    tasks = [asyncio.ensure_future(provider.get_credentials()) for _ in range(100)]
    await settle()
    source.gate.set()
    results = await asyncio.gather(*tasks)
    assert source.calls == 2
    assert {r.access_key_id for r in results} == {"AKIA0000000000000002"}


async def test_invalidate_forces_the_next_call_to_refresh(clock: Clock) -> None:
    source = Source(clock)
    provider = make(clock, source)
    first = await provider.get_credentials()
    provider.invalidate()
    second = await provider.get_credentials()
    assert second is not first
    assert source.calls == 2
    assert await provider.get_credentials() is second


async def test_a_cancelled_caller_does_not_cancel_the_shared_fetch(clock: Clock) -> None:
    source = Source(clock)
    source.gate = asyncio.Event()
    provider = make(clock, source)
    impatient = asyncio.ensure_future(provider.get_credentials())
    patient = asyncio.ensure_future(provider.get_credentials())
    await settle()
    impatient.cancel()
    await settle()
    source.gate.set()
    credentials = await patient
    assert credentials.access_key_id == "AKIA0000000000000001"
    assert impatient.cancelled()
    assert source.calls == 1


async def test_aclose_cancels_a_background_refresh(clock: Clock) -> None:
    source = Source(clock)
    provider = make(clock, source)
    first = await provider.get_credentials()
    clock.advance(minutes=46)
    source.gate = asyncio.Event()  # never set: the refresh hangs
    assert await provider.get_credentials() is first
    await settle()
    await provider.aclose()
    await provider.aclose()  # idempotent
    assert provider.current is first


async def test_stale_credentials_get_a_local_extension_when_asked(clock: Clock) -> None:
    source = Source(clock, lifetime=timedelta(minutes=5))  # already inside both windows
    provider = make(clock, source, extend_stale=True, rng=random.Random(7))
    credentials = await provider.get_credentials()
    assert credentials.expiration is not None
    left = credentials.expiration - clock()
    assert timedelta(minutes=17) <= left <= timedelta(minutes=25)
    clock.advance(minutes=1)
    assert await provider.get_credentials() is credentials
    assert source.calls == 1


async def test_stale_credentials_are_not_extended_by_default(clock: Clock) -> None:
    source = Source(clock, lifetime=timedelta(minutes=5))
    provider = make(clock, source)
    credentials = await provider.get_credentials()
    assert credentials.expiration == clock() + timedelta(minutes=5)
    await provider.get_credentials()  # still in the mandatory window: fetches again
    assert source.calls == 2


def test_settings_validation_and_scaling() -> None:
    with pytest.raises(ValueError):
        RefreshSettings(advisory_window=timedelta(minutes=5), mandatory_window=timedelta(minutes=10))
    with pytest.raises(ValueError):
        RefreshSettings(extension_jitter=(timedelta(minutes=5), timedelta(minutes=1)))
    scaled = RefreshSettings().scaled(1 / 60)
    assert scaled.advisory_window == timedelta(seconds=15)
    assert scaled.mandatory_window == timedelta(seconds=10)
    assert scaled.extension_jitter == (timedelta(seconds=2), timedelta(seconds=10))


async def test_scaled_windows_with_the_real_clock() -> None:
    """The chaos-test setup: seconds instead of minutes, real time."""
    settings = RefreshSettings(
        advisory_window=timedelta(seconds=0.3),
        mandatory_window=timedelta(seconds=0.2),
        retry_after_failure=timedelta(seconds=0.05),
    )
    calls = 0

    async def fetch() -> Credentials:
        nonlocal calls
        calls += 1
        return Credentials(
            f"AKID{calls}",
            SECRET,
            expiration=datetime.now(timezone.utc) + timedelta(seconds=0.5),
        )

    provider = RefreshableCredentialProvider(fetch, settings=settings)
    seen: set[str] = set()
    deadline = time.monotonic() + 1.2
    while time.monotonic() < deadline:
        credentials = await provider.get_credentials()
        assert credentials.seconds_left(datetime.now(timezone.utc)) > 0  # type: ignore[operator]
        seen.add(credentials.access_key_id)
        await asyncio.sleep(0.01)
    await provider.aclose()
    assert 3 <= calls <= 8
    assert len(seen) >= 3


async def test_repr_and_describe_hold_no_secrets(clock: Clock) -> None:
    source = Source(clock)
    provider = make(clock, source)
    credentials = await provider.get_credentials()
    for text in (repr(provider), provider.describe(), repr(credentials)):
        assert SECRET not in text and TOKEN not in text
