"""`make demo`: the main job end to end on a local MiniStack.

Starts MiniStack (or uses --endpoint), creates the queues and the result bucket, starts a real
``taskiq worker demo_tasks:broker`` and sends it a mix of tasks: plain, batched, delayed, FIFO in two
message groups, one too big for SQS (offloaded to S3) and one that always fails (it ends up in the
dead-letter queue). Shows progress while the results arrive, then a summary. Everything it started is
stopped by PID, also on Ctrl-C and on errors.

Usage: python scripts/demo.py (--ministack PATH | --endpoint URL) [--prefix NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from taskiq import AsyncTaskiqTask, TaskiqResult
from with_ministack import ministack, stop

from taskiq_sqs_http.aws import HTTPSession, S3Client, SQSClient

SCRIPTS = Path(__file__).resolve().parent
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}
# Per-service endpoints and session tokens would win over the emulator's endpoint and fake keys.
HIDDEN_AWS = ("AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_PROFILE")

WORKER = ["-m", "taskiq", "worker", "demo_tasks:broker", "--app-dir", str(SCRIPTS), "--workers", "1"]
WORKER_READY_TIMEOUT = 30.0
RESULTS_TIMEOUT = 30.0
DLQ_TIMEOUT = 20.0
POLL_INTERVAL = 0.2
BLOB_CHARS = 1_200_000  # over SQS's 1 MiB limit


@dataclass
class Sent:
    """A kicked task and what became of it."""

    call: str
    queue: str
    task: AsyncTaskiqTask[Any]
    sent_at: float
    latency: float | None = None
    result: TaskiqResult[Any] | None = None


def use_emulator(endpoint: str) -> None:
    """Point this process (our clients, the broker) and the worker it starts at the emulator."""
    for name in HIDDEN_AWS:
        os.environ.pop(name, None)
    os.environ.update(FAKE_AWS, AWS_ENDPOINT_URL=endpoint)


def start_worker(log_path: Path) -> subprocess.Popen[bytes]:
    """``taskiq worker demo_tasks:broker`` in its own session: Ctrl-C reaches us, and we stop it."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, *WORKER],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def progress(done: int, total: int, elapsed: float, final: bool = False) -> None:
    """A one-line bar, redrawn in place on a terminal; elsewhere (logs, tests) printed once at the end."""
    if not (sys.stdout.isatty() or final):
        return
    width = 30
    filled = width * done // total
    line = f"  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} results  {elapsed:4.1f} s"
    end = "\n" if final else ""
    prefix = "\r\x1b[K" if sys.stdout.isatty() else ""
    sys.stdout.write(prefix + line + end)
    sys.stdout.flush()


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout: float, worker: subprocess.Popen[bytes]
) -> bool:
    """Poll ``check`` until it holds or ``timeout`` passes; fail at once if the worker died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with code {worker.returncode}")
        if await check():
            return True
        await asyncio.sleep(POLL_INTERVAL)
    return False


async def collect(sent: list[Sent], worker: subprocess.Popen[bytes]) -> None:
    """Wait for every result, drawing the progress bar; bounded by RESULTS_TIMEOUT."""
    started = time.monotonic()
    pending = list(sent)

    async def poll() -> bool:
        ready = await asyncio.gather(*(s.task.is_ready() for s in pending))
        now = time.monotonic()
        for item, is_ready in zip(list(pending), ready, strict=True):
            if is_ready:
                item.latency = now - item.sent_at
                item.result = await item.task.get_result()
                pending.remove(item)
        progress(len(sent) - len(pending), len(sent), now - started)
        return not pending

    await wait_until(poll, RESULTS_TIMEOUT, worker)
    progress(len(sent) - len(pending), len(sent), time.monotonic() - started, final=True)


def describe(item: Sent) -> str:
    if item.result is None:
        return "(no result in time)"
    if item.result.is_err:
        return f"error: {item.result.error!r}"
    return repr(item.result.return_value)


def table(sent: list[Sent]) -> None:
    rows = [("task", "queue", "result", "latency")]
    for item in sent:
        latency = "-" if item.latency is None else f"{item.latency:.2f} s"
        result = describe(item)
        rows.append((item.call, item.queue, result if len(result) <= 48 else result[:45] + "...", latency))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for n, row in enumerate(rows):
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  " + "  ".join("-" * width for width in widths))


async def demo(endpoint: str, cleanup: contextlib.ExitStack) -> int:
    use_emulator(endpoint)
    import demo_tasks as app  # not before: it reads DEMO_PREFIX

    ok = False
    async with HTTPSession() as http, SQSClient(session=http) as sqs, S3Client(session=http) as s3:
        await s3.create_bucket(app.BUCKET)
        # The broker creates its queues (create_queues=True) before the worker starts: the two never
        # race to create them.
        await app.broker.startup()
        logs = Path(tempfile.mkdtemp(prefix="demo-worker-"))
        cleanup.callback(shutil.rmtree, logs, ignore_errors=True)
        try:
            dlq_url = await sqs.get_queue_url(app.DEAD_LETTER_QUEUE)
            dlq_before = await dlq_size(sqs, dlq_url)  # not 0 when a previous run used the same queues
            print(f"Queues: {app.QUEUE} (dead letters go to {app.DEAD_LETTER_QUEUE}), {app.FIFO_QUEUE}")
            print(f"Bucket: {app.BUCKET} (results and payloads over 1 MiB)")

            worker = start_worker(logs / "worker.log")
            cleanup.callback(stop, worker)  # runs before the rmtree above: callbacks run last-in first-out
            started = time.monotonic()
            warmup = await app.add.kiq(0, 0)
            if not await wait_until(warmup.is_ready, WORKER_READY_TIMEOUT, worker):
                raise RuntimeError(f"the worker did not answer within {WORKER_READY_TIMEOUT:.0f} s")
            print(f"Worker: pid {worker.pid}, ready in {time.monotonic() - started:.1f} s")

            sent = await send_tasks(app)
            print(f"Sent {len(sent)} tasks; waiting for results (latency: kick to result in S3)")
            await collect(sent, worker)
            print()
            table(sent)
            print()
            ok = all(item.result is not None for item in sent)
            ok &= fifo_in_order(sent)
            ok &= await dead_letters(app, sqs, dlq_url, dlq_before, worker)
        except Exception:
            show_log(logs / "worker.log")
            raise
        finally:
            await app.broker.shutdown()  # flushes batched sends and acks
    if not ok:
        show_log(logs / "worker.log")
    print("\nDone." if ok else "\nDone, with problems (see above).")
    return 0 if ok else 1


async def send_tasks(app: ModuleType) -> list[Sent]:
    """Kick the mix. The slow ones (failing, delayed) go first so that they overlap the rest."""
    sent: list[Sent] = []

    async def kick(call: str, queue: str, kicked: Awaitable[Any]) -> None:
        sent_at = time.monotonic()
        sent.append(Sent(call, queue, await kicked, sent_at))

    await kick("always_fails()", app.QUEUE, app.always_fails.kiq())
    await kick("remind('in 3 s') delay=3", app.QUEUE, app.remind.kicker().with_labels(delay=3).kiq("in 3 s"))
    # Two message groups, interleaved: each keeps its own order, neither waits for the other.
    for step in (1, 2, 3):
        for group in ("a", "b"):
            kicker = app.ordered_step.kicker().with_labels(group_id=group)
            await kick(f"ordered_step({group!r}, {step})", app.FIFO_QUEUE, kicker.kiq(group, step))
    blob = "x" * BLOB_CHARS
    await kick(f"checksum(<{BLOB_CHARS:,} chars>) via S3", app.QUEUE, app.checksum.kiq(blob))
    for n in (1, 2, 3):
        await kick(f"add({n}, {n})", app.QUEUE, app.add.kiq(n, n))
    # A burst: these 10 share one SendMessageBatch request.
    await asyncio.gather(*(kick(f"square({n}) batched", app.QUEUE, app.square.kiq(n)) for n in range(10)))
    return sent


def fifo_in_order(sent: list[Sent]) -> bool:
    """The last step of each group returns the order the worker ran that group's steps in."""
    ok = True
    for group in ("a", "b"):
        last = [s for s in sent if s.call.startswith(f"ordered_step({group!r}")][-1].result
        ran: list[str] = last.return_value if last is not None and not last.is_err else []
        expected = [f"{group}{n}" for n in (1, 2, 3)]
        verdict = "in order" if ran == expected else f"NOT in order, expected {' -> '.join(expected)}"
        print(f"FIFO group {group}: ran {' -> '.join(ran) or '?'} ({verdict})")
        ok &= ran == expected
    return ok


async def dlq_size(sqs: SQSClient, dlq_url: str) -> int:
    attributes = await sqs.get_queue_attributes(dlq_url, ["ApproximateNumberOfMessages"])
    return int(attributes.get("ApproximateNumberOfMessages", "0"))


async def dead_letters(
    app: ModuleType, sqs: SQSClient, dlq_url: str, before: int, worker: subprocess.Popen[bytes]
) -> bool:
    """Where the failing task ended up: after max_receive_count failed runs, in the dead-letter queue."""
    print(f"always_fails: redelivered every {app.REDELIVERY_DELAY} s; waiting for the dead-letter queue...")
    count = before

    async def arrived() -> bool:
        nonlocal count
        count = await dlq_size(sqs, dlq_url)
        return count > before

    if await wait_until(arrived, DLQ_TIMEOUT, worker):
        print(f"  it is in {app.DEAD_LETTER_QUEUE} after 2 failed runs (messages there: {before} -> {count})")
        return True
    print(f"  nothing reached {app.DEAD_LETTER_QUEUE} within {DLQ_TIMEOUT:.0f} s")
    return False


def show_log(log_path: Path) -> None:
    """When something went wrong the worker's log says why; when all went well it is noise."""
    if log_path.exists():
        sys.stderr.write("--- worker log (tail) ---\n" + log_path.read_text(errors="replace")[-3000:])


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--ministack", help="path of the ministack executable: start a private one")
    where.add_argument("--endpoint", help="URL of a running emulator to use instead")
    parser.add_argument("--prefix", default="demo", help="prefix of the queue and bucket names")
    args = parser.parse_args()
    os.environ["DEMO_PREFIX"] = args.prefix

    # SIGTERM as an exception too, so that the same cleanup runs as for Ctrl-C.
    def _terminate(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _terminate)
    # Ctrl-C must reach us even if we were started with SIGINT ignored (`cmd &` in a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    try:
        with contextlib.ExitStack() as cleanup:
            endpoint = args.endpoint
            if endpoint is None:
                endpoint = cleanup.enter_context(ministack(args.ministack))
                print(f"MiniStack: {endpoint} (pid-managed, private TMPDIR)")
            code = asyncio.run(demo(endpoint, cleanup))
        stopped = "the worker" + (" and MiniStack" if args.endpoint is None else "")
        print(f"Stopped {stopped}; {time.monotonic() - started:.1f} s in all")
        return code
    except KeyboardInterrupt:
        print("\nInterrupted: stopped everything the demo started.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
