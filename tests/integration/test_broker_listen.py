"""listen() on a server: prefetched messages handed back at stop, bad messages and receive errors survived.

How often an idle queue is polled, bounded prefetch and receive backoff are unit-tested on a virtual
clock (tests/unit/broker/test_polling.py); what is here needs a real queue.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable

import pytest

from taskiq_sqs_http.aws import MessageAttributeValue, SQSClient

from .broker_helpers import MakeBroker, eventually, next_message, receive_all, task_message


async def _not_visible(sqs: SQSClient, url: str) -> int:
    attributes = await sqs.get_queue_attributes(url)
    return int(attributes["ApproximateNumberOfMessagesNotVisible"])


async def test_stop_hands_prefetched_messages_back_at_once(
    make_broker: MakeBroker, queue: tuple[str, str], sqs: SQSClient
) -> None:
    """Messages received but not yet taken become visible again as soon as listen() stops."""
    name, url = queue
    broker = await make_broker(name, wait_time_seconds=1, max_number_of_messages=5)
    for _ in range(5):
        await broker.kick(task_message())
    gen = broker.listen()
    first = await next_message(gen)
    await eventually(lambda: _equals(_not_visible(sqs, url), 5))
    await gen.aclose()
    # The four held ones are visible again now, not after the 30 s visibility timeout.
    got = await receive_all(sqs, url, 4, timeout=3)
    assert len(got) == 4
    await first.ack()


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def test_bad_messages_are_skipped_and_left_for_redrive(
    make_broker: MakeBroker, queue: tuple[str, str], sqs: SQSClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Not-a-task bodies and broken S3 pointers are logged with their id and never deleted."""
    name, url = queue
    broker = await make_broker(name, wait_time_seconds=1, max_number_of_messages=10)
    junk = await sqs.send_message(url, "this is not a task")
    pointer = await sqs.send_message(
        url,
        '{"s3_bucket": "no-such-bucket", "s3_key": "x.json"}',
        message_attributes={"s3_extended_message": MessageAttributeValue.string("True")},
    )
    good = task_message()
    await broker.kick(good)
    gen = broker.listen()
    try:
        delivery = await next_message(gen)
        assert delivery.data == good.message
        await delivery.ack()
    finally:
        await gen.aclose()
    assert junk.message_id in caplog.text
    assert pointer.message_id in caplog.text
    # Both are still in the queue (in flight until their visibility timeout), not deleted.
    attributes = await sqs.get_queue_attributes(url)
    total = int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )
    assert total == 2


@pytest.mark.parametrize("payload", [b"\x80\x81\xff\x00binary", "caf\u00e9 \x00 nul".encode()])
async def test_binary_payloads_round_trip(
    make_broker: MakeBroker, queue: tuple[str, str], sqs: SQSClient, payload: bytes
) -> None:
    """Bytes that are not SQS-safe text travel base64-encoded and come back identical."""
    name, url = queue
    broker = await make_broker(name, wait_time_seconds=1)
    broker.is_worker_process = False
    message = task_message(body=payload)
    await broker.kick(message)
    raw = (await receive_all(sqs, url, 1))[0]
    assert raw.message_attributes["taskiq_body_encoding"].string_value == "base64"
    assert base64.b64decode(raw.body) == payload
    await sqs.change_message_visibility(url, raw.receipt_handle, 0)


async def test_text_body_is_sent_verbatim_without_attributes(
    make_broker: MakeBroker, queue: tuple[str, str], sqs: SQSClient
) -> None:
    name, url = queue
    broker = await make_broker(name)
    message = task_message()
    await broker.kick(message)
    raw = (await receive_all(sqs, url, 1))[0]
    assert raw.body.encode() == message.message
    assert raw.message_attributes == {}


async def test_listen_outlives_a_deleted_queue_and_delivers_once_it_is_back(
    make_broker: MakeBroker, queue: tuple[str, str], sqs: SQSClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Receive errors are logged and retried, never raised out of listen()."""
    name, url = queue
    caplog.set_level(logging.WARNING, logger="taskiq_sqs_http")
    broker = await make_broker(name, wait_time_seconds=1)
    gen = broker.listen()
    pending = asyncio.ensure_future(next_message(gen, timeout=30))
    try:
        await sqs.delete_queue(url)
        await eventually(lambda: _logged(caplog, "retrying in"))
        assert not pending.done()
        assert await sqs.create_queue(name) == url
        message = task_message()
        await sqs.send_message(url, message.message.decode())
        delivery = await pending
        assert delivery.data == message.message
        await delivery.ack()
    finally:
        pending.cancel()
        await gen.aclose()


async def _logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in record.getMessage() for record in caplog.records)
