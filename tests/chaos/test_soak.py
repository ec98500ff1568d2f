"""Soak: 2,000 batched tasks under 10% faults on every operation, two ``taskiq worker`` subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

import pytest

from taskiq_sqs_http import S3Backend, SendFailedError, SQSBroker
from taskiq_sqs_http.aws import RetryPolicy, S3Client, SQSClient
from taskiq_sqs_http.batching import SendFailure

from .proxy import FaultPlan, running_proxy
from .support import (
    Record,
    Worker,
    kicker,
    queue_depth,
    read_runs,
    run_counts,
    short_read_timeout,
    unique,
    wait_until,
    write_record,
)

TASKS = int(os.environ.get("CHAOS_SOAK_TASKS", "2000"))
FAULT_RATE = 0.10
SEED = int(os.environ.get("CHAOS_SEED", "20260601"))
VISIBILITY = 8  # seconds: a message whose ack was lost comes back quickly
READ_TIMEOUT = 2.0  # client read timeout; the "delay" fault answers after 3 s
# With 10% faults the SDK-standard 3 attempts fail one request in a thousand; a failed result write is
# then lost, because taskiq acks a task whose result could not be saved. 5 attempts: one in 100,000.
MAX_ATTEMPTS = 5
RUN_TIMEOUT = 300.0
DRAIN_TIMEOUT = 90.0


@pytest.mark.chaos
async def test_soak_every_task_runs_under_faults(
    emulator: str, fake_keys: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = time.monotonic()
    short_read_timeout(monkeypatch, READ_TIMEOUT)
    queue, bucket = unique("soak"), unique("soak-results")
    runs_file = tmp_path / "runs.log"
    record = Record(f"soak: {TASKS} batched tasks, 10% faults, 2 workers", sent=TASKS)
    async with SQSClient(endpoint_url=emulator) as admin, S3Client(endpoint_url=emulator) as admin_s3:
        url = await admin.create_queue(queue, attributes={"VisibilityTimeout": str(VISIBILITY)})
        await admin_s3.create_bucket(bucket)
        with running_proxy(emulator) as proxy:
            env = {
                "AWS_ENDPOINT_URL": proxy.url,
                "CHAOS_QUEUE": queue,
                "CHAOS_BUCKET": bucket,
                "CHAOS_RUNS": str(runs_file),
                "CHAOS_READ_TIMEOUT": str(READ_TIMEOUT),
                "CHAOS_PREFETCH": "10",
                "CHAOS_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
            }
            workers = [Worker(f"soak-w{i}", env, tmp_path) for i in range(2)]
            try:
                for worker in workers:
                    worker.wait_ready()
                # Faults on every operation from here on. (No clock skew here: concurrent requests that
                # meet a skewed clock first fail, see test_clock_skew.py.)
                proxy.set_plan(FaultPlan(rate=FAULT_RATE, seed=SEED, delay_seconds=3.0))
                failures: list[SendFailure] = []
                broker = SQSBroker(
                    queue,
                    endpoint_url=proxy.url,
                    enable_batching=True,
                    batch_size=10,
                    batch_timeout=0.2,
                    on_send_error=failures.append,
                    retry_policy=RetryPolicy(max_attempts=MAX_ATTEMPTS),
                )
                await broker.startup()
                kicked: list[str] = []
                raised = 0
                try:
                    for n in range(TASKS):
                        try:
                            kicked.append((await kicker(broker, "chaos.record").kiq(n)).task_id)
                        except Exception:
                            raised += 1
                    with contextlib.suppress(SendFailedError):  # the ids are in `failures` too
                        await broker.flush()
                finally:
                    await broker.shutdown()
                reported = {f.entry.id for f in failures}
                expected = set(kicked) - reported
                record.errors_reported = raised + len(reported)

                async def all_ran() -> bool:
                    return expected <= set(run_counts(read_runs(runs_file)))

                await wait_until(all_ran, RUN_TIMEOUT, what="every accepted task ran")

                async def drained() -> bool:
                    return await queue_depth(admin, url) == (0, 0, 0)

                await wait_until(drained, DRAIN_TIMEOUT, interval=1.0, what="queue drained (nothing stuck)")
                assert all(w.alive() for w in workers), "a worker died"
            finally:
                proxy.set_plan(FaultPlan())
                for worker in workers:
                    worker.stop()
            record.add_faults(proxy.faults_by_kind())
            faulted_ops = proxy.faults_by_operation()
            requests = dict(proxy.requests)

    counts = run_counts(read_runs(runs_file))
    record.run = len(counts)
    record.duplicates = sum(counts.values()) - len(counts)
    record.lost = len(expected - set(counts))
    record.seconds = time.monotonic() - started
    record.notes = f"requests {sum(requests.values())}, kicks refused {record.errors_reported}"
    write_record(record)

    assert record.lost == 0
    assert len(kicked) + raised == TASKS
    # Every result is readable from S3 (read directly from the emulator, without faults).
    backend = S3Backend(bucket, endpoint_url=emulator)
    await backend.startup()
    try:
        ids = sorted(expected)
        for start in range(0, len(ids), 50):
            chunk = ids[start : start + 50]
            ready = await asyncio.gather(*(backend.is_result_ready(i) for i in chunk))
            assert all(ready), [i for i, r in zip(chunk, ready, strict=True) if not r]
        sample = await backend.get_result(ids[0])
        assert not sample.is_err
    finally:
        await backend.shutdown()
    # Faults really hit every kind of traffic.
    for op in ("SendMessageBatch", "ReceiveMessage", "DeleteMessageBatch", "S3.PutObject"):
        assert faulted_ops[op] > 0, (op, faulted_ops)
    for kind in ("500", "503", "throttle", "drop_before", "drop_after", "delay", "fail_entries"):
        assert record.faults.get(kind, 0) > 0, (kind, record.faults)
