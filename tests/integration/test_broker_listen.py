"""listen(): long polling, bounded prefetch, prompt stop, and surviving bad messages."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Awaitable

import httpx
import pytest

from taskiq_sqs_http.aws import MessageAttributeValue, SQSClient

from .broker_helpers import MakeBroker, eventually, next_message, receive_all, task_message


class _Counter:
    def __init__(self) -> None:
        self.targets: list[str] = []

    async def __call__(self, request: httpx.Request) -> None:
        self.targets.append(request.headers.get("x-amz-target", request.method))

    def count(self, action: str) -> int:
        return sum(1 for t in self.targets if t.endswith("." + action))


async def _not_visible(sqs: SQSClient, url: str) -> int:
    attributes = await sqs.get_queue_attributes(url)
    return int(attributes["ApproximateNumberOfMessagesNotVisible"])


@pytest.mark.parametrize("wait", [2, 0])
async def test_idle_queue_is_polled_once_per_wait_period(
    make_broker: MakeBroker, queue: tuple[str, str], wait: int
) -> None:
    """One ReceiveMessage per wait_time_seconds while idle; wait 0 sleeps between empty polls."""
    counter = _Counter()
    async with httpx.AsyncClient(event_hooks={"request": [counter]}) as client:
        broker = await make_broker(queue[0], wait_time_seconds=wait, http_client=client)
        gen = broker.listen()
        pending = asyncio.ensure_future(gen.__anext__())
        await asyncio.sleep(4.2)
        stop_started = time.monotonic()
        pending.cancel()
        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
            await pending
        await gen.aclose()
        stop_took = time.monotonic() - stop_started
        await broker.shutdown()
    receives = counter.count("ReceiveMessage")
    # 2.1.1 made ~1 request per second (wait 2) or thousands (wait 0) in the same time.
    assert 2 <= receives <= (3 if wait else 6), counter.targets
    assert stop_took < 1.0, stop_took


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


async def test_prefetch_is_bounded_by_max_number_of_messages(
    make_broker: MakeBroker, queue: tuple[str, str], sqs: SQSClient
) -> None:
    name, url = queue
    broker = await make_broker(name, wait_time_seconds=1, max_number_of_messages=3)
    for _ in range(10):
        await broker.kick(task_message())
    gen = broker.listen()
    try:
        taken = [await next_message(gen)]
        await asyncio.sleep(1.5)  # give an unbounded prefetcher every chance to over-fetch
        assert await _not_visible(sqs, url) == 3
        taken += [await next_message(gen) for _ in range(2)]
        await asyncio.sleep(1.0)
        # 3 taken (not acked) + at most 3 held.
        assert await _not_visible(sqs, url) <= 6
        for delivery in taken:
            await delivery.ack()
    finally:
        await gen.aclose()


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


async def test_receive_errors_do_not_stop_listen(
    make_broker: MakeBroker, queue: tuple[str, str], sqs: SQSClient
) -> None:
    """A queue deleted under a running consumer is logged and retried, not raised out of listen()."""
    name, url = queue
    broker = await make_broker(name, wait_time_seconds=1)
    gen = broker.listen()
    pending = asyncio.ensure_future(gen.__anext__())
    await sqs.delete_queue(url)
    await asyncio.sleep(1.5)
    assert not pending.done()
    pending.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await pending
    await gen.aclose()
    await sqs.create_queue(name)  # the fixture deletes it again
