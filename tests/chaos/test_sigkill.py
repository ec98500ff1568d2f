"""A worker SIGKILLed in the middle of a long task: the message comes back and runs on the other worker."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from taskiq_sqs_http import SQSBroker
from taskiq_sqs_http.aws import S3Client, SQSClient

from .support import Record, Run, Worker, kicker, queue_depth, read_runs, unique, wait_until, write_record

LONG_TASK = 8.0


def _owner(workers: list[Worker], pid: int) -> Worker:
    """The ``taskiq worker`` (a process group) whose child process has ``pid``."""
    group = os.getpgid(pid)
    (owner,) = [w for w in workers if w.pid == group]
    return owner


def _events(runs_file: Path, task_id: str, event: str) -> list[Run]:
    return [r for r in read_runs(runs_file) if r.task_id == task_id and r.event == event]


async def _wait_event(runs_file: Path, task_id: str, event: str, count: int, timeout: float) -> list[Run]:
    async def enough() -> bool:
        return len(_events(runs_file, task_id, event)) >= count

    await wait_until(enough, timeout, interval=0.1, what=f"{count} '{event}' of {task_id}")
    return _events(runs_file, task_id, event)


async def _scenario(
    emulator: str, tmp_path: Path, name: str, *, visibility: int, heartbeat: float | None
) -> Record:
    started = time.monotonic()
    record = Record(name)
    queue, bucket = unique("kill"), unique("kill-results")
    runs_file = tmp_path / f"{queue}.log"
    env = {
        "AWS_ENDPOINT_URL": emulator,
        "CHAOS_QUEUE": queue,
        "CHAOS_BUCKET": bucket,
        "CHAOS_RUNS": str(runs_file),
        "CHAOS_VISIBILITY": str(visibility),
        "CHAOS_PREFETCH": "1",
    }
    if heartbeat is not None:
        env["CHAOS_HEARTBEAT_INTERVAL"] = str(heartbeat)
    async with SQSClient(endpoint_url=emulator) as admin, S3Client(endpoint_url=emulator) as admin_s3:
        url = await admin.create_queue(queue)
        await admin_s3.create_bucket(bucket)
        broker = SQSBroker(queue, endpoint_url=emulator)
        await broker.startup()
        workers = [Worker(f"{queue}-w{i}", env, tmp_path) for i in range(2)]
        try:
            for worker in workers:
                worker.wait_ready()
            if heartbeat is not None:
                # Heartbeat on and both workers alive: a task longer than twice the visibility timeout
                # runs exactly once.
                task = await kicker(broker, "chaos.long").kiq(LONG_TASK)
                await _wait_event(runs_file, task.task_id, "done", 1, LONG_TASK + 20)
                await asyncio.sleep(visibility + 1)  # a duplicate would have started by now
                assert len(_events(runs_file, task.task_id, "start")) == 1
                record.sent += 1
            task = await kicker(broker, "chaos.long").kiq(LONG_TASK)
            record.sent += 1
            (first,) = await _wait_event(runs_file, task.task_id, "start", 1, 20)
            victim = _owner(workers, first.pid)
            await asyncio.sleep(1.0)
            victim.kill()
            killed_at = time.time()
            starts = await _wait_event(runs_file, task.task_id, "start", 2, visibility + 30)
            second = starts[1]
            survivor = _owner([w for w in workers if w is not victim], second.pid)
            assert survivor is not victim
            # It came back only after its visibility timeout (measured from the first receive).
            assert second.at - first.at >= visibility - 1.0, (second.at - first.at, visibility)
            (done,) = await _wait_event(runs_file, task.task_id, "done", 1, LONG_TASK + 20)
            assert done.pid == second.pid
            assert survivor.alive()

            async def drained() -> bool:
                return await queue_depth(admin, url) == (0, 0, 0)

            await wait_until(drained, 30, what="queue drained")
            back = second.at - killed_at
            record.notes = f"redelivered {back:.1f} s after SIGKILL (visibility {visibility} s)"
        finally:
            await broker.shutdown()
            for worker in workers:
                worker.stop()
    all_starts = [r for r in read_runs(runs_file) if r.event == "start"]
    record.run = len({r.task_id for r in all_starts})
    record.duplicates = len(all_starts) - record.run
    record.lost = record.sent - len({r.task_id for r in read_runs(runs_file) if r.event == "done"})
    record.faults = {"sigkill": 1}
    record.seconds = time.monotonic() - started
    return record


@pytest.mark.chaos
async def test_sigkill_mid_task_redelivers_to_the_other_worker(
    emulator: str, fake_keys: None, tmp_path: Path
) -> None:
    name = "SIGKILL mid-task, no heartbeat"
    # Without a heartbeat the visibility timeout must outlast the task (else SQS redelivers it anyway).
    record = await _scenario(emulator, tmp_path, name, visibility=12, heartbeat=None)
    write_record(record)
    # The killed run counts as the one duplicate: the task started twice and finished once.
    assert (record.run, record.duplicates, record.lost) == (1, 1, 0)


@pytest.mark.chaos
async def test_heartbeat_prevents_duplicates_and_sigkill_still_redelivers(
    emulator: str, fake_keys: None, tmp_path: Path
) -> None:
    name = "SIGKILL mid-task, heartbeat on"
    record = await _scenario(emulator, tmp_path, name, visibility=3, heartbeat=1.0)
    write_record(record)
    # Two tasks: the first ran once with no duplicate; the second was killed and ran again elsewhere.
    assert (record.run, record.duplicates, record.lost) == (2, 1, 0)
