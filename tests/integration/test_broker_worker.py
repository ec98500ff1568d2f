"""A real ``taskiq worker`` subprocess consumes our queue and stores results in S3."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from taskiq.kicker import AsyncKicker

from taskiq_sqs_http import S3Backend, SQSBroker
from taskiq_sqs_http.aws import SQSClient

from .broker_helpers import eventually

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker(
    queue: tuple[str, str], bucket: str, endpoint_url: str, fake_keys: None, tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "TASKS_QUEUE": queue[0], "TASKS_BUCKET": bucket}
    env["TEST_AWS_ENDPOINT_URL"] = endpoint_url
    log = (tmp_path / "worker.log").open("wb")
    taskiq = Path(sys.executable).with_name("taskiq")
    proc = subprocess.Popen(
        [str(taskiq), "worker", "tests.integration.tasks_app:broker", "--workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        log.close()
        print((tmp_path / "worker.log").read_text(errors="replace")[-4000:])


@pytest.fixture
async def client(
    queue: tuple[str, str], bucket: str, endpoint_url: str, fake_keys: None
) -> AsyncIterator[SQSBroker]:
    broker = SQSBroker(queue[0], endpoint_url=endpoint_url).with_result_backend(
        S3Backend(bucket, endpoint_url=endpoint_url)
    )
    await broker.startup()
    yield broker
    await broker.shutdown()


def _kicker(broker: SQSBroker, name: str, **labels: object) -> AsyncKicker[..., object]:
    """Kick by name: the test process does not import the worker's app (labels are the caller's)."""
    return AsyncKicker(task_name=name, broker=broker, labels=labels)


async def test_worker_runs_tasks_end_to_end_with_every_ack_type(
    worker: subprocess.Popen[bytes], client: SQSBroker, queue: tuple[str, str], sqs: SQSClient
) -> None:
    started = time.monotonic()
    add = await _kicker(client, "add").kiq(2, 3)
    assert (await add.wait_result(timeout=30)).return_value == 5

    acks = {}
    for kind in ["when_received", "when_executed", "when_saved", "manual"]:
        acks[kind] = await _kicker(client, f"ack_{kind}").kiq()
    for kind, task in acks.items():
        assert (await task.wait_result(timeout=15)).return_value == kind

    meta = await (await _kicker(client, "metadata").kiq()).wait_result(timeout=15)
    labels = meta.return_value
    assert isinstance(labels, dict)
    assert labels["sqs_queue_url"] == queue[1]
    assert labels["sqs_approximate_receive_count"] == "1"
    assert labels["sqs_receipt_handle"]
    assert labels["sqs_message_id"]

    flaky = await _kicker(client, "flaky", retry_on_error=True, max_retries=3).kiq()
    assert (await flaky.wait_result(timeout=15)).return_value == 1

    async def drained() -> bool:
        attributes = await sqs.get_queue_attributes(queue[1])
        return (
            attributes["ApproximateNumberOfMessages"]
            == "0"
            == attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    await eventually(drained, timeout=10)
    assert worker.poll() is None
    assert time.monotonic() - started < 60
    await asyncio.sleep(0)
