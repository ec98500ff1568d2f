"""Kick, listen and ack through a real SQS emulator."""

from __future__ import annotations

import asyncio
import time

import pytest

from taskiq_sqs_http import QueueNotFoundError, QueueNotRegisteredError, SQSQueue
from taskiq_sqs_http.aws import SQSClient

from .broker_helpers import MakeBroker, next_message, receive_all, task_message


async def test_kick_listen_ack_roundtrip(
    make_broker: MakeBroker, queue: tuple[str, str], sqs: SQSClient
) -> None:
    """The body arrives verbatim, and ack deletes the message."""
    name, url = queue
    broker = await make_broker(name, wait_time_seconds=1)
    message = task_message()
    await broker.kick(message)
    gen = broker.listen()
    try:
        delivery = await next_message(gen)
        assert delivery.data == message.message
        await delivery.ack()
    finally:
        await gen.aclose()
    attributes = await sqs.get_queue_attributes(url)
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


async def test_startup_missing_queue_raises_queue_not_found(
    make_broker: MakeBroker, unique_name: str
) -> None:
    """A queue that does not exist fails startup with QueueNotFoundError naming it."""
    with pytest.raises(QueueNotFoundError, match=unique_name):
        await make_broker(unique_name)


async def test_unregistered_queue_label_is_an_error(make_broker: MakeBroker, queue: tuple[str, str]) -> None:
    broker = await make_broker(queue[0])
    with pytest.raises(QueueNotRegisteredError, match="nope"):
        await broker.kick(task_message(queue="nope"))


async def test_queue_by_url_skips_get_queue_url(
    make_broker: MakeBroker, queue: tuple[str, str], sqs: SQSClient
) -> None:
    """A queue given by URL is used as is; the label refers to its name."""
    name, url = queue
    broker = await make_broker("unused-default", start=False)
    broker.with_default_queue(SQSQueue(name=url, wait_time_seconds=1))
    await broker.startup()
    assert broker.queue_urls == {name: url}
    await broker.kick(task_message(queue=name))
    assert len(await receive_all(sqs, url, 1)) == 1


async def test_create_queues_provisions_fifo_and_dead_letter_queue(
    make_broker: MakeBroker, unique_name: str, sqs: SQSClient
) -> None:
    name = unique_name + ".fifo"
    dlq = unique_name + "-dlq.fifo"
    broker = await make_broker("unused", start=False, create_queues=True)
    broker.with_default_queue(SQSQueue(name=name, dead_letter_queue=dlq, max_receive_count=3))
    await broker.startup()
    url = broker.queue_urls[name]
    try:
        attributes = await sqs.get_queue_attributes(url)
        assert attributes["FifoQueue"] == "true"
        assert attributes["ContentBasedDeduplication"] == "true"
        assert '"maxReceiveCount"' in attributes["RedrivePolicy"]
        assert dlq in attributes["RedrivePolicy"]
    finally:
        await sqs.delete_queue(url)
        await sqs.delete_queue(await sqs.get_queue_url(dlq))


async def test_with_default_queue_replaces_the_old_one(
    make_broker: MakeBroker, queue: tuple[str, str]
) -> None:
    """The constructor's queue is no longer resolved (it does not exist here) nor polled."""
    broker = await make_broker("does-not-exist-anywhere", start=False)
    broker.with_default_queue(SQSQueue(name=queue[0]))
    await broker.startup()
    assert list(broker.queue_urls) == [queue[0]]


async def test_fifo_order_per_group(make_broker: MakeBroker, fifo_queue: tuple[str, str]) -> None:
    name, _ = fifo_queue
    broker = await make_broker(name, wait_time_seconds=1, max_number_of_messages=10)
    sent = {"a": [], "b": []}
    for i in range(6):
        group = "a" if i % 2 else "b"
        message = task_message(group_id=group)
        sent[group].append(message.message)
        await broker.kick(message)
    got: dict[str, list[bytes]] = {"a": [], "b": []}
    gen = broker.listen()
    try:
        for _ in range(6):
            delivery = await next_message(gen)
            group = next(g for g, bodies in sent.items() if delivery.data in bodies)
            got[group].append(delivery.data)
            await delivery.ack()
    finally:
        await gen.aclose()
    assert got == sent


async def test_delay_label_is_honoured(
    make_broker: MakeBroker, queue: tuple[str, str], sqs: SQSClient
) -> None:
    name, url = queue
    broker = await make_broker(name)
    started = time.monotonic()
    await broker.kick(task_message(delay=2))
    assert await sqs.receive_message(url, wait_time_seconds=0) == []
    got = await receive_all(sqs, url, 1, timeout=6)
    assert len(got) == 1
    assert time.monotonic() - started >= 1.5


async def test_long_delay_beyond_cap_hides_until_due(make_broker: MakeBroker, queue: tuple[str, str]) -> None:
    """A delay above max_delay_seconds is sent with the cap and re-hidden until due."""
    name, _ = queue
    broker = await make_broker(name, wait_time_seconds=1, max_delay_seconds=1)
    started = time.monotonic()
    await broker.kick(task_message(delay=4))
    gen = broker.listen()
    try:
        delivery = await next_message(gen, timeout=12)
        elapsed = time.monotonic() - started
        await delivery.ack()
    finally:
        await gen.aclose()
    assert elapsed >= 3.0, elapsed


async def test_shutdown_is_idempotent_and_closes_after_failed_startup(
    make_broker: MakeBroker, unique_name: str
) -> None:
    broker = await make_broker(unique_name, start=False)
    with pytest.raises(QueueNotFoundError):
        await broker.startup()
    await broker.shutdown()
    await broker.shutdown()
    await asyncio.sleep(0)
