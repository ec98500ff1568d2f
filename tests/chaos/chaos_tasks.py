"""The taskiq app that the chaos suite's ``taskiq worker`` subprocesses run.

Configured from the environment by the test: AWS_ENDPOINT_URL (the fault proxy), CHAOS_QUEUE, CHAOS_BUCKET,
CHAOS_RUNS (an append-only file: one line per run, so duplicates can be counted across processes), and
optionally CHAOS_VISIBILITY, CHAOS_PREFETCH, CHAOS_HEARTBEAT_INTERVAL (turns the heartbeat on),
CHAOS_EXTENDED_BUCKET, CHAOS_EXTENDED_THRESHOLD (offload above this many bytes),
CHAOS_READ_TIMEOUT (the HTTP read timeout, see support.short_read_timeout),
CHAOS_REFRESH_SCALE (the default credential chain with refresh windows scaled by this factor),
CHAOS_MAX_ATTEMPTS (requests' retry budget).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from typing import Annotated, Any

from taskiq import Context, TaskiqDepends, TaskiqEvents, TaskiqState

from taskiq_sqs_http import S3Backend, SQSBroker
from taskiq_sqs_http.aws import RetryPolicy
from taskiq_sqs_http.aws import _http as http_module
from taskiq_sqs_http.aws._providers import default_credential_provider
from taskiq_sqs_http.aws._refresh import RefreshSettings

if os.environ.get("CHAOS_READ_TIMEOUT"):
    # See tests/chaos/support.py:short_read_timeout; this process is a test fixture, not library code.
    http_module.Timeouts = functools.partial(  # type: ignore[misc]
        http_module.Timeouts, read=float(os.environ["CHAOS_READ_TIMEOUT"])
    )

_RUNS = os.environ.get("CHAOS_RUNS", "/dev/null")
_options: dict[str, Any] = {}
if os.environ.get("CHAOS_VISIBILITY"):
    _options["visibility_timeout"] = int(os.environ["CHAOS_VISIBILITY"])
if os.environ.get("CHAOS_HEARTBEAT_INTERVAL"):
    _options["enable_heartbeat"] = True
    _options["heartbeat_interval"] = float(os.environ["CHAOS_HEARTBEAT_INTERVAL"])
if os.environ.get("CHAOS_EXTENDED_BUCKET"):
    _options["s3_extended_bucket_name"] = os.environ["CHAOS_EXTENDED_BUCKET"]
if os.environ.get("CHAOS_EXTENDED_THRESHOLD"):
    _options["extended_payload_threshold"] = int(os.environ["CHAOS_EXTENDED_THRESHOLD"])
_backend_options: dict[str, Any] = {}
if os.environ.get("CHAOS_MAX_ATTEMPTS"):
    _options["retry_policy"] = RetryPolicy(max_attempts=int(os.environ["CHAOS_MAX_ATTEMPTS"]))
    _backend_options["retry_policy"] = _options["retry_policy"]
if os.environ.get("CHAOS_REFRESH_SCALE"):
    _refresh = RefreshSettings().scaled(float(os.environ["CHAOS_REFRESH_SCALE"]))
    _provider = default_credential_provider(refresh=_refresh)
    _options["credentials"] = _provider
    _backend_options["credentials"] = _provider

broker = SQSBroker(
    os.environ.get("CHAOS_QUEUE", "chaos"),
    wait_time_seconds=1,
    max_number_of_messages=int(os.environ.get("CHAOS_PREFETCH", "10")),
    **_options,
).with_result_backend(S3Backend(os.environ.get("CHAOS_BUCKET", "chaos"), **_backend_options))

Ctx = Annotated[Context, TaskiqDepends()]


def _log_run(task_id: str, event: str) -> None:
    # One short O_APPEND write per line: lines of concurrent processes never interleave.
    line = f"{task_id} {os.getpid()} {event} {time.time():.3f}\n".encode()
    fd = os.open(_RUNS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def _ready(state: TaskiqState) -> None:
    logging.getLogger("chaos").warning("chaos worker ready (pid %d)", os.getpid())
    print(f"chaos worker ready (pid {os.getpid()})", flush=True)


@broker.task(task_name="chaos.record")
async def record(n: int, context: Ctx) -> int:
    _log_run(context.message.task_id, "run")
    return n


@broker.task(task_name="chaos.long")
async def long(seconds: float, context: Ctx) -> float:
    _log_run(context.message.task_id, "start")
    await asyncio.sleep(seconds)
    _log_run(context.message.task_id, "done")
    return seconds


@broker.task(task_name="chaos.size")
async def size(blob: str, context: Ctx) -> int:
    _log_run(context.message.task_id, "run")
    return len(blob)
