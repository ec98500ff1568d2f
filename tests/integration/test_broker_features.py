"""Heartbeat, metadata labels, S3-extended messages and fair queues against the emulator."""

from __future__ import annotations

import asyncio
import json

import pytest
from taskiq import TaskiqMessage
from taskiq.formatters.proxy_formatter import ProxyFormatter

from taskiq_sqs_http import (
    SQS_APPROXIMATE_RECEIVE_COUNT_LABEL,
    SQS_MESSAGE_ID_LABEL,
    SQS_QUEUE_URL_LABEL,
    SQS_RECEIPT_HANDLE_LABEL,
    ExtendedBucketNameMissingError,
)
from taskiq_sqs_http.aws import NoSuchKeyError, S3Client, SQSClient

from .broker_helpers import MakeBroker, next_message, receive_all, task_message


async def test_heartbeat_keeps_a_long_task_invisible(
    make_broker: MakeBroker, sqs: SQSClient, unique_name: str
) -> None:
    """With a 2 s visibility timeout (fetched from the queue) the message stays hidden past 3 s."""
    url = await sqs.create_queue(unique_name, attributes={"VisibilityTimeout": "2"})
    try:
        broker = await make_broker(
            unique_name, wait_time_seconds=1, enable_heartbeat=True, heartbeat_interval=0.5
        )
        await broker.kick(task_message())
        gen = broker.listen()
        try:
            delivery = await next_message(gen)
            await asyncio.sleep(3.0)
            assert await sqs.receive_message(url, wait_time_seconds=0) == []
            await delivery.ack()
        finally:
            await gen.aclose()
        attributes = await sqs.get_queue_attributes(url)
        assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    finally:
        await sqs.delete_queue(url)


async def test_without_heartbeat_the_message_reappears(
    make_broker: MakeBroker, sqs: SQSClient, unique_name: str
) -> None:
    url = await sqs.create_queue(unique_name, attributes={"VisibilityTimeout": "1"})
    try:
        broker = await make_broker(unique_name, wait_time_seconds=1)
        await broker.kick(task_message())
        gen = broker.listen()
        try:
            await next_message(gen)
            assert len(await receive_all(sqs, url, 1, timeout=4)) == 1
        finally:
            await gen.aclose()
    finally:
        await sqs.delete_queue(url)


async def test_metadata_labels_reach_the_task(make_broker: MakeBroker, queue: tuple[str, str]) -> None:
    name, url = queue
    broker = await make_broker(name, wait_time_seconds=1, expose_message_metadata=True)
    broker.with_formatter(ProxyFormatter(broker))  # re-wrapped: metadata survives a formatter change
    await broker.kick(
        broker.formatter.dumps(
            TaskiqMessage(task_id="t1", task_name="tests:meta", labels={"x": "1"}, args=[], kwargs={})
        )
    )
    gen = broker.listen()
    try:
        delivery = await next_message(gen)
        message = broker.formatter.loads(delivery.data)
        await delivery.ack()
    finally:
        await gen.aclose()
    assert message.task_id == "t1"
    assert message.labels["x"] == "1"
    assert message.labels[SQS_QUEUE_URL_LABEL] == url
    assert message.labels[SQS_APPROXIMATE_RECEIVE_COUNT_LABEL] == "1"
    assert message.labels[SQS_RECEIPT_HANDLE_LABEL]
    assert message.labels[SQS_MESSAGE_ID_LABEL]
    metadata = delivery.ack.metadata  # type: ignore[attr-defined]
    assert metadata.queue_url == url


# The client layer's aiohttp transport warns on >1 MiB bodies (reported to the aws-layer owners).
async def test_oversize_message_goes_through_s3(
    make_broker: MakeBroker, queue: tuple[str, str], bucket: str, sqs: SQSClient, s3: S3Client
) -> None:
    """2.1.1's extended format: pointer body, s3_extended_message attribute, raw bytes in S3.

    The key is the task id plus a unique suffix: a retry re-kicks the same task id, and the payload of
    an acked message is deleted, which must never delete the retry's payload.
    """
    name, url = queue
    broker = await make_broker(name, wait_time_seconds=1, s3_extended_bucket_name=bucket)
    big = task_message()
    big.message = big.message[:-1] + b',"pad":"' + b"x" * (1024 * 1024) + b'"}'
    await broker.kick(big)
    raw = (await receive_all(sqs, url, 1))[0]
    assert raw.message_attributes["s3_extended_message"].string_value == "True"
    key = json.loads(raw.body)["s3_key"]
    assert key.startswith(big.task_id + "-") and key.endswith(".json")
    assert raw.body == json.dumps({"s3_bucket": bucket, "s3_key": key})
    assert (await s3.get_object(bucket, key)).body == big.message
    await sqs.change_message_visibility(url, raw.receipt_handle, 0)
    gen = broker.listen()
    try:
        delivery = await next_message(gen)
        assert delivery.data == big.message
        await delivery.ack()
    finally:
        await gen.aclose()
    with pytest.raises(NoSuchKeyError):  # cleaned up after the ack
        await s3.get_object(bucket, key)


async def test_oversize_message_without_bucket_is_an_error(
    make_broker: MakeBroker, queue: tuple[str, str]
) -> None:
    broker = await make_broker(queue[0])
    with pytest.raises(ExtendedBucketNameMissingError):
        await broker.kick(task_message(body=b"x" * (1024 * 1024 + 1)))


async def test_fair_queue_sends_group_id_on_standard_queue(
    make_broker: MakeBroker, queue: tuple[str, str], sqs: SQSClient
) -> None:
    name, url = queue
    broker = await make_broker(name, is_fair_queue=True)
    await broker.kick(task_message(group_id="tenant-1"))
    raw = (await receive_all(sqs, url, 1))[0]
    assert raw.attributes.get("MessageGroupId") == "tenant-1"
