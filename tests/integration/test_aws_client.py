"""The client layer against MiniStack: every SQS and S3 operation, on one shared pool."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from taskiq_sqs_http.aws import (
    ChangeVisibilityEntry,
    DeleteMessageEntry,
    HTTPSession,
    MessageAttributeValue,
    NoSuchKeyError,
    QueueDoesNotExistError,
    S3Client,
    S3Error,
    SendMessageEntry,
    SQSClient,
)

pytestmark = pytest.mark.usefixtures("fake_keys")


@pytest.fixture
async def clients(endpoint_url: str) -> AsyncIterator[tuple[SQSClient, S3Client]]:
    async with HTTPSession() as session:
        sqs = SQSClient(endpoint_url=endpoint_url, session=session)
        s3 = S3Client(endpoint_url=endpoint_url, session=session)
        try:
            yield sqs, s3
        finally:
            await sqs.aclose()
            await s3.aclose()
        assert not session.closed  # the clients borrowed it; its owner closes it
    assert session.closed


@pytest.fixture
async def queue(clients: tuple[SQSClient, S3Client], unique_name: str) -> AsyncIterator[str]:
    sqs, _ = clients
    url = await sqs.create_queue(unique_name)
    yield url
    await sqs.delete_queue(url)


async def test_sqs_queue_lifecycle(clients: tuple[SQSClient, S3Client], unique_name: str) -> None:
    """Create, look up, read and change attributes, purge and delete a FIFO queue."""
    sqs, _ = clients
    name = unique_name + ".fifo"
    url = await sqs.create_queue(name, attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})
    assert await sqs.get_queue_url(name) == url
    await sqs.set_queue_attributes(url, {"VisibilityTimeout": "45"})
    attributes = await sqs.get_queue_attributes(url)
    assert attributes["VisibilityTimeout"] == "45"
    assert attributes["FifoQueue"] == "true"
    await sqs.purge_queue(url)
    await sqs.delete_queue(url)
    with pytest.raises(QueueDoesNotExistError):
        await sqs.get_queue_url(name)


async def test_sqs_message_round_trip(clients: tuple[SQSClient, S3Client], queue: str) -> None:
    """A message with string, number and binary attributes survives send, receive and delete."""
    sqs, _ = clients
    body = "héllo ✓ " + "x" * 100
    attributes = {
        "s": MessageAttributeValue.string("v"),
        "n": MessageAttributeValue.number(42),
        "b": MessageAttributeValue.binary(b"\x00\x01\xfe\xff"),
    }
    sent = await sqs.send_message(queue, body, message_attributes=attributes)
    received = await sqs.receive_message(queue, wait_time_seconds=1)
    assert len(received) == 1
    message = received[0]
    assert message.message_id == sent.message_id
    assert message.body == body
    assert message.receive_count == 1
    assert message.message_attributes["b"].binary_value == b"\x00\x01\xfe\xff"
    assert message.message_attributes["n"].string_value == "42"
    await sqs.delete_message(queue, message.receipt_handle)
    assert await sqs.receive_message(queue, wait_time_seconds=0) == []


async def test_sqs_batch_operations(clients: tuple[SQSClient, S3Client], queue: str) -> None:
    """SendMessageBatch, ChangeMessageVisibilityBatch and DeleteMessageBatch with per-entry results."""
    sqs, _ = clients
    sent = await sqs.send_message_batch(
        queue, [SendMessageEntry(str(i), f"m{i}", delay_seconds=0) for i in range(10)]
    )
    assert sorted(sent.successful) == [str(i) for i in range(10)] and sent.failed == []
    messages = []
    for _ in range(10):
        messages += await sqs.receive_message(queue, max_number_of_messages=10, wait_time_seconds=1)
        if len(messages) >= 10:
            break
    assert sorted(m.body for m in messages) == sorted(f"m{i}" for i in range(10))
    changed = await sqs.change_message_visibility_batch(
        queue, [ChangeVisibilityEntry(str(i), m.receipt_handle, 30) for i, m in enumerate(messages)]
    )
    assert len(changed.successful) == 10
    await sqs.change_message_visibility(queue, messages[0].receipt_handle, 0)
    deleted = await sqs.delete_message_batch(
        queue, [DeleteMessageEntry(str(i), m.receipt_handle) for i, m in enumerate(messages)]
    )
    assert len(deleted.successful) == 10


async def test_s3_object_round_trip(clients: tuple[SQSClient, S3Client], unique_name: str) -> None:
    """Keys with spaces, unicode and reserved characters round-trip; errors are typed."""
    _, s3 = clients
    bucket = unique_name.lower()
    await s3.create_bucket(bucket)
    await s3.head_bucket(bucket)
    keys = ["plain", "dir/a b+c=d&e?f#g", "ünïcødé/✓.json", "x%41y", "~tilde", "a//b", "..x"]
    for key in keys:
        await s3.put_object(bucket, key, key.encode() * 3, metadata={"k": "v"})
    for key in keys:
        result = await s3.get_object(bucket, key)
        assert result.body == key.encode() * 3, key
        head = await s3.head_object(bucket, key)
        assert head.content_length == len(key.encode()) * 3
    await s3.delete_object(bucket, keys[0])
    with pytest.raises(NoSuchKeyError):
        await s3.get_object(bucket, keys[0])
    with pytest.raises(S3Error) as info:
        await s3.head_object(bucket, keys[0])
    assert info.value.code == "404"
    result = await s3.delete_objects(bucket, keys[1:])
    assert sorted(result.deleted) == sorted(keys[1:])
    with pytest.raises(S3Error):
        await s3.head_bucket(bucket + "-missing")


async def test_s3_large_object_round_trip(clients: tuple[SQSClient, S3Client], unique_name: str) -> None:
    """A 3 MiB body goes up with a Content-Length (streamed, no warning) and comes back intact."""
    _, s3 = clients
    bucket = unique_name.lower()
    await s3.create_bucket(bucket)
    payload = bytes(range(256)) * (3 * 4096)
    await s3.put_object(bucket, "big.bin", payload)
    assert (await s3.get_object(bucket, "big.bin")).body == payload
    assert (await s3.head_object(bucket, "big.bin")).content_length == len(payload)
