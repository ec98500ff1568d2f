"""Integration tests run against the MiniStack that `make test` starts (scripts/with_ministack.py).

The endpoint comes from TEST_AWS_ENDPOINT_URL, so two runs on one machine never share an emulator.
Without it, integration tests are skipped with a reason rather than pointed at a default port.

Every fixture here builds something on that emulator and removes it afterwards: clients, queues, a
bucket and started brokers. Helpers that are plain functions live in `broker_helpers`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from taskiq_sqs_http import SQSBroker
from taskiq_sqs_http.aws import RetryPolicy, S3Client, SQSClient

from .broker_helpers import MakeBroker

ENDPOINT_ENV = "TEST_AWS_ENDPOINT_URL"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.path):
            item.add_marker(pytest.mark.integration)
            if not os.environ.get(ENDPOINT_ENV):
                item.add_marker(pytest.mark.skip(reason=f"{ENDPOINT_ENV} is not set (run make test)"))


@pytest.fixture
def endpoint_url() -> str:
    return os.environ[ENDPOINT_ENV]


@pytest.fixture
def unique_name() -> str:
    """Queue names are never reused, so a test never sees another test's messages."""
    return f"t-{uuid.uuid4().hex[:20]}"


@pytest.fixture
async def sqs(endpoint_url: str, fake_keys: None) -> AsyncIterator[SQSClient]:
    async with SQSClient(endpoint_url=endpoint_url, retry_policy=RetryPolicy.testing()) as client:
        yield client


@pytest.fixture
async def s3(endpoint_url: str, fake_keys: None) -> AsyncIterator[S3Client]:
    async with S3Client(endpoint_url=endpoint_url, retry_policy=RetryPolicy.testing()) as client:
        yield client


@pytest.fixture
async def queue(sqs: SQSClient, unique_name: str) -> AsyncIterator[tuple[str, str]]:
    """(name, url) of a fresh standard queue, deleted afterwards."""
    url = await sqs.create_queue(unique_name)
    yield unique_name, url
    await sqs.delete_queue(url)


@pytest.fixture
async def fifo_queue(sqs: SQSClient, unique_name: str) -> AsyncIterator[tuple[str, str]]:
    """(name, url) of a fresh FIFO queue with content-based deduplication."""
    name = unique_name + ".fifo"
    url = await sqs.create_queue(name, attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})
    yield name, url
    await sqs.delete_queue(url)


@pytest.fixture
async def bucket(s3: S3Client) -> AsyncIterator[str]:
    name = f"b-{uuid.uuid4().hex[:20]}"
    await s3.create_bucket(name)
    yield name  # MiniStack buckets cost nothing; S3Client has no ListObjects to empty them


@pytest.fixture
async def make_broker(endpoint_url: str, fake_keys: None) -> AsyncIterator[MakeBroker]:
    """Build (and by default start) brokers on the emulator; every one is shut down at teardown."""
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
