"""SQS quota edges, injected by the proxy: each ends in a backoff and a WARNING, never a spin (fast).

MiniStack enforces neither the in-flight quota nor FIFO throughput, so the answers SQS gives there are
injected: ``OverLimit`` (HTTP 403) on ReceiveMessage when a standard queue holds 120,000 in-flight
messages, ``ThrottlingException`` on a FIFO queue past its calls per second. docs/scaling-out.md says
what the broker does at each edge; these tests hold it to that.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time

import pytest

from taskiq_sqs_http import SQSBroker
from taskiq_sqs_http.aws import RetryPolicy, SQSClient

from .proxy import FaultPlan, running_proxy
from .support import unique

TIMEOUT = 30.0


def _warnings(caplog: pytest.LogCaptureFixture, code: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and code in r.getMessage()]


async def _first_message(broker: SQSBroker) -> bytes:
    async def first() -> bytes:
        async for message in broker.listen():
            acked = message.ack()
            if inspect.isawaitable(acked):
                await acked
            return message.data
        raise AssertionError("listen() ended")

    return await asyncio.wait_for(first(), TIMEOUT)


async def test_over_limit_on_receive_backs_off_warns_and_resumes(
    emulator: str, fake_keys: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Past the client's own attempts, the receive loop backs off with a WARNING per failure and resumes
    when SQS accepts again: the task arrives, and the number of receives shows no tight loop."""
    failures = 3
    async with SQSClient(endpoint_url=emulator) as sqs:
        name = unique("overlimit")
        url = await sqs.create_queue(name)
        await sqs.send_message(
            url, '{"task_id": "t1", "task_name": "x", "labels": {}, "args": [], "kwargs": {}}'
        )
        plan = FaultPlan(scripted={"ReceiveMessage": ("overlimit",) * failures})
        with running_proxy(emulator, plan) as proxy, caplog.at_level(logging.WARNING):
            broker = SQSBroker(
                name,
                endpoint_url=proxy.url,
                wait_time_seconds=1,
                retry_policy=RetryPolicy.testing(max_attempts=1),
            )
            await broker.startup()
            started = time.monotonic()
            try:
                data = await _first_message(broker)
            finally:
                await broker.shutdown()
            elapsed = time.monotonic() - started
            receives = proxy.requests["ReceiveMessage"]
        await sqs.delete_queue(url)
    assert b'"task_id": "t1"' in data
    assert proxy.faults_by_kind() == {"overlimit": failures}
    assert len(_warnings(caplog, "OverLimit")) >= failures  # one clear line per failed receive
    # Backoff, not a spin: the failed receives plus the one that succeeded (and at most a couple more
    # while the listener stops), spread over a growing delay.
    assert receives <= failures + 3
    assert elapsed >= 0.5 * (2**failures - 1) * 0.9  # 0.5 + 1 + 2 s of backoff


async def test_throttled_receive_is_retried_by_the_client_with_a_warning(
    emulator: str, fake_keys: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Within the client's attempts a throttled receive is retried after the throttling delay, with a
    WARNING that names the code; the listener never sees the error."""
    async with SQSClient(endpoint_url=emulator) as sqs:
        name = unique("throttle")
        url = await sqs.create_queue(name)
        await sqs.send_message(
            url, '{"task_id": "t2", "task_name": "x", "labels": {}, "args": [], "kwargs": {}}'
        )
        plan = FaultPlan(scripted={"ReceiveMessage": ("throttle",)})
        with running_proxy(emulator, plan) as proxy, caplog.at_level(logging.WARNING):
            broker = SQSBroker(name, endpoint_url=proxy.url, wait_time_seconds=1)
            await broker.startup()
            try:
                data = await _first_message(broker)
            finally:
                await broker.shutdown()
        await sqs.delete_queue(url)
    assert b'"task_id": "t2"' in data
    assert proxy.faults_by_kind() == {"throttle": 1}
    assert _warnings(caplog, "ThrottlingException")


async def test_throttled_send_is_retried_and_sent_once(
    emulator: str, fake_keys: None, caplog: pytest.LogCaptureFixture
) -> None:
    """A throttled SendMessage (FIFO past 300 calls/s) is retried and lands exactly once."""
    async with SQSClient(endpoint_url=emulator) as sqs:
        name = unique("throttle-send")
        url = await sqs.create_queue(name)
        plan = FaultPlan(scripted={"SendMessage": ("throttle", "throttle")})
        with running_proxy(emulator, plan) as proxy, caplog.at_level(logging.WARNING):
            broker = SQSBroker(name, endpoint_url=proxy.url)

            @broker.task(task_name="quota:noop")
            async def noop() -> None:
                pass

            await broker.startup()
            try:
                await asyncio.wait_for(noop.kiq(), TIMEOUT)
            finally:
                await broker.shutdown()
        attributes = await sqs.get_queue_attributes(url, ["ApproximateNumberOfMessages"])
        await sqs.delete_queue(url)
    assert attributes["ApproximateNumberOfMessages"] == "1"
    assert proxy.faults_by_kind() == {"throttle": 2}
    assert len(_warnings(caplog, "ThrottlingException")) == 2
