"""taskiq's retry middlewares on standard and FIFO queues, through taskiq's own Receiver."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from taskiq import SimpleRetryMiddleware, SmartRetryMiddleware, TaskiqMiddleware
from taskiq.receiver import Receiver

from taskiq_sqs_http import SQSBroker

from .broker_helpers import MakeBroker, eventually


@asynccontextmanager
async def running_worker(broker: SQSBroker) -> AsyncIterator[None]:
    """taskiq's Receiver listening on ``broker`` in this process, stopped at exit."""
    broker.is_worker_process = True
    receiver = Receiver(broker, max_async_tasks=10, run_startup=False)
    finish = asyncio.Event()
    task = asyncio.create_task(receiver.listen(finish))
    try:
        yield
    finally:
        finish.set()
        await asyncio.wait_for(task, 10)


def _middleware(kind: str) -> TaskiqMiddleware:
    if kind == "simple":
        return SimpleRetryMiddleware(default_retry_count=3)
    return SmartRetryMiddleware(default_retry_count=3, default_delay=1, use_jitter=False)


@pytest.mark.parametrize("kind", ["simple", "smart"])
@pytest.mark.parametrize("fifo", [False, True], ids=["standard", "fifo"])
async def test_retry_middlewares_retry_on_every_queue_type(
    make_broker: MakeBroker,
    queue: tuple[str, str],
    fifo_queue: tuple[str, str],
    kind: str,
    fifo: bool,
    unique_name: str,
) -> None:
    """A failing task is re-kicked with the same id and succeeds; FIFO dedup does not eat the retry."""
    name = fifo_queue[0] if fifo else queue[0]
    broker = await make_broker(name, wait_time_seconds=1, use_task_id_for_deduplication=fifo, start=False)
    broker.add_middlewares(_middleware(kind))
    attempts: list[tuple[str, float]] = []

    @broker.task(task_name=f"flaky-{unique_name}", retry_on_error=True, max_retries=3)
    async def flaky() -> str:
        attempts.append((str(len(attempts)), time.monotonic()))
        if len(attempts) < 3:
            raise RuntimeError("fail twice")
        return "ok"

    await broker.startup()
    async with running_worker(broker):
        started = time.monotonic()
        await flaky.kiq()

        async def three_attempts() -> bool:
            return len(attempts) == 3

        await eventually(three_attempts, timeout=15)
    if kind == "smart" and not fifo:
        # SmartRetry asks for a 1 s delay on each retry; a standard queue honours it.
        assert attempts[1][1] - started >= 0.9


async def test_binary_serializer_runs_end_to_end(make_broker: MakeBroker, queue: tuple[str, str]) -> None:
    """A pickle-serialized task (not UTF-8) goes through SQS and runs in taskiq's Receiver."""
    from taskiq.serializers import PickleSerializer

    broker = await make_broker(queue[0], wait_time_seconds=1, start=False)
    broker.with_serializer(PickleSerializer())
    seen: list[str] = []

    @broker.task(task_name=f"bin-{queue[0]}")
    async def echo(value: str) -> None:
        seen.append(value)

    await broker.startup()
    async with running_worker(broker):
        await echo.kiq("caf\u00e9")

        async def ran() -> bool:
            return seen == ["caf\u00e9"]

        await eventually(ran, timeout=10)
