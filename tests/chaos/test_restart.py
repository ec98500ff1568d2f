"""MiniStack restarted mid-run: workers reconnect and go on; every kick raised or is accounted for."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest

from taskiq_sqs_http import SQSBroker
from taskiq_sqs_http.aws import RetryPolicy, S3Client, SQSClient

from .proxy import running_proxy
from .support import (
    MINISTACK,
    Record,
    Worker,
    kicker,
    ministack,
    queue_depth,
    read_runs,
    run_counts,
    unique,
    wait_until,
    write_record,
)

KICK_INTERVAL = 0.1
BEFORE, OUTAGE, AFTER = 5.0, 3.0, 8.0  # seconds of kicking before, during and after the outage


async def _provision(endpoint: str, queue: str, bucket: str) -> str:
    async with SQSClient(endpoint_url=endpoint) as sqs, S3Client(endpoint_url=endpoint) as s3:
        await s3.create_bucket(bucket)
        return await sqs.create_queue(queue, attributes={"VisibilityTimeout": "10"})


@pytest.mark.chaos
async def test_workers_survive_a_ministack_restart(fake_keys: None, tmp_path: Path) -> None:
    started = time.monotonic()
    record = Record("MiniStack restarted mid-run")
    queue, bucket = unique("restart"), unique("restart-results")
    runs_file = tmp_path / "runs.log"
    accepted: list[tuple[str, float]] = []
    raised: list[float] = []
    with contextlib.ExitStack() as second:
        first = contextlib.ExitStack()
        first_url = first.enter_context(ministack(str(MINISTACK)))
        try:
            await _provision(first_url, queue, bucket)
            with running_proxy(first_url) as proxy:
                env = {
                    "AWS_ENDPOINT_URL": proxy.url,
                    "CHAOS_QUEUE": queue,
                    "CHAOS_BUCKET": bucket,
                    "CHAOS_RUNS": str(runs_file),
                }
                workers = [Worker(f"restart-w{i}", env, tmp_path) for i in range(2)]
                broker = SQSBroker(
                    queue, endpoint_url=proxy.url, retry_policy=RetryPolicy(max_attempts=3, max_delay=1.0)
                )
                try:
                    for worker in workers:
                        worker.wait_ready()
                    await broker.startup()
                    n = 0

                    async def kick_for(seconds: float) -> None:
                        nonlocal n
                        until = time.monotonic() + seconds
                        while time.monotonic() < until and n < 10_000:
                            n += 1
                            try:
                                task = await kicker(broker, "chaos.record").kiq(n)
                            except Exception:  # an error to the caller is an allowed outcome
                                raised.append(time.monotonic())
                            else:
                                accepted.append((task.task_id, time.monotonic()))
                            await asyncio.sleep(KICK_INTERVAL)

                    await kick_for(BEFORE)
                    first.close()  # MiniStack stops: its queues and objects are gone with it
                    stopped_at = time.monotonic()
                    await kick_for(OUTAGE)
                    second_url = second.enter_context(ministack(str(MINISTACK)))
                    url = await _provision(second_url, queue, bucket)  # as create_queues=True would
                    proxy.upstream = second_url
                    back_at = time.monotonic()
                    await kick_for(AFTER)
                    after = {task_id for task_id, at in accepted if at > stopped_at}

                    async def all_ran() -> bool:
                        return after <= set(run_counts(read_runs(runs_file)))

                    await wait_until(all_ran, 60, what="every kick accepted after the restart ran")
                    async with SQSClient(endpoint_url=second_url) as admin:

                        async def drained() -> bool:
                            return await queue_depth(admin, url) == (0, 0, 0)

                        await wait_until(drained, 30, what="queue drained")
                    assert all(w.alive() for w in workers), "a worker died during the outage"
                finally:
                    await broker.shutdown()
                    for worker in workers:
                        worker.stop()
                record.faults = {"restart": 1, **proxy.faults_by_kind()}
        finally:
            first.close()

    counts = run_counts(read_runs(runs_file))
    before = {task_id for task_id, at in accepted if at <= stopped_at}
    wiped = before - set(counts)
    record.sent = n
    record.run = len(counts)
    record.duplicates = sum(counts.values()) - len(counts)
    record.lost = len(after - set(counts))
    record.errors_reported = len(raised)
    record.seconds = time.monotonic() - started
    record.notes = (
        f"kicks: {len(accepted)} accepted, {len(raised)} raised (all during the {back_at - stopped_at:.1f} s "
        f"outage: {all(stopped_at <= t <= back_at + 1 for t in raised)}); {len(wiped)} accepted before the "
        "restart were still queued and went with the emulator's memory"
    )
    write_record(record)
    assert record.lost == 0
    assert raised, "kicks during the outage must raise"
    assert all(stopped_at <= t <= back_at + 2 for t in raised), "a kick failed outside the outage"
    assert len(accepted) + len(raised) == n
