"""Fixtures shared by the broker, result-backend and interop integration tests.

conftest.py belongs to the client-layer suite, so test modules load this file as a plugin
(``pytest_plugins = ["tests.integration.broker_support"]``); helpers live in `broker_helpers`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from taskiq_sqs_http import SQSBroker
from taskiq_sqs_http.aws import RetryPolicy, S3Client, SQSClient

__all__ = ["bucket", "fifo_queue", "make_broker", "queue", "s3", "sqs"]


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
