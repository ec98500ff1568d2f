"""Heartbeats keep a received message invisible while it waits or runs, on a virtual clock.

Each heartbeat extends the visibility timeout every ``interval`` seconds, at most ``max_extensions``
times, and ends quietly when the message is settled, its receipt handle goes stale, or SQS refuses.
"""

from __future__ import annotations

import logging

import pytest

from taskiq_sqs_http.aws import ReceiptHandleIsInvalidError, ServiceError
from taskiq_sqs_http.broker import _heartbeat
from taskiq_sqs_http.broker._heartbeat import Heartbeats

from .fakes import VirtualClock, settle, use_clock

URL = "http://sqs.test/123456789012/tasks"


class Extensions:
    """The change-visibility callable: records (receipt handle, timeout, when) and fails as scripted."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.made: list[tuple[str, int, float]] = []
        self.failures: list[Exception] = []

    async def __call__(self, queue_url: str, receipt_handle: str, visibility_timeout: int) -> None:
        assert queue_url == URL
        self.made.append((receipt_handle, visibility_timeout, self.clock.now))
        if self.failures:
            raise self.failures.pop(0)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    clock = VirtualClock()
    use_clock(monkeypatch, _heartbeat, clock)
    return clock


@pytest.fixture
def extensions(clock: VirtualClock) -> Extensions:
    return Extensions(clock)


async def test_the_timeout_is_extended_every_interval_while_the_message_is_held(
    clock: VirtualClock, extensions: Extensions
) -> None:
    heartbeats = Heartbeats(extensions, max_extensions=100)
    start = clock.now
    heartbeats.start("tasks", URL, "rh-1", 30, 10.0)
    await clock.advance(9.9)
    assert extensions.made == []  # the receive itself made it invisible for 30 s
    await clock.advance(25.0)
    assert extensions.made == [
        ("rh-1", 30, start + 10.0),
        ("rh-1", 30, start + 20.0),
        ("rh-1", 30, start + 30.0),
    ]
    assert len(heartbeats) == 1
    await heartbeats.aclose()


async def test_stopping_a_heartbeat_ends_its_extensions(clock: VirtualClock, extensions: Extensions) -> None:
    heartbeats = Heartbeats(extensions, max_extensions=100)
    heartbeats.start("tasks", URL, "rh-1", 30, 10.0)
    heartbeats.start("tasks", URL, "rh-2", 30, 10.0)
    await clock.advance(10.0)
    await heartbeats.stop("rh-1")
    await clock.advance(30.0)
    assert [handle for handle, _, _ in extensions.made] == ["rh-1", "rh-2", "rh-2", "rh-2", "rh-2"]
    assert len(heartbeats) == 1
    await heartbeats.stop("rh-unknown")  # settling a message without a heartbeat is fine
    await heartbeats.aclose()
    assert len(heartbeats) == 0
    await clock.advance(60.0)
    assert len(extensions.made) == 5


async def test_one_heartbeat_per_receipt_handle(clock: VirtualClock, extensions: Extensions) -> None:
    heartbeats = Heartbeats(extensions, max_extensions=100)
    heartbeats.start("tasks", URL, "rh-1", 30, 10.0)
    heartbeats.start("tasks", URL, "rh-1", 30, 10.0)
    assert len(heartbeats) == 1
    await clock.advance(10.0)
    assert len(extensions.made) == 1
    await heartbeats.aclose()


async def test_after_max_extensions_the_heartbeat_ends_with_a_warning(
    clock: VirtualClock, extensions: Extensions, caplog: pytest.LogCaptureFixture
) -> None:
    """A task that outlives every extension may be delivered again: the log says so, once."""
    caplog.set_level(logging.WARNING)
    heartbeats = Heartbeats(extensions, max_extensions=3)
    heartbeats.start("tasks", URL, "rh-1", 30, 10.0)
    await clock.advance(100.0)
    assert len(extensions.made) == 3
    assert len(heartbeats) == 0
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "tasks" in warning and "heartbeat_max_extensions (3)" in warning


async def test_a_stale_receipt_handle_ends_the_heartbeat_silently(
    clock: VirtualClock, extensions: Extensions, caplog: pytest.LogCaptureFixture
) -> None:
    """Acked meanwhile, or delivered to someone else: there is nothing left to keep invisible."""
    caplog.set_level(logging.WARNING)
    extensions.failures.append(
        ReceiptHandleIsInvalidError(
            "ReceiptHandleIsInvalid", "stale", status=400, operation="ChangeMessageVisibility"
        )
    )
    heartbeats = Heartbeats(extensions, max_extensions=100)
    heartbeats.start("tasks", URL, "rh-1", 30, 10.0)
    await clock.advance(50.0)
    assert len(extensions.made) == 1
    assert len(heartbeats) == 0
    assert caplog.records == []


async def test_a_refusal_ends_the_heartbeat_with_a_warning_naming_the_queue(
    clock: VirtualClock, extensions: Extensions, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    extensions.failures.append(
        ServiceError("AccessDenied", "no", status=403, operation="ChangeMessageVisibility")
    )
    heartbeats = Heartbeats(extensions, max_extensions=100)
    heartbeats.start("tasks", URL, "rh-1", 30, 10.0)
    await clock.advance(50.0)
    assert len(extensions.made) == 1
    assert len(heartbeats) == 0
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "tasks" in record.getMessage() and "AccessDenied" in record.getMessage()


async def test_an_unexpected_error_is_logged_with_its_traceback_and_never_raised(
    clock: VirtualClock, extensions: Extensions, caplog: pytest.LogCaptureFixture
) -> None:
    extensions.failures.append(RuntimeError("bug"))
    heartbeats = Heartbeats(extensions, max_extensions=100)
    heartbeats.start("tasks", URL, "rh-1", 30, 10.0)
    await clock.advance(10.0)
    await settle()
    assert len(heartbeats) == 0
    (record,) = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is not None
    await heartbeats.stop("rh-1")  # stopping an ended heartbeat is fine too
