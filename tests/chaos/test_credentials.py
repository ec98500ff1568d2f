"""Temporary credentials that expire during the run: refreshed in time, no request ever fails."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from taskiq_sqs_http import S3Backend, SQSBroker
from taskiq_sqs_http.aws import S3Client, SQSClient
from taskiq_sqs_http.aws._providers import ContainerCredentialProvider
from taskiq_sqs_http.aws._refresh import RefreshSettings

from .credentials_endpoint import credentials_endpoint
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

LIFETIME = 120.0  # seconds: what the endpoint hands out
# Refresh windows scaled to the 2-minute lifetime: advisory 15 min -> 90 s, mandatory 10 min -> 60 s.
SCALE = 0.1
DURATION = float(os.environ.get("CHAOS_CREDENTIALS_SECONDS", "150"))  # longer than one lifetime
KICK_INTERVAL = 0.25


@pytest.mark.chaos
async def test_expiring_container_credentials_never_fail_a_request(
    emulator: str, fake_keys: None, tmp_path: Path
) -> None:
    started = time.monotonic()
    record = Record("credentials expire every 2 min (container endpoint)")
    queue, bucket = unique("creds"), unique("creds-results")
    runs_file = tmp_path / "runs.log"
    async with SQSClient(endpoint_url=emulator) as admin, S3Client(endpoint_url=emulator) as admin_s3:
        url = await admin.create_queue(queue)
        await admin_s3.create_bucket(bucket)
        with credentials_endpoint(LIFETIME) as endpoint, running_proxy(emulator) as proxy:
            proxy.set_plan(FaultPlan(credentials_valid=endpoint.valid))
            env = {
                "AWS_ENDPOINT_URL": proxy.url,
                "AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint.url,
                "CHAOS_QUEUE": queue,
                "CHAOS_BUCKET": bucket,
                "CHAOS_RUNS": str(runs_file),
                "CHAOS_REFRESH_SCALE": str(SCALE),
            }
            workers = [Worker(f"creds-w{i}", env, tmp_path, static_keys=False) for i in range(2)]
            provider = ContainerCredentialProvider(
                environ={"AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint.url},
                refresh=RefreshSettings().scaled(SCALE),
            )
            # credentials= wins over the fake keys in this process's environment (the workers have none).
            broker = SQSBroker(queue, endpoint_url=proxy.url, credentials=provider)
            kicked: list[str] = []
            try:
                for worker in workers:
                    worker.wait_ready()
                await broker.startup()
                deadline = time.monotonic() + DURATION
                n = 0
                while time.monotonic() < deadline and n < 10_000:
                    kicked.append((await kicker(broker, "chaos.record").kiq(n)).task_id)  # must never raise
                    n += 1
                    await asyncio.sleep(KICK_INTERVAL)

                async def all_ran() -> bool:
                    return set(kicked) <= set(run_counts(read_runs(runs_file)))

                await wait_until(all_ran, 60, what="every task ran")

                async def drained() -> bool:
                    return await queue_depth(admin, url) == (0, 0, 0)

                await wait_until(drained, 30, what="queue drained")
            finally:
                await broker.shutdown()
                await provider.aclose()
                for worker in workers:
                    worker.stop()
            fetches = endpoint.fetches
            refused = proxy.faults_by_kind()
            statuses = dict(proxy.statuses)
            logs = [w.log() for w in workers]

    counts = run_counts(read_runs(runs_file))
    record.sent = len(kicked)
    record.run = len(counts)
    record.duplicates = sum(counts.values()) - len(counts)
    record.lost = len(set(kicked) - set(counts))
    record.faults = {"credential refresh": fetches, **refused}
    record.seconds = time.monotonic() - started
    record.notes = f"{fetches} credentials handed out, each valid {LIFETIME:.0f} s; refused requests: 0"
    write_record(record)
    assert refused == {}, f"requests signed with expired credentials: {refused}"
    assert all(status < 400 for status in statuses), statuses
    assert record.lost == 0
    # 3 processes, each at least its first fetch and one refresh per ~30 s of the run.
    assert fetches >= 3 * (1 + int(DURATION // 40)), fetches
    for log in logs:
        assert "Traceback" not in log
    backend = S3Backend(bucket, endpoint_url=emulator)
    await backend.startup()
    try:
        ready = await asyncio.gather(*(backend.is_result_ready(i) for i in kicked[:200]))
        assert all(ready)
    finally:
        await backend.shutdown()
