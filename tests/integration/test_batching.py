"""Batching that never loses a task, batched acks, requests per task, and redelivery to a DLQ.

Each test asserts the exact set of task ids that reached SQS (duplicates are allowed: a request dropped
after SQS applied it is retried, which is at-least-once delivery) or ran.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from taskiq.receiver import Receiver

from taskiq_sqs_http import SendFailedError, SQSBroker, SQSQueue
from taskiq_sqs_http.aws import Message, MessageAttributeValue, S3Client, SQSClient
from taskiq_sqs_http.batching import SendFailure

from .broker_helpers import MakeBroker, next_message, receive_all, task_message
from .faults import Fault, FaultTransport


@pytest.fixture
async def faults() -> AsyncIterator[tuple[FaultTransport, httpx.AsyncClient]]:
    transport = FaultTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        yield transport, client


def task_ids(messages: list[Message]) -> set[str]:
    return {json.loads(m.body)["task_id"] for m in messages}


async def drain(sqs: SQSClient, url: str, expected: int, timeout: float = 20.0) -> list[Message]:
    """Receive and delete until ``expected`` distinct tasks were seen (or the deadline)."""
    seen: list[Message] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(task_ids(seen)) < expected and loop.time() < deadline:
        batch = await sqs.receive_message(url, max_number_of_messages=10, wait_time_seconds=1)
        seen.extend(batch)
        for message in batch:
            await sqs.delete_message(url, message.receipt_handle)
    return seen


async def test_batched_kicks_survive_errors_and_partial_failures(
    make_broker: MakeBroker,
    queue: tuple[str, str],
    sqs: SQSClient,
    faults: tuple[FaultTransport, httpx.AsyncClient],
) -> None:
    """A send error on every other request plus two failed entries per batch: every task arrives."""
    transport, client = faults

    def rule(action: str, n: int, request: httpx.Request) -> Fault | None:
        if action != "SendMessageBatch":
            return None
        if n % 2 == 1:
            return Fault(["500", "drop_before", "drop_after"][n // 2 % 3])
        # About one entry in four fails, a different one each time.
        return Fault("fail_entries", entries=lambda e: (zlib.crc32(e["MessageBody"].encode()) + n) % 4 == 0)

    transport.rule = rule
    name, url = queue
    broker = await make_broker(name, http_client=client, enable_batching=True, batch_timeout=0.1)
    messages = [task_message() for _ in range(40)]
    for message in messages:
        await broker.kick(message)
    await asyncio.wait_for(broker.flush(), 30)
    await broker.shutdown()
    received = await drain(sqs, url, 40)
    assert task_ids(received) == {m.task_id for m in messages}
    assert transport.faults["fail_entries"] > 0 and transport.faults["500"] > 0


async def test_permanent_entry_failures_are_reported_not_dropped(
    make_broker: MakeBroker,
    queue: tuple[str, str],
    sqs: SQSClient,
    faults: tuple[FaultTransport, httpx.AsyncClient],
) -> None:
    """A sender-fault entry goes to on_send_error and flush() raises; the others arrive."""
    transport, client = faults
    poison = task_message()
    transport.rule = lambda action, n, request: (
        Fault(
            "fail_entries",
            entries=lambda e: poison.task_id in e["MessageBody"],
            sender_fault=True,
            code="InvalidParameterValue",
        )
        if action == "SendMessageBatch"
        else None
    )
    reported: list[SendFailure] = []
    name, url = queue
    broker = await make_broker(
        name, http_client=client, enable_batching=True, batch_timeout=0.1, on_send_error=reported.append
    )
    good = [task_message() for _ in range(9)]
    for message in [*good[:4], poison, *good[4:]]:
        await broker.kick(message)
    with pytest.raises(SendFailedError) as info:
        await asyncio.wait_for(broker.flush(), 20)
    assert [f.entry.id for f in info.value.failures] == [poison.task_id]
    assert [f.entry.id for f in reported] == [poison.task_id]
    assert reported[0].code == "InvalidParameterValue"
    assert task_ids(await drain(sqs, url, 9)) == {m.task_id for m in good}


async def test_25_kicks_then_shutdown_sends_all(
    make_broker: MakeBroker, queue: tuple[str, str], sqs: SQSClient
) -> None:
    """25 kicks followed at once by shutdown(): all 25 are in SQS (2.1.1 left 0)."""
    name, url = queue
    broker = await make_broker(name, enable_batching=True, batch_timeout=5.0)
    messages = [task_message() for _ in range(25)]
    for message in messages:
        await broker.kick(message)
    await asyncio.wait_for(broker.shutdown(), 30)
    assert task_ids(await drain(sqs, url, 25)) == {m.task_id for m in messages}


async def test_50_concurrent_kicks_then_shutdown(
    make_broker: MakeBroker, queue: tuple[str, str], sqs: SQSClient
) -> None:
    """50 coroutines kick concurrently, then shutdown(): no hang, nothing lost."""
    name, url = queue
    broker = await make_broker(name, enable_batching=True, batch_timeout=0.5)
    messages = [task_message() for _ in range(50)]
    await asyncio.gather(*(broker.kick(m) for m in messages))
    await asyncio.wait_for(broker.shutdown(), 30)
    assert task_ids(await drain(sqs, url, 50)) == {m.task_id for m in messages}


async def test_three_600kb_messages_are_split(
    make_broker: MakeBroker,
    queue: tuple[str, str],
    sqs: SQSClient,
    faults: tuple[FaultTransport, httpx.AsyncClient],
) -> None:
    """Three 600 KB messages never share a request (2.1.1 sent 1.8 MB and lost all three)."""
    transport, client = faults
    name, url = queue
    broker = await make_broker(name, http_client=client, enable_batching=True, batch_timeout=0.2)
    messages = [task_message(body=b'{"pad":"' + b"x" * (600 * 1024) + b'"}') for _ in range(3)]
    for message in messages:
        await broker.kick(message)
    await asyncio.wait_for(broker.flush(), 20)
    assert transport.counts["SendMessageBatch"] == 3
    assert len(await receive_all(sqs, url, 3)) == 3


async def _run_then_ack(delivery: Any) -> None:
    await asyncio.sleep(0.1)  # the task's work: long enough that the next deliveries are in flight meanwhile
    await delivery.ack()


async def test_requests_per_task_with_batching(
    make_broker: MakeBroker, queue: tuple[str, str], faults: tuple[FaultTransport, httpx.AsyncClient]
) -> None:
    """Send + receive + delete for 200 tasks costs at most 0.35 SQS requests per task."""
    transport, client = faults
    name, _ = queue
    tasks = 200
    producer = await make_broker(name, http_client=client, enable_batching=True, batch_timeout=0.2)
    for _ in range(tasks):
        await producer.kick(task_message())
    await producer.flush()
    consumer = await make_broker(name, http_client=client, wait_time_seconds=1, max_number_of_messages=10)
    gen = consumer.listen()
    acks: list[asyncio.Task[Any]] = []
    try:
        for _ in range(tasks):
            delivery = await next_message(gen, timeout=20)
            # Tasks run concurrently and take a little while, as in a worker; an ack lingers for company
            # only while other deliveries are in flight, so a lone ack never waits.
            acks.append(asyncio.ensure_future(_run_then_ack(delivery)))
        await asyncio.gather(*acks)
    finally:
        await gen.aclose()
    per_task = transport.sqs_requests() / tasks
    counts = dict(transport.counts)
    print(f"requests per task: {per_task:.3f} {counts}")
    assert per_task <= 0.35, counts
    assert counts.get("SendMessage", 0) == 0 and counts.get("DeleteMessage", 0) == 0


async def test_failed_task_is_redelivered_then_dead_lettered(
    make_broker: MakeBroker, sqs: SQSClient, unique_name: str
) -> None:
    """redeliver_failed: a raising task is handed back to SQS and, after maxReceiveCount, lands in the DLQ."""
    dlq_name = unique_name + "-dlq"
    queue = SQSQueue(name=unique_name, dead_letter_queue=dlq_name, max_receive_count=2, wait_time_seconds=1)
    broker: SQSBroker = await make_broker(
        unique_name, start=False, create_queues=True, redeliver_failed=True, redelivery_delay=0
    )
    broker.with_default_queue(queue)
    runs: list[int] = []

    @broker.task(task_name="tests:always_fails")
    async def always_fails() -> None:
        runs.append(1)
        raise RuntimeError("boom")

    broker.is_worker_process = True
    await broker.startup()
    await always_fails.kiq()
    receiver = Receiver(broker, run_startup=False, ack_type=None)
    gen = broker.listen()
    try:
        for _ in range(2):
            delivery = await asyncio.wait_for(gen.__anext__(), 20)
            await receiver.callback(delivery)
    finally:
        await gen.aclose()
    assert len(runs) == 2
    dlq_url = await sqs.get_queue_url(dlq_name)
    # The third receive is the one that moves it: ask the source queue once more, then look in the DLQ.
    await sqs.receive_message(broker.queue_urls[unique_name], wait_time_seconds=1)
    dead = await receive_all(sqs, dlq_url, 1, timeout=15)
    assert len(dead) == 1 and "tests:always_fails" in dead[0].body
    await sqs.delete_queue(broker.queue_urls[unique_name])
    await sqs.delete_queue(dlq_url)


async def test_aws_format_pointer_is_read_and_cleaned(
    make_broker: MakeBroker, queue: tuple[str, str], sqs: SQSClient, s3: S3Client, bucket: str
) -> None:
    """A hand-built AWS extended-client message is read; its payload is deleted after the ack."""
    name, url = queue
    payload = task_message().message
    await s3.put_object(bucket, "java/p1", payload)
    body = json.dumps(
        ["software.amazon.payloadoffloading.PayloadS3Pointer", {"s3BucketName": bucket, "s3Key": "java/p1"}]
    )
    await sqs.send_message(
        url, body, message_attributes={"ExtendedPayloadSize": MessageAttributeValue.number(len(payload))}
    )
    broker = await make_broker(name, wait_time_seconds=1, s3_extended_bucket_name=bucket)
    gen = broker.listen()
    try:
        delivery = await next_message(gen, timeout=20)
        assert delivery.data == payload
        await delivery.ack()
    finally:
        await gen.aclose()
    with pytest.raises(Exception, match=r"NoSuchKey|404"):
        await s3.get_object(bucket, "java/p1")


async def test_aws_format_is_written_when_asked(
    make_broker: MakeBroker, queue: tuple[str, str], sqs: SQSClient, bucket: str
) -> None:
    """extended_payload_format='aws' writes the AWS extended-client pointer."""
    name, url = queue
    broker = await make_broker(
        name, s3_extended_bucket_name=bucket, extended_payload_format="aws", enable_batching=True
    )
    await broker.kick(task_message(body=b'{"pad":"' + b"y" * (1024 * 1024) + b'"}'))
    await broker.flush()
    (raw,) = await receive_all(sqs, url, 1)
    kind, pointer = json.loads(raw.body)
    assert kind == "software.amazon.payloadoffloading.PayloadS3Pointer" and pointer["s3BucketName"] == bucket
    assert int(raw.message_attributes["ExtendedPayloadSize"].string_value or 0) > 1024 * 1024


@pytest.mark.parametrize("pointer_bucket", ["untrusted", "missing-object"])
async def test_bad_pointers_are_logged_and_left_for_redrive(
    make_broker: MakeBroker,
    queue: tuple[str, str],
    sqs: SQSClient,
    bucket: str,
    pointer_bucket: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A pointer into an untrusted bucket, or to a missing object, never runs and is never deleted."""
    name, url = queue
    target_bucket = "someone-elses-bucket" if pointer_bucket == "untrusted" else bucket
    body = json.dumps({"s3_bucket": target_bucket, "s3_key": "nope.json"})
    await sqs.send_message(
        url, body, message_attributes={"s3_extended_message": MessageAttributeValue.string("True")}
    )
    good = task_message()
    broker = await make_broker(
        name,
        wait_time_seconds=1,
        s3_extended_bucket_name=bucket,
        visibility_timeout=30,
        max_number_of_messages=10,
    )
    await broker.kick(good)
    gen = broker.listen()
    try:
        delivery = await next_message(gen, timeout=20)
        assert json.loads(delivery.data)["task_id"] == good.task_id
        await delivery.ack()
    finally:
        await gen.aclose()
    expected = "untrusted bucket" if pointer_bucket == "untrusted" else "missing"
    assert expected in caplog.text
    attributes = await sqs.get_queue_attributes(
        url, ["ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessages"]
    )
    total = int(attributes["ApproximateNumberOfMessagesNotVisible"]) + int(
        attributes["ApproximateNumberOfMessages"]
    )
    assert total == 1  # still there, waiting for its visibility timeout and the redrive policy
