"""Secrets: a whole scenario at DEBUG, with faults and expiring credentials; no secret appears anywhere."""

from __future__ import annotations

import logging
import time
import traceback
from pathlib import Path

import pytest

from taskiq_sqs_http import S3Backend, SQSBroker
from taskiq_sqs_http.aws import S3Client, SQSClient
from taskiq_sqs_http.aws._providers import ContainerCredentialProvider
from taskiq_sqs_http.aws._refresh import RefreshSettings

from .credentials_endpoint import credentials_endpoint
from .proxy import FaultPlan, running_proxy
from .support import Record, Worker, kicker, read_runs, short_read_timeout, unique, wait_until, write_record

TASKS = 30


async def test_no_secret_in_logs_reprs_or_errors(
    emulator: str,
    fake_keys: None,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = time.monotonic()
    short_read_timeout(monkeypatch, 1.0)
    caplog.set_level(logging.DEBUG)
    queue, bucket = unique("secrets"), unique("secrets-results")
    runs_file = tmp_path / "runs.log"
    texts: list[str] = []
    async with SQSClient(endpoint_url=emulator) as admin, S3Client(endpoint_url=emulator) as admin_s3:
        await admin.create_queue(queue)
        await admin_s3.create_bucket(bucket)
        # Short-lived credentials: every process fetches several, and the proxy refuses one as expired.
        with credentials_endpoint(lifetime=3600) as endpoint, running_proxy(emulator) as proxy:
            env = {
                "AWS_ENDPOINT_URL": proxy.url,
                "AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint.url,
                "CHAOS_QUEUE": queue,
                "CHAOS_BUCKET": bucket,
                "CHAOS_RUNS": str(runs_file),
                "CHAOS_READ_TIMEOUT": "1.0",
            }
            worker = Worker("secrets", env, tmp_path, static_keys=False, log_level="DEBUG")
            provider = ContainerCredentialProvider(
                environ={"AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint.url}, refresh=RefreshSettings()
            )
            backend = S3Backend(bucket, endpoint_url=proxy.url, credentials=provider)
            broker = SQSBroker(queue, endpoint_url=proxy.url, credentials=provider, enable_batching=True)
            broker = broker.with_result_backend(backend)
            try:
                worker.wait_ready()
                await broker.startup()
                script = {"SendMessageBatch": ("500", "drop_after"), "S3.GetObject": ("503", "delay")}
                proxy.set_plan(FaultPlan(rate=0.1, seed=3, delay_seconds=1.5, scripted=script))
                tasks = [await kicker(broker, "chaos.record").kiq(n) for n in range(TASKS)]
                await broker.flush()

                async def ran() -> bool:
                    return {t.task_id for t in tasks} <= {r.task_id for r in read_runs(runs_file)}

                await wait_until(ran, 60, what="every task ran")
                for task in tasks[:5]:
                    texts.append(repr(await task.wait_result(timeout=30)))
                # An error carrying a refused request: the client's ExpiredToken path.
                proxy.set_plan(FaultPlan(credentials_valid=lambda key: False))
                try:
                    await kicker(broker, "chaos.record", skip_batching=True).kiq(-1)
                except Exception as exc:  # expected: every key is refused now
                    texts.append("".join(traceback.format_exception(exc)))
                else:
                    raise AssertionError("a refused request must raise")
                credentials = await provider.get_credentials()
                texts += [repr(credentials), str(credentials), repr(provider), repr(broker), repr(backend)]
                texts += [repr(broker.queues), repr(endpoint.url)]
            finally:
                proxy.set_plan(FaultPlan())
                await broker.shutdown()
                await provider.aclose()
                worker.stop()
            faults = proxy.faults_by_kind()
            secrets = list(endpoint.secrets)
    texts += [r.getMessage() for r in caplog.records]
    texts += [r.exc_text or "" for r in caplog.records]
    texts.append(caplog.text)
    worker_log = worker.log()
    texts.append(worker_log)
    assert "DEBUG" in worker_log and "DEBUG" in caplog.text
    assert len(secrets) >= 4
    leaks = [(secret[:14] + "...", n) for n, text in enumerate(texts) for secret in secrets if secret in text]
    assert leaks == []
    record = Record("secrets: DEBUG logs, reprs, errors", sent=TASKS, run=TASKS)
    record.add_faults(faults)
    record.seconds = time.monotonic() - started
    checked = sum(len(t) for t in texts)
    record.notes = f"{len(secrets)} secrets/tokens checked in {checked} characters: 0 found"
    write_record(record)
