"""Requests per task by type, SQS and S3, for the setups priced in docs/cost.md.

Producer and worker each get their own counting transport (tests/integration/faults.py with no fault rule),
so every request is attributed to the side that pays for it. A worker runs in-process with taskiq's own
receiver; the producer waits for results with taskiq's default `wait_result` check interval (0.2 s), which is
what decides the number of S3 HEAD requests. Each test prints its counts (`pytest -s` shows them) and
asserts the structure the cost page relies on: one S3 PUT per stored result, one GET per awaited result,
at least one HEAD per `wait_result`, and PUT + GET + DELETE per offloaded payload.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from taskiq.api import run_receiver_task

from taskiq_sqs_http import S3Backend, SQSBroker
from taskiq_sqs_http.aws import RetryPolicy

from .broker_helpers import eventually
from .faults import FaultTransport

# Calls made once per broker or backend, whatever the number of tasks.
SETUP = {"GetQueueUrl", "CreateQueue", "GetQueueAttributes"}
CHECK_INTERVAL = 0.2  # taskiq's default for AsyncTaskiqTask.wait_result
TASK_SECONDS = 0.3


class Side:
    """One process's view: a counting transport and the client that uses it."""

    def __init__(self) -> None:
        self.transport = FaultTransport()
        self.client = httpx.AsyncClient(transport=self.transport)

    def per_task(self, tasks: int) -> dict[str, float]:
        return {k: round(v / tasks, 3) for k, v in sorted(self.transport.counts.items()) if k not in SETUP}


MakePair = Callable[..., Awaitable[tuple[SQSBroker, SQSBroker, Side, Side]]]


@pytest.fixture
async def make_pair(
    endpoint_url: str, unique_name: str, bucket: str, fake_keys: None
) -> AsyncIterator[MakePair]:
    """(producer, worker, producer side, worker side): two brokers on one queue and one result bucket."""
    sides: list[Side] = []
    brokers: list[SQSBroker] = []
    workers: list[asyncio.Task[Any]] = []

    async def factory(
        producer_options: dict[str, Any], worker_options: dict[str, Any]
    ) -> tuple[SQSBroker, SQSBroker, Side, Side]:
        pair: list[SQSBroker] = []
        for options in (producer_options, worker_options):
            side = Side()
            sides.append(side)
            common = {"endpoint_url": endpoint_url, "retry_policy": RetryPolicy.testing()}
            broker = SQSBroker(unique_name, create_queues=True, http_client=side.client, **common, **options)
            broker.with_result_backend(S3Backend(bucket, http_client=side.client, **common))

            @broker.task(task_name="cost:work")
            async def work(blob: str = "") -> int:
                await asyncio.sleep(TASK_SECONDS)
                return len(blob)

            pair.append(broker)
            brokers.append(broker)
        producer, worker = pair
        worker.is_worker_process = True
        await producer.startup()
        await worker.startup()
        workers.append(asyncio.create_task(run_receiver_task(worker, run_startup=False)))
        # Startup requests are per process, not per task.
        for side in sides[-2:]:
            side.transport.counts.clear()
        return producer, worker, sides[-2], sides[-1]

    yield factory
    for task in workers:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    for broker in brokers:
        await broker.shutdown()
    for side in sides:
        await side.client.aclose()


def _report(title: str, tasks: int, producer: Side, worker: Side) -> None:
    print(f"\n{title} ({tasks} tasks), requests per task")
    print("  producer:", producer.per_task(tasks))
    print("  worker:  ", worker.per_task(tasks))


async def _settled(side: Side, done: Callable[[Counter[str]], bool]) -> None:
    """Wait for requests that follow a result (acks, payload deletes), then for stragglers."""

    async def check() -> bool:
        return done(side.transport.counts)

    await eventually(check, timeout=15)
    await asyncio.sleep(0.3)


async def _run(producer: SQSBroker, tasks: int, blob: str = "", awaited: bool = True) -> list[float]:
    """Kick one task at a time and (optionally) wait for its result; returns each task's latency."""
    work = producer.find_task("cost:work")
    assert work is not None
    latencies: list[float] = []
    for _ in range(tasks):
        started = time.monotonic()
        task = await work.kiq(blob)
        if awaited:
            result = await task.wait_result(timeout=30, check_interval=CHECK_INTERVAL)
            assert result.return_value == len(blob)
        latencies.append(time.monotonic() - started)
    return latencies


async def test_result_stored_and_awaited_unbatched(make_pair: MakePair) -> None:
    tasks = 10
    producer, _, p, w = await make_pair({}, {"wait_time_seconds": 1})
    latencies = await _run(producer, tasks)
    await _settled(w, lambda c: c["DeleteMessageBatch"] + c["DeleteMessage"] >= tasks)  # the last ack
    _report("unbatched, prefetch 1, result awaited", tasks, p, w)
    pc, wc = p.transport.counts, w.transport.counts

    assert pc["SendMessage"] == tasks
    assert wc["S3.PUT"] == tasks  # one result object per task
    # wait_result: is_ready (HEAD) every check interval until the result exists, then one GET. The very
    # first poll of a backend that has not seen its bucket yet is a GET too (a HEAD 404 cannot tell a
    # missing key from a missing bucket).
    assert tasks <= pc["S3.GET"] <= tasks + 1
    most_polls = sum(math.ceil(latency / CHECK_INTERVAL) + 1 for latency in latencies)
    assert tasks <= pc["S3.HEAD"] <= most_polls
    s3_total = sum(n for k, n in (pc + wc).items() if k.startswith("S3."))
    assert wc["S3.PUT"] + pc["S3.GET"] + pc["S3.HEAD"] == s3_total  # nothing else
    # SQS: one send, at least one receive and one delete per task on an otherwise idle queue.
    assert wc["DeleteMessageBatch"] + wc["DeleteMessage"] == tasks


async def test_batched_prefetch_10_results_not_awaited(make_pair: MakePair) -> None:
    tasks = 100
    producer, _, p, w = await make_pair(
        {"enable_batching": True, "batch_timeout": 0.2},
        {"wait_time_seconds": 1, "max_number_of_messages": 10},
    )
    await _run(producer, tasks, awaited=False)
    await producer.flush()

    async def all_stored() -> bool:
        return w.transport.counts["S3.PUT"] >= tasks

    await eventually(all_stored, timeout=30)
    await _settled(w, lambda c: c["DeleteMessageBatch"] >= math.ceil(tasks / 10))  # acks after the last PUT
    _report("batched, prefetch 10, results stored, not awaited", tasks, p, w)
    pc, wc = p.transport.counts, w.transport.counts
    assert wc["S3.PUT"] == tasks
    assert not [k for k in pc if k.startswith("S3.")]  # nobody polls
    assert pc["SendMessageBatch"] <= math.ceil(tasks / 10) + 3
    assert pc.get("SendMessage", 0) == 0
    sqs_total = sum(n for k, n in (pc + wc).items() if not k.startswith("S3."))
    # 0.31 to 0.43 measured; tests/integration/test_batching.py holds the tight bound (0.35, short tasks).
    assert sqs_total / tasks <= 0.6, dict(pc + wc)


async def test_offloaded_payload(make_pair: MakePair, bucket: str) -> None:
    tasks = 3
    options = {"s3_extended_bucket_name": bucket}
    producer, _, p, w = await make_pair(options, {**options, "wait_time_seconds": 1})
    await _run(producer, tasks, blob="x" * (1024 * 1024 + 10))
    await _settled(w, lambda c: c["S3.DELETE"] >= tasks)  # payload deletes follow the ack
    _report("payload over 1 MiB offloaded to S3, result awaited", tasks, p, w)
    pc, wc = p.transport.counts, w.transport.counts
    both = Counter(pc) + Counter(wc)
    assert pc["S3.PUT"] == tasks  # the producer stores each payload
    assert wc["S3.GET"] == tasks  # the worker reads it
    assert wc["S3.DELETE"] == tasks  # and deletes it after the ack
    assert wc["S3.PUT"] == tasks  # plus the result, as above
    assert both["SendMessage"] == tasks  # the pointer is one small SQS message
