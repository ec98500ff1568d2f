"""The life of a received message (`Inbox`) and the receive loop (`Consumer`), with in-memory fakes.

No HTTP: the fakes record every call, and an event says when a receive is on the wire.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
import pytest
from taskiq.message import TaskiqMessage

from taskiq_sqs_http.aws import Message, MessageAttributeValue, NoSuchKeyError, ServiceError, TransportError
from taskiq_sqs_http.broker._config import SQSQueue
from taskiq_sqs_http.broker._consumer import Consumer
from taskiq_sqs_http.broker._envelope import NOT_BEFORE_ATTRIBUTE
from taskiq_sqs_http.broker._lifecycle import (
    Inbox,
    InboxSettings,
    Outcome,
    TaskCheck,
    backoff_visibility,
)
from taskiq_sqs_http.broker._queues import Target
from taskiq_sqs_http.extended import PayloadStore

from .fakes import MemorySQS as FakeSQS

URL = "http://sqs.test/123456789012/tasks"
TARGET = Target(SQSQueue(name="tasks", wait_time_seconds=20), URL)


class FakeS3:
    def __init__(self, failures: list[Exception] | None = None) -> None:
        self.failures = failures or []
        self.gets = 0
        self.deleted: list[str] = []

    async def get_object(self, bucket: str, key: str) -> Any:
        self.gets += 1
        if self.failures:
            raise self.failures.pop(0)

        class _Object:
            body = task_body("t-s3")

        return _Object()

    async def delete_object(self, bucket: str, key: str) -> None:
        self.deleted.append(key)


def task_body(task_id: str) -> bytes:
    return orjson.dumps(
        TaskiqMessage(task_id=task_id, task_name="job", labels={}, args=[], kwargs={}).model_dump()
    )


def message(
    n: int,
    *,
    body: bytes | None = None,
    receive_count: int = 1,
    attributes: dict[str, MessageAttributeValue] | None = None,
) -> Message:
    return Message(
        message_id=f"m-{n}",
        receipt_handle=f"rh-{n}",
        body=(body if body is not None else task_body(f"t-{n}")).decode(),
        attributes={"ApproximateReceiveCount": str(receive_count)},
        message_attributes=attributes or {},
    )


def pointer_message(n: int) -> Message:
    body = orjson.dumps({"s3_bucket": "payloads", "s3_key": f"k-{n}"}).decode()
    return Message(
        f"m-{n}",
        f"rh-{n}",
        body,
        message_attributes={"s3_extended_message": MessageAttributeValue.string("True")},
    )


def check(payload: bytes) -> TaskCheck:
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return TaskCheck("", str(exc))
    return TaskCheck(parsed["task_id"], None)


def make_inbox(sqs: FakeSQS, s3: FakeS3 | None = None, **settings: Any) -> Inbox:
    async def s3_client() -> Any:
        return s3

    payloads = PayloadStore(s3_client if s3 is not None else None, "payloads")
    defaults: dict[str, Any] = {"ack_linger": 1.0, "fetch_retry_delays": (0.0, 0.0)}
    return Inbox(
        sqs,  # type: ignore[arg-type]
        payloads=payloads,
        check_task=check,
        settings=InboxSettings(**{**defaults, **settings}),
    )


# -- settling --------------------------------------------------------------------------------------------
async def test_a_lone_ack_leaves_at_once_even_with_a_long_linger() -> None:
    sqs = FakeSQS()
    inbox = make_inbox(sqs)  # a second of linger: only "no company expected" can send it now
    delivery = await inbox.admit(TARGET, message(1))
    assert delivery is not None
    inbox.dispatched(delivery)
    await asyncio.wait_for(delivery(), 0.5)  # well under the linger
    assert sqs.deletes == [["rh-1"]]
    assert delivery.outcome is Outcome.DELETED


async def test_acks_share_a_batch_while_other_deliveries_are_in_flight() -> None:
    sqs = FakeSQS()
    inbox = make_inbox(sqs)
    first, second = await inbox.admit(TARGET, message(1)), await inbox.admit(TARGET, message(2))
    assert first is not None and second is not None
    inbox.dispatched(first)
    inbox.dispatched(second)
    waiting = asyncio.ensure_future(first())
    await asyncio.sleep(0)
    assert sqs.deletes == []  # lingers: the second delivery may join
    await asyncio.wait_for(second(), 5)
    await asyncio.wait_for(waiting, 5)
    assert sqs.deletes == [["rh-1", "rh-2"]]


async def test_a_failed_task_is_hidden_for_the_redelivery_delay_not_deleted() -> None:
    sqs = FakeSQS()
    inbox = make_inbox(sqs, redeliver_failed=True, redelivery_delay=45)
    delivery = await inbox.admit(TARGET, message(1))
    assert delivery is not None
    inbox.failed_tasks.add("t-1")
    inbox.dispatched(delivery)
    await asyncio.wait_for(delivery(), 5)
    assert sqs.deletes == []
    assert sqs.changed() == [("rh-1", 45)]
    assert delivery.outcome is Outcome.REDELIVERED


async def test_settling_twice_deletes_once() -> None:
    sqs = FakeSQS()
    inbox = make_inbox(sqs)
    delivery = await inbox.admit(TARGET, message(1))
    assert delivery is not None
    await delivery()
    await delivery()
    assert sqs.deletes == [["rh-1"]]


async def test_the_payload_of_an_acked_offloaded_task_is_deleted_after_the_message() -> None:
    sqs, s3 = FakeSQS(), FakeS3()
    inbox = make_inbox(sqs, s3)
    delivery = await inbox.admit(TARGET, pointer_message(1))
    assert delivery is not None
    assert delivery.ackable.data == task_body("t-s3")
    await delivery()
    assert sqs.deletes == [["rh-1"]]
    assert s3.deleted == ["k-1"]


# -- poison and transient failures -----------------------------------------------------------------------
def test_backoff_grows_with_the_receive_count_and_is_capped() -> None:
    assert [backoff_visibility(2.0, n) for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert backoff_visibility(2.0, 0) == 2
    assert backoff_visibility(2.0, 1000) == 43_200


async def test_a_poison_message_is_hidden_with_backoff_never_deleted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """visibility_timeout=0 once made a poison message come back thousands of times a second."""
    sqs = FakeSQS()
    inbox = make_inbox(sqs)
    caplog.set_level(logging.ERROR)
    for count in (1, 2, 3):
        assert await inbox.admit(TARGET, message(1, body=b"not json", receive_count=count)) is None
    assert sqs.deletes == []
    assert sqs.changed() == [("rh-1", 2), ("rh-1", 4), ("rh-1", 8)]
    lines = [r for r in caplog.records if "leaving it in SQS for redrive" in r.getMessage()]
    assert len(lines) == 1
    assert "m-1" in lines[0].getMessage()


@pytest.mark.parametrize("raw", ["Infinity", "nan", "-inf", "soon"])
async def test_a_not_before_that_is_not_a_finite_time_is_poison(raw: str) -> None:
    sqs = FakeSQS()
    inbox = make_inbox(sqs)
    attributes = {NOT_BEFORE_ATTRIBUTE: MessageAttributeValue("Number", string_value=raw)}
    assert await inbox.admit(TARGET, message(1, attributes=attributes)) is None
    assert sqs.changed() == [("rh-1", 2)]


async def test_a_message_not_yet_due_is_hidden_until_it_is() -> None:
    sqs = FakeSQS()
    inbox = make_inbox(sqs)
    due = time.time() + 3600
    attributes = {NOT_BEFORE_ATTRIBUTE: MessageAttributeValue.number(f"{due:.3f}")}
    assert await inbox.admit(TARGET, message(1, attributes=attributes)) is None
    ((handle, seconds),) = sqs.changed()
    assert handle == "rh-1" and 3590 <= seconds <= 3602


async def test_a_brief_s3_outage_is_retried_and_the_task_runs() -> None:
    sqs = FakeSQS()
    outage = ServiceError("ServiceUnavailable", "503", status=503, operation="GetObject")
    s3 = FakeS3([outage, TransportError("connection reset")])
    inbox = make_inbox(sqs, s3, fetch_retry_delays=(0.0, 0.0, 0.0))
    delivery = await inbox.admit(TARGET, pointer_message(1))
    assert delivery is not None
    assert s3.gets == 3
    # hidden once while retrying (no heartbeat on this queue), never sent towards the DLQ
    assert [seconds for _, seconds in sqs.changed()] == [30]


async def test_a_longer_s3_outage_hands_the_message_back_with_a_warning_not_as_malformed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sqs = FakeSQS()
    s3 = FakeS3([ServiceError("SlowDown", "slow", status=503, operation="GetObject") for _ in range(5)])
    inbox = make_inbox(sqs, s3, fetch_retry_delays=(0.0, 0.0))
    caplog.set_level(logging.WARNING)
    assert await inbox.admit(TARGET, pointer_message(1)) is None
    assert s3.gets == 3
    assert sqs.deletes == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("unavailable" in w and "SlowDown" in w for w in warnings)
    assert not any("for redrive" in r.getMessage() for r in caplog.records)


async def test_a_missing_payload_is_poison() -> None:
    sqs = FakeSQS()
    s3 = FakeS3([NoSuchKeyError("NoSuchKey", "gone", status=404, operation="GetObject")])
    inbox = make_inbox(sqs, s3)
    assert await inbox.admit(TARGET, pointer_message(1)) is None
    assert s3.gets == 1
    assert sqs.changed() == [("rh-1", 2)]


# -- heartbeats ------------------------------------------------------------------------------------------
async def test_a_heartbeat_stops_at_the_first_stale_answer() -> None:
    sqs = FakeSQS()
    sqs.stale.add("rh-1")
    inbox = make_inbox(sqs, ack_linger=0.0, heartbeat_max_extensions=100)
    inbox.use_heartbeat("tasks", 30, 0.001)
    delivery = await inbox.admit(TARGET, message(1))
    assert delivery is not None
    for _ in range(200):
        if inbox.heartbeats == 0:
            break
        await asyncio.sleep(0.005)
    assert inbox.heartbeats == 0
    assert len(sqs.changed()) == 1


# -- the consumer ----------------------------------------------------------------------------------------
async def test_stopping_listen_lets_the_receive_on_the_wire_finish_and_hands_its_messages_back() -> None:
    """A rolling deploy once hid a task for the whole visibility timeout: the abandoned receive got it."""
    sqs = FakeSQS()
    inbox = make_inbox(sqs)
    consumer = Consumer(sqs, [TARGET], inbox)  # type: ignore[arg-type]
    consumer.start()
    await asyncio.wait_for(sqs.receiving.wait(), 5)
    await asyncio.wait_for(consumer.aclose(), 5)  # returns at once although the receive is pending
    assert consumer.draining
    sqs.receives.put_nowait([message(7)])  # the server answers the abandoned request
    await asyncio.wait_for(consumer.drain(), 5)
    assert not consumer.draining
    assert sqs.changed() == [("rh-7", 0)]
    assert sqs.receive_calls == 1


async def test_messages_received_but_not_taken_are_handed_back_at_once() -> None:
    sqs = FakeSQS()
    inbox = make_inbox(sqs)
    consumer = Consumer(sqs, [Target(SQSQueue(name="tasks", max_number_of_messages=3), URL)], inbox)  # type: ignore[arg-type]
    consumer.start()
    sqs.receives.put_nowait([message(1), message(2), message(3)])
    first = await asyncio.wait_for(consumer.get(), 5)
    assert inbox.in_flight == 1
    await consumer.aclose()
    assert sorted(sqs.changed()) == [("rh-2", 0), ("rh-3", 0)]
    await first()
    assert sqs.deletes == [["rh-1"]]


async def test_a_queue_is_polled_again_only_after_its_messages_were_taken() -> None:
    sqs = FakeSQS()
    inbox = make_inbox(sqs)
    consumer = Consumer(sqs, [Target(SQSQueue(name="tasks", max_number_of_messages=2), URL)], inbox)  # type: ignore[arg-type]
    consumer.start()
    sqs.receives.put_nowait([message(1), message(2)])
    await asyncio.wait_for(consumer.get(), 5)
    for _ in range(5):
        await asyncio.sleep(0)
    assert sqs.receive_calls == 1  # one message still waits to be taken
    await asyncio.wait_for(consumer.get(), 5)
    await asyncio.wait_for(sqs.receiving.wait(), 5)
    assert sqs.receive_calls == 2
    await consumer.aclose()
    sqs.receives.put_nowait([])
    await consumer.drain()


async def test_receive_errors_back_off_instead_of_spinning(caplog: pytest.LogCaptureFixture) -> None:
    sqs = FakeSQS()
    inbox = make_inbox(sqs)
    over_limit = ServiceError("OverLimit", "too many in flight", status=403, operation="ReceiveMessage")

    async def failing_receive(url: str, **_: Any) -> list[Message]:
        sqs.receive_calls += 1
        raise over_limit

    sqs.receive_message = failing_receive  # type: ignore[method-assign]
    consumer = Consumer(sqs, [TARGET], inbox, error_backoff=0.05)  # type: ignore[arg-type]
    caplog.set_level(logging.WARNING)
    consumer.start()
    await asyncio.sleep(0.3)
    await consumer.aclose()
    # 0.05 + 0.1 + 0.2 s of backoff fit in 0.3 s: a spinning loop would have made thousands of calls
    assert 2 <= sqs.receive_calls <= 4
    assert any("OverLimit" in r.getMessage() and "retrying in" in r.getMessage() for r in caplog.records)


async def test_a_one_at_a_time_consumer_never_waits_for_the_deliveries_behind_it() -> None:
    """--max-async-tasks 1 takes the next message only once this one is acked: waiting for it would stall."""
    sqs = FakeSQS()
    inbox = make_inbox(sqs)
    first, second = await inbox.admit(TARGET, message(1)), await inbox.admit(TARGET, message(2))
    assert first is not None and second is not None
    inbox.dispatched(first)  # the second one waits in the buffer, untaken
    await asyncio.wait_for(first(), 0.5)  # well under the 1 s linger
    inbox.dispatched(second)
    await asyncio.wait_for(second(), 0.5)
    assert sqs.deletes == [["rh-1"], ["rh-2"]]


async def test_a_parallel_consumer_lets_acks_wait_for_the_deliveries_it_is_about_to_take() -> None:
    sqs = FakeSQS()
    inbox = make_inbox(sqs, ack_linger=0.05)
    deliveries = [await inbox.admit(TARGET, message(n)) for n in range(1, 5)]
    assert all(d is not None for d in deliveries)
    first, second, third, fourth = [d for d in deliveries if d is not None]
    inbox.dispatched(first)
    inbox.dispatched(second)  # two at once: this consumer takes in parallel
    await asyncio.gather(first(), second())  # nothing else in flight, but two are about to be taken
    inbox.dispatched(third)
    inbox.dispatched(fourth)
    await asyncio.gather(third(), fourth())
    assert sum(len(batch) for batch in sqs.deletes) == 4
    assert len(sqs.deletes) <= 2
