"""Fixtures and helpers shared by the broker, result-backend and interop integration tests.

pytest only loads fixtures from conftest.py and from test modules, so test modules import the fixtures
they use from here explicitly.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from taskiq import AckableMessage, BrokerMessage

from taskiq_sqs_http import SQSBroker
from taskiq_sqs_http.aws import Message, RetryPolicy, S3Client, SQSClient

__all__ = [
    "bucket",
    "eventually",
    "fifo_queue",
    "make_broker",
    "queue",
    "receive_all",
    "s3",
    "sqs",
    "task_message",
]


@pytest.fixture
async def sqs(endpoint_url: str, fake_keys: None) -> AsyncIterator[SQSClient]:
    async with SQSClient(endpoint_url=endpoint_url, retry_policy=RetryPolicy.testing()) as client:
        yield client


@pytest.fixture
async def s3(endpoint_url: str, fake_keys: None) -> AsyncIterator[S3Client]:
    async with S3Client(endpoint_url=endpoint_url, retry_policy=RetryPolicy.testing()) as client:
        yield client


async def _create(sqs: SQSClient, name: str, attributes: dict[str, str] | None = None) -> str:
    return await sqs.create_queue(name, attributes=attributes)


@pytest.fixture
async def queue(sqs: SQSClient, unique_name: str) -> AsyncIterator[tuple[str, str]]:
    """(name, url) of a fresh standard queue, deleted afterwards."""
    url = await _create(sqs, unique_name)
    yield unique_name, url
    await sqs.delete_queue(url)


@pytest.fixture
async def fifo_queue(sqs: SQSClient, unique_name: str) -> AsyncIterator[tuple[str, str]]:
    """(name, url) of a fresh FIFO queue with content-based deduplication."""
    name = unique_name + ".fifo"
    url = await _create(sqs, name, {"FifoQueue": "true", "ContentBasedDeduplication": "true"})
    yield name, url
    await sqs.delete_queue(url)


@pytest.fixture
async def bucket(s3: S3Client) -> AsyncIterator[str]:
    name = f"b-{uuid.uuid4().hex[:20]}"
    await s3.create_bucket(name)
    yield name  # MiniStack buckets cost nothing; S3Client has no ListObjects to empty them


@pytest.fixture
async def make_broker(
    endpoint_url: str, fake_keys: None
) -> AsyncIterator[Callable[..., Awaitable[SQSBroker]]]:
    """Build and start brokers that are always shut down at teardown."""
    brokers: list[SQSBroker] = []

    async def factory(queue_name: str, *, start: bool = True, **kwargs: Any) -> SQSBroker:
        kwargs.setdefault("endpoint_url", endpoint_url)
        kwargs.setdefault("retry_policy", RetryPolicy.testing())
        broker = SQSBroker(queue_name, **kwargs)
        brokers.append(broker)
        if start:
            await broker.startup()
        return broker

    yield factory
    for broker in brokers:
        await broker.shutdown()


def task_message(
    task_name: str = "tests:task", body: bytes | None = None, **labels: Any
) -> BrokerMessage:
    task_id = uuid.uuid4().hex
    if body is None:
        body = (
            b'{"task_id":"' + task_id.encode() + b'","task_name":"' + task_name.encode() + b'",'
            b'"labels":{},"labels_types":{},"args":[],"kwargs":{}}'
        )
    return BrokerMessage(
        task_id=task_id,
        task_name=task_name,
        message=body,
        labels={k: str(v) for k, v in labels.items()},
    )


async def receive_all(sqs: SQSClient, url: str, count: int, timeout: float = 10.0) -> list[Message]:
    """Receive ``count`` messages directly (bounded by ``timeout``)."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got.extend(
            await sqs.receive_message(url, max_number_of_messages=10, wait_time_seconds=1)
        )
    return got


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 10.0, interval: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


async def next_message(gen: Any, timeout: float = 10.0) -> AckableMessage:
    return await asyncio.wait_for(gen.__anext__(), timeout)
