"""Rolling restart: workers are stopped (SIGTERM) and started again while tasks flow.

Stopping a listener used to cancel its long-poll ReceiveMessage; messages the server handed to that abandoned
request stayed invisible for the whole visibility timeout, so a task kicked just after a worker stopped ran
30 s later although another worker was idle. Now the receive finishes during shutdown and what it returns
is handed back at once: no task may wait longer than the wait time plus a small margin because of a restart.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import time
from pathlib import Path

import pytest

from taskiq_sqs_http import SQSBroker
from taskiq_sqs_http.aws import SQSClient

from .proxy import running_proxy
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

WAIT_TIME_SECONDS = 1  # chaos_tasks.py's broker
MARGIN_SECONDS = 4.0
VISIBILITY_TIMEOUT = 30
KICK_INTERVAL = 0.1


def _terminate(worker: Worker, timeout: float = 30.0) -> None:
    """SIGTERM, as an orchestrator does on a deploy; SIGKILL only if it does not stop in time."""
    if not worker.alive():
        return
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        worker.kill()


async def _rolling_restart(
    scenario: str, emulator: str, tmp_path: Path, seconds: float, restart_every: float
) -> None:
    started = time.monotonic()
    record = Record(scenario)
    queue = unique("rolling")
    runs_file = tmp_path / "runs.log"
    async with SQSClient(endpoint_url=emulator) as admin:
        url = await admin.create_queue(queue, attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT)})
    # Workers reach SQS through the proxy, which (like SQS) lets a ReceiveMessage run to its end even when
    # the client went away: what the server hands to an abandoned receive is hidden, not lost.
    proxy_context = running_proxy(emulator)
    proxy = proxy_context.__enter__()
    env = {
        "AWS_ENDPOINT_URL": proxy.url,
        "CHAOS_QUEUE": queue,
        "CHAOS_BUCKET": "unused",
        "CHAOS_RUNS": str(runs_file),
    }
    workers = [Worker(f"rolling-w{i}", env, tmp_path) for i in range(2)]
    broker = SQSBroker(queue, endpoint_url=emulator)
    kicked: dict[str, float] = {}
    restarts = 0
    try:
        for worker in workers:
            worker.wait_ready(60)
        await broker.startup()

        async def kick() -> None:
            n = 0
            until = time.monotonic() + seconds
            while time.monotonic() < until:
                n += 1
                task = await kicker(broker, "chaos.record").kiq(n)
                kicked[task.task_id] = time.time()
                await asyncio.sleep(KICK_INTERVAL)

        kicking = asyncio.ensure_future(kick())
        turn = 0
        while not kicking.done():
            await asyncio.sleep(restart_every)
            if kicking.done():
                break
            index = turn % len(workers)
            turn += 1
            # The other worker keeps serving while this one restarts, as in a rolling deploy.
            await asyncio.to_thread(_terminate, workers[index])
            workers[index] = Worker(f"rolling-w{index}-{turn}", env, tmp_path)
            await asyncio.to_thread(workers[index].wait_ready, 60)
            restarts += 1
        await kicking

        async def all_ran() -> bool:
            return set(kicked) <= set(run_counts(read_runs(runs_file)))

        await wait_until(all_ran, VISIBILITY_TIMEOUT + 30, what="every kicked task ran")
        async with SQSClient(endpoint_url=emulator) as admin:

            async def drained() -> bool:
                return await queue_depth(admin, url) == (0, 0, 0)

            await wait_until(drained, 30, what="queue drained")
    finally:
        await broker.shutdown()
        for worker in workers:
            _terminate(worker)
        proxy_context.__exit__(None, None, None)

    runs = read_runs(runs_file)
    first_run: dict[str, float] = {}
    for run in runs:
        first_run.setdefault(run.task_id, run.at)
    waits = sorted(first_run[t] - kicked[t] for t in kicked if t in first_run)
    counts = run_counts(runs)
    record.sent = len(kicked)
    record.run = len(set(counts) & set(kicked))
    record.duplicates = sum(counts.values()) - len(counts)
    record.lost = len(set(kicked) - set(counts))
    record.faults = {"SIGTERM restart": restarts}
    record.seconds = time.monotonic() - started
    record.notes = (
        f"{restarts} restarts; wait from kick to run: median {statistics.median(waits):.2f} s, "
        f"max {waits[-1]:.2f} s (bound {WAIT_TIME_SECONDS + MARGIN_SECONDS:.0f} s; a hidden message "
        f"would wait the {VISIBILITY_TIMEOUT} s visibility timeout)"
    )
    write_record(record)
    assert record.lost == 0
    assert restarts >= 2
    assert waits[-1] <= WAIT_TIME_SECONDS + MARGIN_SECONDS, record.notes


@pytest.mark.chaos
async def test_rolling_restart_hides_no_message(fake_keys: None, emulator: str, tmp_path: Path) -> None:
    await _rolling_restart("rolling restart", emulator, tmp_path, seconds=60, restart_every=4)


async def test_rolling_restart_fast(fake_keys: None, emulator: str, tmp_path: Path) -> None:
    """The same, short enough for ``make test``."""
    await _rolling_restart(
        "rolling restart (short, in make test)", emulator, tmp_path, seconds=12, restart_every=3
    )
