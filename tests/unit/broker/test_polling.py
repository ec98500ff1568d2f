"""How the receive loop (`Consumer`) asks SQS for messages, on a virtual clock and an in-memory SQS.

* An idle queue costs one ReceiveMessage per long-poll wait; a queue that does not long-poll (wait 0, or
  a server that answers at once) is asked at most once per idle pause, never in a tight loop.
* Prefetch is bounded: a queue is asked again only when all of its previous answer has been taken.
* Receive errors back off exponentially up to a cap, and the first success resets the backoff.
"""

from __future__ import annotations

import itertools
import logging

import pytest

from taskiq_sqs_http.aws import Message, ServiceError, TransportError
from taskiq_sqs_http.broker import _consumer
from taskiq_sqs_http.broker._config import SQSQueue
from taskiq_sqs_http.broker._consumer import Consumer
from taskiq_sqs_http.broker._lifecycle import Inbox, InboxSettings, TaskCheck
from taskiq_sqs_http.broker._queues import Target
from taskiq_sqs_http.extended import PayloadStore

from .fakes import MemorySQS, VirtualClock, settle, until, use_clock

URL = "http://sqs.test/123456789012/tasks"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    clock = VirtualClock(autoadvance=True)
    use_clock(monkeypatch, _consumer, clock)
    return clock


def consumer_for(sqs: MemorySQS, queue: SQSQueue, **options: float) -> Consumer:
    inbox = Inbox(
        sqs,  # type: ignore[arg-type]
        payloads=PayloadStore(None, None),
        check_task=lambda payload: TaskCheck("t", None),
        settings=InboxSettings(),
    )
    return Consumer(sqs, [Target(queue, URL)], inbox, **options)  # type: ignore[arg-type]


def messages(first: int, count: int) -> list[Message]:
    return [Message(f"m-{n}", f"rh-{n}", "{}") for n in range(first, first + count)]


async def stop(consumer: Consumer) -> None:
    await consumer.aclose()
    await consumer.drain()


def spacing(times: list[float]) -> list[float]:
    return [round(later - earlier, 6) for earlier, later in itertools.pairwise(times)]


@pytest.mark.parametrize(
    ("wait", "long_polls", "idle_sleep", "every"),
    [
        pytest.param(20, True, 1.0, 20.0, id="long poll: one request per wait"),
        pytest.param(2, True, 1.0, 2.0, id="short long poll"),
        pytest.param(0, True, 1.0, 1.0, id="wait 0: one request per idle pause"),
        pytest.param(0, True, 0.25, 0.25, id="the idle pause is an option"),
        pytest.param(2, False, 1.0, 1.0, id="a server that does not long-poll"),
    ],
)
async def test_an_idle_queue_is_never_polled_in_a_tight_loop(
    clock: VirtualClock, wait: int, long_polls: bool, idle_sleep: float, every: float
) -> None:
    sqs = MemorySQS(clock, long_polls=long_polls)
    consumer = consumer_for(sqs, SQSQueue(name="tasks", wait_time_seconds=wait), idle_sleep=idle_sleep)
    consumer.start()
    await until(lambda: sqs.receive_calls >= 5)
    await stop(consumer)
    assert spacing(sqs.receive_times[:5]) == [every] * 4
    assert {request["wait_time_seconds"] for request in sqs.receive_requests} == {wait}


async def test_an_empty_answer_that_took_a_while_shortens_the_pause(clock: VirtualClock) -> None:
    """The pause tops the receive up to the idle interval; it is not added on top of it."""
    sqs = MemorySQS(clock, long_polls=False)
    consumer = consumer_for(sqs, SQSQueue(name="tasks", wait_time_seconds=0), idle_sleep=1.0)
    real_receive = sqs.receive_message

    async def slow_empty_receive(url: str, **request: object) -> list[Message]:
        answer = await real_receive(url, **request)
        clock.now += 0.25
        return answer

    sqs.receive_message = slow_empty_receive  # type: ignore[method-assign]
    consumer.start()
    await until(lambda: sqs.receive_calls >= 3)
    await stop(consumer)
    assert clock.sleeps[:2] == [0.75, 0.75]
    assert spacing(sqs.receive_times[:3]) == [1.0, 1.0]


async def test_at_most_one_answer_per_queue_waits_to_be_taken(clock: VirtualClock) -> None:
    """Prefetch is bounded by max_number_of_messages: messages held here are invisible to other workers."""
    sqs = MemorySQS(clock)
    for n in range(4):
        sqs.receives.put_nowait(messages(3 * n, 3))
    consumer = consumer_for(sqs, SQSQueue(name="tasks", max_number_of_messages=3, wait_time_seconds=20))
    consumer.start()
    await until(lambda: sqs.receive_calls == 1)
    for taken in range(9):
        await settle()
        received = 3 * sqs.receive_calls
        assert received - taken <= 3, (received, taken)
        assert sqs.receive_calls == taken // 3 + 1
        await consumer.get()
    await stop(consumer)
    assert {request["max_number_of_messages"] for request in sqs.receive_requests} == {3}


async def test_receive_errors_back_off_exponentially_up_to_a_cap(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Throttling, OverLimit at the in-flight quota, an outage: the loop slows down and never stops."""
    sqs = MemorySQS(clock)
    over_limit = ServiceError("OverLimit", "too many in flight", status=403, operation="ReceiveMessage")
    sqs.receive_failures = [*[over_limit] * 8, TransportError("connection reset")]
    consumer = consumer_for(sqs, SQSQueue(name="tasks", wait_time_seconds=20), error_backoff=0.5)
    caplog.set_level(logging.WARNING)
    consumer.start()
    await until(lambda: sqs.receive_calls >= 12)
    await stop(consumer)
    assert clock.sleeps[:9] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0, 20.0]
    assert clock.sleeps[9:] == []  # receives succeed again: long polls, no pauses
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 9
    assert "OverLimit" in warnings[0] and "tasks" in warnings[0] and "retrying in 0.5 s" in warnings[0]


async def test_the_backoff_starts_over_after_a_successful_receive(clock: VirtualClock) -> None:
    sqs = MemorySQS(clock)
    outage = TransportError("connection reset")
    consumer = consumer_for(sqs, SQSQueue(name="tasks", wait_time_seconds=20), error_backoff=0.5)
    sqs.receive_failures = [outage, outage, outage]
    consumer.start()
    await until(lambda: sqs.receive_calls >= 5)
    sqs.receive_failures = [outage, outage]
    await until(lambda: sqs.receive_calls >= 9)
    await stop(consumer)
    assert clock.sleeps == [0.5, 1.0, 2.0, 0.5, 1.0]
