"""Interoperability with taskiq-aio-sqs 2.1.1 (run as a subprocess from its own venv), both ways.

A fleet half-way through the migration has producers and consumers of both libraries on the same
queues and buckets: plain, FIFO and S3-extended messages and stored results must cross in both
directions unchanged.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from taskiq.result import TaskiqResult

from taskiq_sqs_http import S3Backend, SQSBroker
from taskiq_sqs_http.aws import RetryPolicy

from .broker_helpers import MakeBroker, next_message, task_message

PEER = Path(__file__).with_name("aiosqs_peer.py")
PYTHON = os.environ.get("TEST_AIOSQS_PYTHON")

pytestmark = [
    pytest.mark.skipif(not PYTHON, reason="TEST_AIOSQS_PYTHON is not set (run make test / make aiosqs)"),
    # The client layer's aiohttp transport warns on >1 MiB bodies (reported to the aws-layer owners).
]


async def peer(request: dict[str, Any], endpoint_url: str) -> dict[str, Any]:
    assert PYTHON is not None
    env = {**os.environ, "TEST_AWS_ENDPOINT_URL": endpoint_url}
    proc = await asyncio.create_subprocess_exec(
        PYTHON,
        str(PEER),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(json.dumps(request).encode()), 60)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, err.decode(errors="replace")[-3000:]
    return json.loads(out)


def _bodies(count: int, *, big: bool = False) -> list[dict[str, Any]]:
    items = []
    for i in range(count):
        task_id = uuid.uuid4().hex
        pad = "x" * (1024 * 1024 + 10) if big else f"p{i}"
        body = json.dumps(
            {
                "task_id": task_id,
                "task_name": "interop:task",
                "labels": {},
                "labels_types": {},
                "args": [i, pad],
                "kwargs": {},
            }
        ).encode()
        items.append(
            {
                "task_id": task_id,
                "task_name": "interop:task",
                "body": base64.b64encode(body).decode(),
                "labels": {},
            }
        )
    return items


async def _drain(broker: SQSBroker, count: int) -> list[bytes]:
    got: list[bytes] = []
    gen = broker.listen()
    try:
        for _ in range(count):
            delivery = await next_message(gen, timeout=20)
            got.append(delivery.data)
            await delivery.ack()
    finally:
        await gen.aclose()
    return got


async def test_messages_from_aiosqs_are_read_by_us(
    make_broker: MakeBroker,
    queue: tuple[str, str],
    fifo_queue: tuple[str, str],
    bucket: str,
    endpoint_url: str,
) -> None:
    """Plain, S3-extended (standard queue) and FIFO messages written by 2.1.1 reach our consumer."""
    plain, big, fifo = _bodies(2), _bodies(1, big=True), _bodies(3)
    for item in fifo:
        item["labels"] = {"group_id": "g1"}
    await peer({"action": "kick", "queue": queue[0], "bucket": bucket, "messages": plain + big}, endpoint_url)
    await peer({"action": "kick", "queue": fifo_queue[0], "bucket": None, "messages": fifo}, endpoint_url)

    ours = await make_broker(
        queue[0], wait_time_seconds=1, max_number_of_messages=10, s3_extended_bucket_name=bucket
    )
    got = await _drain(ours, 3)
    assert sorted(got) == sorted(base64.b64decode(i["body"]) for i in plain + big)

    ours_fifo = await make_broker(fifo_queue[0], wait_time_seconds=1, max_number_of_messages=10)
    assert await _drain(ours_fifo, 3) == [base64.b64decode(i["body"]) for i in fifo]


async def test_messages_from_us_are_read_by_aiosqs(
    make_broker: MakeBroker,
    queue: tuple[str, str],
    fifo_queue: tuple[str, str],
    bucket: str,
    endpoint_url: str,
) -> None:
    """Our plain, S3-extended and FIFO messages reach a 2.1.1 consumer unchanged."""
    ours = await make_broker(queue[0], s3_extended_bucket_name=bucket)
    sent = []
    for item in _bodies(2) + _bodies(1, big=True):
        message = task_message()
        message.message = base64.b64decode(item["body"])
        sent.append(message.message)
        await ours.kick(message)
    answer = await peer({"action": "receive", "queue": queue[0], "bucket": bucket, "count": 3}, endpoint_url)
    assert sorted(base64.b64decode(b) for b in answer["bodies"]) == sorted(sent)

    ours_fifo = await make_broker(fifo_queue[0], use_task_id_for_deduplication=True)
    fifo_sent = []
    for item in _bodies(3):
        message = task_message(group_id="g1")
        message.message = base64.b64decode(item["body"])
        fifo_sent.append(message.message)
        await ours_fifo.kick(message)
    answer = await peer({"action": "receive", "queue": fifo_queue[0], "count": 3}, endpoint_url)
    assert [base64.b64decode(b) for b in answer["bodies"]] == fifo_sent


async def test_results_cross_both_ways(bucket: str, endpoint_url: str, fake_keys: None) -> None:
    ours: S3Backend[Any] = S3Backend(
        bucket, base_path="results", endpoint_url=endpoint_url, retry_policy=RetryPolicy.testing()
    )
    try:
        await peer(
            {
                "action": "set_result",
                "bucket": bucket,
                "base_path": "results",
                "task_id": "from-aio",
                "value": {"n": 1},
            },
            endpoint_url,
        )
        assert (await ours.get_result("from-aio")).return_value == {"n": 1}
        await ours.set_result(
            "from-us", TaskiqResult(is_err=False, log="L", return_value=[1, 2], execution_time=0.1)
        )
        answer = await peer(
            {"action": "get_result", "bucket": bucket, "base_path": "results", "task_id": "from-us"},
            endpoint_url,
        )
        assert answer == {"value": [1, 2], "log": "L"}
    finally:
        await ours.shutdown()
