"""S3 brownout: S3 answers 503 to a share of requests for a while, and every offloaded task still runs.

A transient failure fetching a payload used to be logged as *malformed*: the message counted towards
``maxReceiveCount`` and a valid task went to the dead-letter queue. Now a worker retries the fetch with
backoff while keeping the message hidden, then hands it back; only permanent causes are poison.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from taskiq_sqs_http import SQSBroker
from taskiq_sqs_http.aws import S3Client, SQSClient

from .proxy import FaultPlan, running_proxy
from .support import (
    Record,
    Worker,
    kicker,
    queue_depth,
    read_runs,
    run_counts,
    unique,
    wait_until,
    write_record,
)

S3_OPERATIONS = frozenset({"S3.GetObject", "S3.PutObject", "S3.DeleteObject", "S3.HeadObject"})
MAX_RECEIVE_COUNT = 2  # tight on purpose: one wrongly poisoned receive too many and the task is gone


async def _brownout(
    scenario: str, emulator: str, tmp_path: Path, tasks: int, share: float, seconds: float
) -> None:
    started = time.monotonic()
    record = Record(scenario)
    queue, bucket, payloads = unique("brownout"), unique("brownout-results"), unique("brownout-payloads")
    runs_file = tmp_path / "runs.log"
    async with SQSClient(endpoint_url=emulator) as sqs, S3Client(endpoint_url=emulator) as s3:
        await s3.create_bucket(bucket)
        await s3.create_bucket(payloads)
        dlq_url = await sqs.create_queue(queue + "-dlq")
        dlq_arn = (await sqs.get_queue_attributes(dlq_url, ["QueueArn"]))["QueueArn"]
        url = await sqs.create_queue(
            queue,
            attributes={
                "VisibilityTimeout": "20",
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
                ),
            },
        )
    with running_proxy(emulator) as proxy:
        env = {
            "AWS_ENDPOINT_URL": proxy.url,
            "CHAOS_QUEUE": queue,
            "CHAOS_BUCKET": bucket,
            "CHAOS_RUNS": str(runs_file),
            "CHAOS_EXTENDED_BUCKET": payloads,
            "CHAOS_EXTENDED_THRESHOLD": "1024",  # every task of this scenario goes through S3
        }
        # The producer talks to S3 directly, not through the proxy: the scenario is about the workers.
        producer = SQSBroker(
            queue, endpoint_url=emulator, s3_extended_bucket_name=payloads, extended_payload_threshold=1024
        )
        await producer.startup()
        kicked: list[str] = []
        try:
            proxy.set_plan(FaultPlan(rate=share, kinds=("503",), operations=S3_OPERATIONS, seed=7))
            for n in range(tasks):
                task = await kicker(producer, "chaos.size").kiq("x" * 4096 + str(n))
                kicked.append(task.task_id)
            workers = [Worker(f"brownout-w{i}", env, tmp_path) for i in range(2)]
            try:
                for worker in workers:
                    worker.wait_ready(60)
                await asyncio.sleep(seconds)
                proxy.set_plan(FaultPlan())  # S3 recovers

                async def all_ran() -> bool:
                    return set(kicked) <= set(run_counts(read_runs(runs_file)))

                await wait_until(all_ran, 120, what="every offloaded task ran")
                assert all(w.alive() for w in workers), "a worker died during the brownout"
                logs = "".join(w.log() for w in workers)
            finally:
                for worker in workers:
                    worker.stop()
        finally:
            await producer.shutdown()
        record.faults = dict(proxy.faults_by_kind())
    async with SQSClient(endpoint_url=emulator) as sqs:
        dead = await queue_depth(sqs, dlq_url)
        left = await queue_depth(sqs, url)
    counts = run_counts(read_runs(runs_file))
    record.sent = len(kicked)
    record.run = len(set(counts) & set(kicked))
    record.duplicates = sum(counts.values()) - len(counts)
    record.lost = len(set(kicked) - set(counts))
    record.seconds = time.monotonic() - started
    unavailable = logs.count("is unavailable")
    record.notes = (
        f"{share:.0%} of S3 requests answered 503 for {seconds:.0f} s; dead-letter queue afterwards: {dead}; "
        f"'payload unavailable' log lines: {unavailable}; lines calling a message malformed: "
        f"{logs.count('malformed')}"
    )
    write_record(record)
    assert record.lost == 0
    assert dead == (0, 0, 0), f"a valid task reached the dead-letter queue: {dead}"
    assert left[0] == 0
    assert "malformed" not in logs


@pytest.mark.chaos
async def test_s3_brownout_sends_no_valid_task_to_the_dlq(
    fake_keys: None, emulator: str, tmp_path: Path
) -> None:
    await _brownout("S3 brownout", emulator, tmp_path, tasks=60, share=0.6, seconds=20)


async def test_s3_brownout_fast(fake_keys: None, emulator: str, tmp_path: Path) -> None:
    """The same, short enough for ``make test``."""
    await _brownout("S3 brownout (short, in make test)", emulator, tmp_path, tasks=15, share=0.6, seconds=8)
