"""Serverless worker benchmark: our lambda_handler against the same handler written by hand on
taskiq-aio-sqs 2.1.1, side by side: deployment zip size, cold start CPU, warm per-record CPU.

    make bench-lambda                       # MiniStack + full run -> bench/lambda.md
    python scripts/bench_lambda.py [--repeats N] [--warm-batches N] [--no-compile]  # TEST_AWS_ENDPOINT_URL

How (and why so):

* Both zips are built by scripts/lambda_zip.py with the same recipe (binary wheels for manylinux x86_64,
  bytecode compiled in, debug info stripped from extension modules, same pruning); theirs from
  ``taskiq-aio-sqs==2.1.1``, which must bundle aiobotocore *and* its pinned botocore (Lambda's runtime
  botocore is not the version aiobotocore pins).
* Each measurement is a fresh process, ``python -I -S -B`` with only the extracted zip and the standard
  library on ``sys.path`` (what Lambda's Python runtime gives a function, minus its own boto3), that
  imports the app module and calls ``handler(event, context)`` as the runtime does: once cold (one record),
  then ``--warm-batches`` warm invocations of ten records each, on the one process.
* The events are real: messages sent to a fresh MiniStack queue, received with ReceiveMessage (hidden for
  the run) and rewritten in Lambda's record shape (camelCase attributes, eventSourceARN), so each handler
  really deletes its messages and writes its results to S3.
* CPU is ``time.process_time()`` inside the child (the emulator's CPU is not counted). Ours and theirs are
  interleaved, the order alternating per repeat; each cell is a median. The machine is shared and noisy:
  read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lambda_zip

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "lambda.md"
REGION = "us-east-1"
TASK = "bench_app:noop"
BATCH = 10

OURS_APP = textwrap.dedent(
    """
    import os

    from taskiq_sqs_http import S3Backend, SQSBroker
    from taskiq_sqs_http.serverless import lambda_handler

    _endpoint = os.environ["BENCH_ENDPOINT"]
    broker = SQSBroker(os.environ["BENCH_QUEUE"], endpoint_url=_endpoint).with_result_backend(
        S3Backend(os.environ["BENCH_BUCKET"], endpoint_url=_endpoint)
    )


    @broker.task(task_name="bench_app:noop")
    async def noop(n: int) -> int:
        return n


    handler = lambda_handler(broker)
    """
)

# What a team writes today on taskiq-aio-sqs 2.1.1: its broker's own decoding (private, but the only way to
# get its pointer handling and metadata), taskiq's Receiver, one kept loop, partial batch response.
THEIRS_APP = textwrap.dedent(
    """
    import asyncio
    import os

    from taskiq.receiver import Receiver
    from taskiq_aio_sqs import S3Backend, SQSBroker

    _endpoint = os.environ["BENCH_ENDPOINT"]
    broker = SQSBroker(os.environ["BENCH_QUEUE"], endpoint_url=_endpoint).with_result_backend(
        S3Backend(os.environ["BENCH_BUCKET"], endpoint_url=_endpoint)
    )


    @broker.task(task_name="bench_app:noop")
    async def noop(n: int) -> int:
        return n


    _loop = asyncio.new_event_loop()
    _receiver = None


    def _api_attributes(attributes):
        out = {}
        for name, value in (attributes or {}).items():
            item = {"DataType": value["dataType"]}
            if value.get("binaryValue") is not None:
                import base64

                item["BinaryValue"] = base64.b64decode(value["binaryValue"])
            else:
                item["StringValue"] = value.get("stringValue")
            out[name] = item
        return out


    async def _run(event):
        global _receiver
        if _receiver is None:
            broker.is_worker_process = True
            await broker.startup()
            _receiver = Receiver(broker, max_async_tasks=10, run_startup=False)
        slots = asyncio.Semaphore(10)

        async def one(record):
            async with slots:
                queue_name = record["eventSourceARN"].rsplit(":", 1)[-1]
                queue_url = broker._queue_urls[queue_name]
                message = {
                    "MessageId": record["messageId"],
                    "ReceiptHandle": record["receiptHandle"],
                    "Body": record["body"],
                    "Attributes": record.get("attributes") or {},
                    "MessageAttributes": _api_attributes(record.get("messageAttributes")),
                }
                try:
                    ackable = await broker._to_ackable_message(message, broker._default_queue, queue_url)
                    if ackable is None:
                        return record["messageId"]
                    await _receiver.callback(message=ackable, raise_err=True)
                except Exception:
                    return record["messageId"]
                return None

        failed = await asyncio.gather(*(one(r) for r in event["Records"]))
        return {"batchItemFailures": [{"itemIdentifier": f} for f in failed if f]}


    def handler(event, context):
        return _loop.run_until_complete(_run(event))
    """
)

# Runs in the child: the Lambda runtime's part (import once, call per invocation), with CPU clocks.
BOOTSTRAP = textwrap.dedent(
    """
    import json, resource, sys, time
    code_dir, module, events_path = sys.argv[1:4]
    sys.path.insert(0, code_dir)
    events = json.load(open(events_path))

    class Context:
        def __init__(self):
            self._end = time.monotonic() + 60
        def get_remaining_time_in_millis(self):
            return int((self._end - time.monotonic()) * 1000)

    t0 = time.process_time(); w0 = time.perf_counter()
    app = __import__(module)
    t1 = time.process_time(); w1 = time.perf_counter()
    first = app.handler(events[0], Context())
    t2 = time.process_time(); w2 = time.perf_counter()
    warm = []
    for event in events[1:]:
        c0 = time.process_time(); p0 = time.perf_counter()
        response = app.handler(event, Context())
        warm.append((time.process_time() - c0, time.perf_counter() - p0, len(response["batchItemFailures"])))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "import_cpu": t1 - t0, "first_cpu": t2 - t1, "import_wall": w1 - w0, "first_wall": w2 - w1,
        "first_failures": len(first["batchItemFailures"]),
        "warm": warm, "process_cpu": usage.ru_utime + usage.ru_stime, "max_rss_kb": usage.ru_maxrss,
        "modules": len(sys.modules),
        "botocore": "botocore" in sys.modules,
    }))
    """
)


@dataclass
class Impl:
    key: str
    label: str
    app: str
    requirements: list[str] | None
    include_package: bool
    zip_path: Path | None = None
    zipped: int = 0
    unzipped: int = 0
    files: int = 0
    code_dir: Path | None = None
    runs: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])


def build_zip(impl: Impl, work: Path, compile_pyc: bool, strip: bool, sourceless_deps: bool) -> None:
    app_dir = work / f"app-{impl.key}"
    app_dir.mkdir(parents=True, exist_ok=True)
    (app_dir / "bench_app.py").write_text(impl.app)
    built = lambda_zip.build(
        "bench_app",
        app_dir=app_dir,
        arch="x86_64",
        python_version=f"{sys.version_info[0]}.{sys.version_info[1]}",
        out=work / f"{impl.key}.zip",
        requirements=impl.requirements,
        include_package=impl.include_package,
        compile_pyc=compile_pyc,
        strip=strip,
        install_cache=work / "pip-cache",
        sourceless_deps=sourceless_deps,
    )
    impl.zip_path, impl.zipped, impl.unzipped, impl.files = (
        built.path,
        built.zipped,
        built.unzipped,
        built.files,
    )
    impl.code_dir = work / f"code-{impl.key}"
    with zipfile.ZipFile(built.path) as archive:
        archive.extractall(impl.code_dir)
    print(built.describe(), flush=True)


async def make_events(endpoint: str, queue: str, warm_batches: int) -> list[dict[str, Any]]:
    """1 cold event of one record, then warm events of ten: real messages, in Lambda's record shape."""
    from taskiq_sqs_http.aws import SendMessageEntry, SQSClient

    async with SQSClient(endpoint_url=endpoint, region_name=REGION) as sqs:
        url = await sqs.get_queue_url(queue)
        arn = (await sqs.get_queue_attributes(url, ["QueueArn"]))["QueueArn"]
        total = 1 + warm_batches * BATCH
        for start in range(0, total, BATCH):
            entries = [
                SendMessageEntry(
                    id=str(i),
                    body=json.dumps(
                        {
                            "task_id": uuid.uuid4().hex,
                            "task_name": TASK,
                            "labels": {},
                            "labels_types": {},
                            "args": [start + i],
                            "kwargs": {},
                        }
                    ),
                )
                for i in range(min(BATCH, total - start))
            ]
            await sqs.send_message_batch(url, entries)
        records: list[dict[str, Any]] = []
        while len(records) < total:
            for message in await sqs.receive_message(
                url, max_number_of_messages=BATCH, wait_time_seconds=1, visibility_timeout=600
            ):
                records.append(
                    {
                        "messageId": message.message_id,
                        "receiptHandle": message.receipt_handle,
                        "body": message.body,
                        "attributes": dict(message.attributes),
                        "messageAttributes": {},
                        "md5OfBody": message.md5_of_body or "",
                        "eventSource": "aws:sqs",
                        "eventSourceARN": arn,
                        "awsRegion": REGION,
                    }
                )
    events = [{"Records": records[:1]}]
    events += [{"Records": records[i : i + BATCH]} for i in range(1, total, BATCH)]
    return events


def run_child(impl: Impl, events: list[dict[str, Any]], env: dict[str, str], work: Path) -> dict[str, Any]:
    assert impl.code_dir is not None
    events_path = work / f"events-{impl.key}.json"
    events_path.write_text(json.dumps(events))
    bootstrap = work / "bootstrap.py"
    bootstrap.write_text(BOOTSTRAP)
    result = subprocess.run(
        # -B: Lambda's /var/task is read-only, so a cold start never finds bytecode it wrote itself.
        [sys.executable, "-I", "-S", "-B", str(bootstrap), str(impl.code_dir), "bench_app", str(events_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stderr[-4000:])
        raise SystemExit(f"{impl.label}: the handler process failed (exit {result.returncode})")
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    failures = data["first_failures"] + sum(w[2] for w in data["warm"])
    if failures:
        sys.stderr.write(result.stderr[-4000:])
        raise SystemExit(f"{impl.label}: {failures} records failed; the numbers would not compare")
    return data


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(impl: Impl) -> dict[str, float]:
    runs = impl.runs
    warm_cpu = [cpu / BATCH for run in runs for cpu, _wall, _f in run["warm"]]
    warm_wall = [wall / BATCH for run in runs for _cpu, wall, _f in run["warm"]]
    return {
        "import_cpu": median([r["import_cpu"] for r in runs]),
        "first_cpu": median([r["first_cpu"] for r in runs]),
        "cold_cpu": median([r["import_cpu"] + r["first_cpu"] for r in runs]),
        "cold_wall": median([r["import_wall"] + r["first_wall"] for r in runs]),
        "process_cpu": median([r["process_cpu"] for r in runs]),
        "max_rss_mb": median([r["max_rss_kb"] / 1024 for r in runs]),
        "modules": median([r["modules"] for r in runs]),
        "warm_cpu_ms": 1000 * median(warm_cpu),
        "warm_wall_ms": 1000 * median(warm_wall),
    }


def report(ours: Impl, theirs: Impl, args: argparse.Namespace) -> str:
    so, st = summarize(ours), summarize(theirs)

    def row(name: str, a: float, b: float, fmt: str, target: str = "") -> str:
        ratio = a / b if b else float("nan")
        return f"| {name} | {a:{fmt}} | {b:{fmt}} | {ratio:.2f}x | {target} |"

    lines = [
        "# Serverless worker (AWS Lambda): ours vs taskiq-aio-sqs 2.1.1 by hand",
        "",
        f"Generated by `make bench-lambda` ({dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, shared, noisy). "
        f"{args.repeats} cold starts per side, each followed by {args.warm_batches} warm invocations of "
        f"{BATCH} records; medians; ratio = ours / theirs.",
        "",
        "| | ours | taskiq-aio-sqs 2.1.1 | ratio | target |",
        "|---|---:|---:|---:|---|",
        row("zip size, MB", ours.zipped / 1e6, theirs.zipped / 1e6, ".1f", "at most 0.3x"),
        row("unzipped, MB", ours.unzipped / 1e6, theirs.unzipped / 1e6, ".1f"),
        row("files in zip", ours.files, theirs.files, ".0f"),
        row(
            "cold start CPU (import + first invocation), ms",
            1000 * so["cold_cpu"],
            1000 * st["cold_cpu"],
            ".0f",
            "at most 0.6x",
        ),
        row("  of which import, ms", 1000 * so["import_cpu"], 1000 * st["import_cpu"], ".0f"),
        row("  of which first invocation, ms", 1000 * so["first_cpu"], 1000 * st["first_cpu"], ".0f"),
        row("cold start wall, ms", 1000 * so["cold_wall"], 1000 * st["cold_wall"], ".0f"),
        row(
            "process CPU incl. interpreter start, ms",
            1000 * so["process_cpu"],
            1000 * st["process_cpu"],
            ".0f",
        ),
        row("peak RSS, MB", so["max_rss_mb"], st["max_rss_mb"], ".0f"),
        row("modules loaded", so["modules"], st["modules"], ".0f"),
        row("warm CPU per record, ms", so["warm_cpu_ms"], st["warm_cpu_ms"], ".2f", "reported"),
        row("warm wall per record (batches of 10), ms", so["warm_wall_ms"], st["warm_wall_ms"], ".2f"),
        "",
        f"Zips built by scripts/lambda_zip.py, both alike: bytecode compiled in: "
        f"{'no' if args.no_compile else 'yes'}; debug info stripped from extension modules: "
        f"{'no' if args.no_strip else 'yes'}; dependencies without sources: "
        f"{'yes' if args.sourceless_deps else 'no'}. The "
        "handlers run a one-task app (`noop(n) -> n`) with an S3 result backend, against MiniStack on "
        "127.0.0.1; CPU is the handler process's own, the emulator's is not counted. Theirs is the handler a "
        "team writes by hand on 2.1.1 (its broker's private `_to_ackable_message`, taskiq's `Receiver`, one "
        "kept loop), see `THEIRS_APP` in scripts/bench_lambda.py. Lambda's own runtime start is the same "
        "for both and is not measured.",
        "",
        "",
    ]
    return "\n".join(lines)


def size_variants(ours: Impl, theirs: Impl, work: Path) -> list[tuple[str, int, int]]:
    """Zipped sizes (ours, theirs) for each recipe: what bytecode and stripping cost or save."""
    rows: list[tuple[str, int, int]] = []
    recipes = (
        (True, True, False),
        (True, True, True),
        (False, True, False),
        (True, False, False),
        (False, False, False),
    )
    for compile_pyc, strip, sourceless in recipes:
        sizes: list[int] = []
        for impl in (ours, theirs):
            app_dir = work / f"app-{impl.key}"
            built = lambda_zip.build(
                "bench_app",
                app_dir=app_dir,
                arch="x86_64",
                python_version=f"{sys.version_info[0]}.{sys.version_info[1]}",
                out=work / f"variant-{impl.key}.zip",
                requirements=impl.requirements,
                include_package=impl.include_package,
                compile_pyc=compile_pyc,
                strip=strip,
                install_cache=work / "pip-cache",
                sourceless_deps=sourceless,
            )
            sizes.append(built.zipped)
        label = f"bytecode {'yes' if compile_pyc else 'no'}, stripped {'yes' if strip else 'no'}"
        label += ", dependencies without sources (--sourceless-deps)" if sourceless else ""
        rows.append((label, sizes[0], sizes[1]))
        print(f"{label}: ours {sizes[0] / 1e6:.1f} MB, theirs {sizes[1] / 1e6:.1f} MB", flush=True)
    return rows


def variants_table(rows: list[tuple[str, int, int]]) -> str:
    if not rows:
        return ""
    lines = [
        "Zip size by recipe (x86_64; the first row is `make lambda-zip`'s default):",
        "",
        "| recipe | ours, MB | taskiq-aio-sqs 2.1.1, MB | ratio |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {label} | {a / 1e6:.1f} | {b / 1e6:.1f} | {a / b:.2f}x |" for label, a, b in rows]
    return "\n".join([*lines, ""])


async def create_resources(endpoint: str) -> tuple[str, str]:
    from taskiq_sqs_http.aws import S3Client, SQSClient

    suffix = uuid.uuid4().hex[:10]
    queue, bucket = f"bench-lambda-{suffix}", f"bench-lambda-{suffix}"
    async with SQSClient(endpoint_url=endpoint, region_name=REGION) as sqs:
        await sqs.create_queue(queue)
    async with S3Client(endpoint_url=endpoint, region_name=REGION) as s3:
        await s3.create_bucket(bucket)
    return queue, bucket


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warm-batches", type=int, default=10)
    parser.add_argument("--no-compile", action="store_true", help="zips without precompiled bytecode")
    parser.add_argument("--no-strip", action="store_true", help="keep debug info in extension modules")
    parser.add_argument("--sourceless-deps", action="store_true", help="lambda_zip.py --sourceless-deps")
    parser.add_argument(
        "--sizes-only-default", action="store_true", help="skip the zip-size table of the other recipes"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    endpoint = os.environ.get("TEST_AWS_ENDPOINT_URL")
    if not endpoint:
        parser.error(
            "TEST_AWS_ENDPOINT_URL is not set: run through scripts/with_ministack.py (make bench-lambda)"
        )
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    os.environ.setdefault("AWS_REGION", REGION)

    ours = Impl("ours", "taskiq-sqs-http", OURS_APP, None, True)
    theirs = Impl("theirs", "taskiq-aio-sqs 2.1.1", THEIRS_APP, ["taskiq-aio-sqs==2.1.1"], False)
    queue, bucket = asyncio.run(create_resources(endpoint))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": tempfile.gettempdir(),
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_SESSION_TOKEN": "bench-session-token",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "BENCH_ENDPOINT": endpoint,
        "BENCH_QUEUE": queue,
        "BENCH_BUCKET": bucket,
    }
    with tempfile.TemporaryDirectory(prefix="bench-lambda-") as tmp:
        work = Path(tmp)
        for impl in (ours, theirs):
            build_zip(
                impl,
                work,
                compile_pyc=not args.no_compile,
                strip=not args.no_strip,
                sourceless_deps=args.sourceless_deps,
            )
        variants = [] if args.sizes_only_default else size_variants(ours, theirs, work)
        for repeat in range(args.repeats):
            order = (ours, theirs) if repeat % 2 == 0 else (theirs, ours)
            for impl in order:
                events = asyncio.run(make_events(endpoint, queue, args.warm_batches))
                run = run_child(impl, events, env, work)
                impl.runs.append(run)
                print(
                    f"repeat {repeat + 1}/{args.repeats} {impl.label}: cold CPU "
                    f"{1000 * (run['import_cpu'] + run['first_cpu']):.0f} ms "
                    f"(import {1000 * run['import_cpu']:.0f}), botocore loaded: {run['botocore']}",
                    flush=True,
                )
    text = report(ours, theirs, args) + variants_table(variants)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
