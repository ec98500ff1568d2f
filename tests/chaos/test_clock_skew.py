"""A server clock far from ours: the client must learn it and re-sign, also under concurrency (fast)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from taskiq_sqs_http.aws import S3Client, SQSClient

from .proxy import FaultPlan, FaultProxy, running_proxy
from .support import unique

SKEW = 900.0  # the "server" is 15 minutes ahead; AWS refuses requests more than 5 minutes off


@pytest.fixture
def skewed(emulator: str) -> Iterator[FaultProxy]:
    with running_proxy(emulator, FaultPlan(clock_skew=SKEW)) as proxy:
        yield proxy


async def test_sequential_requests_learn_the_clock_once(skewed: FaultProxy, fake_keys: None) -> None:
    async with SQSClient(endpoint_url=skewed.url) as sqs:
        url = await sqs.create_queue(unique("skew"))
        for n in range(5):
            await sqs.send_message(url, f"m{n}")
    assert skewed.faults_by_kind() == {"skew": 1}


async def test_concurrent_requests_all_survive_the_first_skew_error(
    skewed: FaultProxy, fake_keys: None
) -> None:
    bucket = unique("skew")
    async with S3Client(endpoint_url=skewed.url) as s3:
        await s3.create_bucket(bucket)  # learns the clock
    async with S3Client(endpoint_url=skewed.url) as s3:  # a fresh client, as in a new worker process
        outcomes = await asyncio.gather(
            *(s3.put_object(bucket, f"k{i}", b"v") for i in range(10)), return_exceptions=True
        )
    failed = [repr(o) for o in outcomes if isinstance(o, BaseException)]
    assert failed == []
