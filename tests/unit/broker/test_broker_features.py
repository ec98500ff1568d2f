"""Labels and per-queue settings that other SQS brokers offer: deduplication ids, expiry, batching per queue,
extra queues that long-poll like the default one, FIFO high-throughput mode."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pytest
from taskiq import BrokerMessage

from taskiq_sqs_http import BrokerConfigError, SQSBroker, SQSQueue
from taskiq_sqs_http.aws import Message, SendMessageEntry
from taskiq_sqs_http.aws.sqs import (
    BatchResult,
    DeleteMessageEntry,
    SendMessageBatchResult,
    SendMessageResult,
)
from taskiq_sqs_http.broker._envelope import EXPIRY_ATTRIBUTE
from taskiq_sqs_http.broker._lifecycle import Inbox, InboxSettings, TaskCheck
from taskiq_sqs_http.broker._outbox import Outbox
from taskiq_sqs_http.broker._queues import Target, create_queue
from taskiq_sqs_http.broker._sending import build_entry
from taskiq_sqs_http.exceptions import IntTaskLabelConfigError, StrTaskLabelConfigError
from taskiq_sqs_http.extended import PayloadStore
from taskiq_sqs_http.options import BatchingOptions

FIFO = SQSQueue(name="jobs.fifo")
STANDARD = SQSQueue(name="jobs")


def message(**labels: Any) -> BrokerMessage:
    return BrokerMessage(
        task_id="t-1",
        task_name="app:job",
        message=b'{"task_id":"t-1"}',
        labels={k: str(v) for k, v in labels.items()},
    )


async def build(queue: SQSQueue, **labels: Any) -> SendMessageEntry:
    return await build_entry(
        message(**labels),
        queue,
        delay_seconds=0,
        max_delay_seconds=900,
        fair_queue=False,
        use_task_id_for_deduplication=False,
        payloads=PayloadStore(None, None),
        s3_extended_bucket_name=None,
        handle_exceptions=SQSBroker("q").handle_exceptions,
    )


# -- deduplication id label -------------------------------------------------------------------------
async def test_a_deduplication_id_label_sets_the_fifo_deduplication_id() -> None:
    entry = await build(FIFO, deduplication_id="order-42")
    assert entry.message_deduplication_id == "order-42"


async def test_a_retry_keeps_its_own_deduplication_id_so_it_is_not_dropped() -> None:
    entry = await build(FIFO, deduplication_id="order-42", _retries=2)
    assert entry.message_deduplication_id == "order-42-retry-2"


async def test_a_deduplication_id_on_a_standard_queue_is_a_clear_error() -> None:
    with pytest.raises(BrokerConfigError, match=r"deduplication_id.*FIFO"):
        await build(STANDARD, deduplication_id="order-42")


async def test_a_bad_deduplication_id_names_the_range() -> None:
    with pytest.raises(StrTaskLabelConfigError, match="MessageDeduplicationId"):
        await build(FIFO, deduplication_id="x" * 129)


# -- expiry label -----------------------------------------------------------------------------------------
async def test_an_expiry_label_travels_as_a_message_attribute() -> None:
    entry = await build(STANDARD, sqs_expiry=1_900_000_000)
    assert entry.message_attributes is not None
    assert entry.message_attributes[EXPIRY_ATTRIBUTE].string_value == "1900000000.000"


@pytest.mark.parametrize("raw", ["soon", "-1", "inf"])
async def test_a_bad_expiry_label_is_refused_at_kick(raw: str) -> None:
    with pytest.raises(IntTaskLabelConfigError, match="sqs_expiry"):
        await build(STANDARD, sqs_expiry=raw)


class RecordingSQS:
    def __init__(self) -> None:
        self.deleted: list[str] = []
        self.sent: list[tuple[str, list[str]]] = []
        self.single: list[str] = []

    async def delete_message_batch(self, url: str, entries: Sequence[DeleteMessageEntry]) -> BatchResult:
        self.deleted.extend(e.receipt_handle for e in entries)
        return BatchResult([e.id for e in entries], [])

    async def change_message_visibility_batch(self, url: str, entries: Sequence[Any]) -> BatchResult:
        return BatchResult([e.id for e in entries], [])

    async def send_message_batch(
        self, url: str, entries: Sequence[SendMessageEntry]
    ) -> SendMessageBatchResult:
        self.sent.append((url, [e.body for e in entries]))
        return SendMessageBatchResult({e.id: SendMessageResult("m") for e in entries}, [])

    async def send_message(self, url: str, body: str, **_: Any) -> SendMessageResult:
        self.single.append(url)
        return SendMessageResult("m")


async def test_an_expired_message_is_deleted_without_running(caplog: pytest.LogCaptureFixture) -> None:
    from taskiq_sqs_http.aws import MessageAttributeValue

    sqs = RecordingSQS()
    inbox = Inbox(
        sqs,  # type: ignore[arg-type]
        payloads=PayloadStore(None, None),
        check_task=lambda payload: TaskCheck("t-1", None),
        settings=InboxSettings(),
    )
    expired = {EXPIRY_ATTRIBUTE: MessageAttributeValue.number(f"{time.time() - 60:.3f}")}
    target = Target(STANDARD, "http://sqs.test/1/jobs")
    caplog.set_level("WARNING")
    assert await inbox.admit(target, Message("m-1", "rh-1", "{}", message_attributes=expired)) is None
    assert sqs.deleted == ["rh-1"]
    assert any("expired" in r.getMessage() and "m-1" in r.getMessage() for r in caplog.records)
    # taskiq-sqs's older attribute name is honoured too; a future expiry runs normally
    legacy = {"expiry": MessageAttributeValue.number(f"{time.time() - 1:.0f}")}
    assert await inbox.admit(target, Message("m-2", "rh-2", "{}", message_attributes=legacy)) is None
    future = {EXPIRY_ATTRIBUTE: MessageAttributeValue.number(f"{time.time() + 600:.3f}")}
    assert await inbox.admit(target, Message("m-3", "rh-3", "{}", message_attributes=future)) is not None


# -- per-queue settings ---------------------------------------------------------------------------------
def test_an_extra_queue_long_polls_with_the_broker_wait_time() -> None:
    """2.1.1's extra queues polled once a second by default: 3,600 requests an hour per idle queue."""
    broker = SQSBroker("tasks", wait_time_seconds=20).with_queues(
        SQSQueue(name="reports"), SQSQueue(name="urgent", wait_time_seconds=1)
    )
    assert broker.queues["reports"].wait_time_seconds == 20
    assert broker.queues["urgent"].wait_time_seconds == 1


async def test_batching_can_be_switched_on_for_one_queue() -> None:
    sqs = RecordingSQS()
    targets = {
        "plain": Target(SQSQueue(name="plain"), "http://sqs.test/1/plain"),
        "bulk": Target(
            SQSQueue(name="bulk", enable_batching=True, batch_size=2, batch_timeout=5.0),
            "http://sqs.test/1/bulk",
        ),
    }

    async def entry(msg: BrokerMessage, target: Target) -> SendMessageEntry:
        return SendMessageEntry(msg.task_id, "body")

    outbox = Outbox(
        sqs,  # type: ignore[arg-type]
        targets,
        "plain",
        settings=BatchingOptions(enable_batching=False),
        build_entry=entry,
    )
    await outbox.send(message())
    assert sqs.single == ["http://sqs.test/1/plain"]
    await outbox.send(message(queue="bulk"))
    assert sqs.sent == []  # waits for a second message (batch_size=2), not for the 5 s linger
    await outbox.send(message(queue="bulk"))
    await outbox.flush()
    assert sqs.sent == [("http://sqs.test/1/bulk", ["body", "body"])]
    assert await outbox.aclose(1.0) is None


def test_high_throughput_is_for_fifo_queues_only() -> None:
    with pytest.raises(BrokerConfigError, match="high_throughput"):
        SQSQueue(name="jobs", high_throughput=True)


async def test_create_queues_sets_fifo_high_throughput_mode() -> None:
    created: dict[str, dict[str, str]] = {}

    class CreatingSQS:
        async def create_queue(self, name: str, *, attributes: dict[str, str]) -> str:
            created[name] = attributes
            return f"http://sqs.test/1/{name}"

    await create_queue(
        CreatingSQS(),  # type: ignore[arg-type]
        SQSQueue(name="orders.fifo", high_throughput=True),
        SQSBroker("q").handle_exceptions,
    )
    assert created["orders.fifo"]["DeduplicationScope"] == "messageGroup"
    assert created["orders.fifo"]["FifoThroughputLimit"] == "perMessageGroupId"
    assert created["orders.fifo"]["FifoQueue"] == "true"


def test_per_queue_batch_settings_are_checked() -> None:
    with pytest.raises(BrokerConfigError, match="batch_size"):
        SQSQueue(name="q", batch_size=11)
    with pytest.raises(BrokerConfigError, match="batch_timeout"):
        SQSQueue(name="q", batch_timeout=0.01)


async def test_rejected_credentials_are_a_configuration_error_that_says_so() -> None:
    import httpx

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400,
            json={
                "__type": "com.amazon.coral.service#InvalidClientTokenId",
                "message": "The token is invalid",
            },
            headers={"x-amzn-query-error": "InvalidClientTokenId;Sender"},
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        broker = SQSBroker(
            "tasks",
            endpoint_url="http://sqs.test",
            region_name="us-east-1",
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="wrong-secret-value",
            http_client=client,
        )
        with pytest.raises(BrokerConfigError) as caught:
            await broker.startup()
    text = str(caught.value)
    assert "InvalidClientTokenId" in text and "credential" in text.lower()
    assert "wrong-secret-value" not in text


async def test_an_oversize_payload_goes_to_s3_without_being_encoded_as_a_body(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 32 MB payload must not cost a text check and an encoding that are thrown away."""
    from taskiq_sqs_http.broker import _sending

    def no_encoding(*_: Any, **__: Any) -> Any:
        raise AssertionError("an oversize payload was encoded as an SQS body")

    monkeypatch.setattr(_sending, "encode_body", no_encoding)
    stored: list[tuple[str, int]] = []

    class FakeS3:
        async def put_object(self, bucket: str, key: str, data: bytes, **_: Any) -> None:
            stored.append((bucket, len(data)))

    async def s3() -> Any:
        return FakeS3()

    payload = b'{"blob":"' + b"x" * 2_000_000 + b'"}'
    entry = await build_entry(
        BrokerMessage(task_id="t-1", task_name="app:job", message=payload, labels={}),
        STANDARD,
        delay_seconds=0,
        max_delay_seconds=900,
        fair_queue=False,
        use_task_id_for_deduplication=False,
        payloads=PayloadStore(s3, "payloads"),
        s3_extended_bucket_name="payloads",
        handle_exceptions=SQSBroker("q").handle_exceptions,
    )
    assert stored == [("payloads", len(payload))]
    assert '"s3_bucket": "payloads"' in entry.body or '"s3_bucket":"payloads"' in entry.body


async def test_bytes_kicked_directly_are_checked_even_with_the_default_formatter() -> None:
    """kick() takes any BrokerMessage, not only what the formatter made: its bytes are always checked."""
    from taskiq_sqs_http.broker._queues import Target as _Target

    broker = SQSBroker("jobs")
    binary = BrokerMessage(task_id="t-1", task_name="app:job", message=b"\x80\x81\xff\x00binary", labels={})
    entry = await broker.build_entry(binary, _Target(STANDARD, "http://sqs.test/1/jobs"))
    assert entry.message_attributes is not None
    assert entry.message_attributes["taskiq_body_encoding"].string_value == "base64"
