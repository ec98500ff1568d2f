"""`make demo-lambda`: taskiq tasks run by an AWS Lambda function with an SQS trigger, on a local MiniStack.

Starts MiniStack with Lambda (or uses --endpoint), builds the function's zip with scripts/lambda_zip.py
(scripts/demo_lambda_app.py plus this package and its dependencies), creates a queue with a dead-letter
queue, a FIFO queue and a bucket, deploys the function and two event source mappings with
``FunctionResponseTypes=["ReportBatchItemFailures"]``, then kicks tasks from here with SQSBroker: plain
ones, one too big for SQS (offloaded to S3), FIFO steps in two message groups, and one that always fails
(it ends up in the dead-letter queue). Shows progress while results arrive in S3, then a summary. No
worker process: Lambda's event source mapping polls and invokes. Everything it started is stopped by PID.

The Lambda API is called with this package's own SigV4 signer over httpx (no botocore), as a deployment
script could do on AWS.

Usage: python scripts/demo_lambda.py (--ministack PATH | --endpoint URL) [--prefix NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import lambda_zip
from taskiq import AsyncTaskiqTask, TaskiqResult
from with_ministack import ministack

from taskiq_sqs_http.aws import Credentials, S3Client, SigV4Signer, SQSClient

SCRIPTS = Path(__file__).resolve().parent
REGION = "us-east-1"
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": REGION}
HIDDEN_AWS = ("AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_PROFILE")
FUNCTION_TIMEOUT = 30
RESULTS_TIMEOUT = 90.0
DLQ_TIMEOUT = 60.0
BLOB_CHARS = 1_200_000  # over SQS's 1 MiB limit


class LambdaAPI:
    """The few Lambda REST calls a deployment needs, signed with our SigV4 signer."""

    def __init__(self, endpoint: str, client: httpx.AsyncClient) -> None:
        self._endpoint = endpoint.rstrip("/")
        self._client = client
        creds = Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
        self._signer = SigV4Signer(creds, REGION, "lambda")

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self._endpoint}/2015-03-31{path}"
        content = json.dumps(body).encode() if body is not None else b""
        headers = {"content-type": "application/json", "host": httpx.URL(url).netloc.decode()}
        headers.update(self._signer.sign(method, url, headers, content))
        response = await self._client.request(method, url, content=content, headers=headers)
        if response.status_code >= 400:
            raise RuntimeError(f"Lambda {method} {path}: HTTP {response.status_code} {response.text[:300]}")
        return response.json() if response.content else {}


@dataclass
class Sent:
    call: str
    task: AsyncTaskiqTask[Any]
    sent_at: float
    latency: float | None = None
    result: TaskiqResult[Any] | None = None


def use_emulator(endpoint: str) -> None:
    for name in HIDDEN_AWS:
        os.environ.pop(name, None)
    os.environ.update(FAKE_AWS, AWS_ENDPOINT_URL=endpoint)


def progress(done: int, total: int, elapsed: float, final: bool = False) -> None:
    if not (sys.stdout.isatty() or final):
        return
    width = 30
    filled = width * done // total
    line = f"  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} results  {elapsed:4.1f} s"
    prefix = "\r\x1b[K" if sys.stdout.isatty() else ""
    sys.stdout.write(prefix + line + ("\n" if final else ""))
    sys.stdout.flush()


async def deploy(api: LambdaAPI, app: ModuleType, zip_bytes: bytes, endpoint: str, prefix: str) -> str:
    """The function and one ReportBatchItemFailures mapping per queue; returns the function name."""
    sqs_arn = f"arn:aws:sqs:{REGION}:000000000000:"
    name = f"{prefix}-worker"
    await api.call(
        "POST",
        "/functions",
        {
            "FunctionName": name,
            "Runtime": f"python{sys.version_info[0]}.{sys.version_info[1]}",
            "Role": "arn:aws:iam::000000000000:role/taskiq-lambda-worker",
            "Handler": "demo_lambda_app.handler",
            "Code": {"ZipFile": base64.b64encode(zip_bytes).decode()},
            "Timeout": FUNCTION_TIMEOUT,
            "MemorySize": 512,
            "Environment": {
                "Variables": {
                    "DEMO_QUEUE": app.QUEUE,
                    "DEMO_FIFO_QUEUE": app.FIFO_QUEUE,
                    "DEMO_BUCKET": app.BUCKET,
                    "AWS_ENDPOINT_URL": endpoint,
                }
            },
        },
    )
    for queue in (app.QUEUE, app.FIFO_QUEUE):
        await api.call(
            "POST",
            "/event-source-mappings/",
            {
                "EventSourceArn": sqs_arn + queue,
                "FunctionName": name,
                "BatchSize": 10,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                "ScalingConfig": {"MaximumConcurrency": 2},
            },
        )
    return name


async def undeploy(api: LambdaAPI, name: str) -> None:
    with contextlib.suppress(RuntimeError):
        listing = await api.call("GET", f"/event-source-mappings/?FunctionName={name}")
        for mapping in listing.get("EventSourceMappings", []):
            await api.call("DELETE", f"/event-source-mappings/{mapping['UUID']}")
    with contextlib.suppress(RuntimeError):
        await api.call("DELETE", f"/functions/{name}")


async def send_tasks(app: ModuleType) -> list[Sent]:
    sent: list[Sent] = []

    async def kick(call: str, kicked: Any) -> None:
        started = time.monotonic()
        sent.append(Sent(call, await kicked, started))

    for n in range(12):
        await kick(f"add({n}, 100)", app.add.kiq(n, 100))
    await kick(f"checksum(<{BLOB_CHARS / 1e6:.1f} MB>)", app.checksum.kiq("z" * BLOB_CHARS))
    for n in range(4):
        for group in ("g1", "g2"):
            kicker = app.step.kicker().with_labels(queue=app.FIFO_QUEUE, group_id=group)
            await kick(f"step({group}, {n})", kicker.kiq(group, n))
    return sent


async def collect(sent: list[Sent]) -> None:
    started = time.monotonic()
    pending = list(sent)
    while pending and time.monotonic() - started < RESULTS_TIMEOUT:
        for item in list(pending):
            if await item.task.is_ready():
                item.result = await item.task.get_result()
                item.latency = time.monotonic() - item.sent_at
                pending.remove(item)
        progress(len(sent) - len(pending), len(sent), time.monotonic() - started)
        await asyncio.sleep(0.3)
    progress(len(sent) - len(pending), len(sent), time.monotonic() - started, final=True)


def table(sent: list[Sent]) -> None:
    rows = [("task", "result", "kick -> result in S3")]
    for item in sent:
        if item.result is None:
            outcome = "no result"
        elif item.result.is_err:
            outcome = f"error: {item.result.error}"
        else:
            outcome = repr(item.result.return_value)
            outcome = outcome if len(outcome) < 24 else outcome[:21] + "..."
        latency = "-" if item.latency is None else f"{item.latency:.2f} s"
        rows.append((item.call, outcome, latency))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for index, row in enumerate(rows):
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            print("  " + "  ".join("-" * w for w in widths))


def fifo_in_order(sent: list[Sent]) -> bool:
    ok = True
    for group in ("g1", "g2"):
        steps = [s for s in sent if s.call.startswith(f"step({group},") and s.result and not s.result.is_err]
        times = [int(s.result.return_value) for s in steps if s.result]
        in_order = len(times) == 4 and times == sorted(times)
        ok = ok and in_order
        print(f"FIFO group {group}: {len(times)} of 4 ran, {'in order' if in_order else 'NOT in order'}")
    return ok


async def dead_letter(app: ModuleType, sqs: SQSClient, dlq_url: str) -> bool:
    kicked = await app.always_fails.kiq()
    print(f"always_fails: a batch item failure each time, redelivered after {app.REDELIVERY_DELAY} s ...")
    deadline = time.monotonic() + DLQ_TIMEOUT
    while time.monotonic() < deadline:
        for message in await sqs.receive_message(dlq_url, max_number_of_messages=10, wait_time_seconds=1):
            await sqs.change_message_visibility(dlq_url, message.receipt_handle, 0)
            if kicked.task_id in message.body:
                print("  it is in the dead-letter queue after 2 receives (maxReceiveCount 2)")
                return True
    print(f"  nothing reached the dead-letter queue within {DLQ_TIMEOUT:.0f} s")
    return False


async def demo(endpoint: str, prefix: str) -> int:
    use_emulator(endpoint)
    os.environ.update(
        DEMO_QUEUE=f"{prefix}-tasks", DEMO_FIFO_QUEUE=f"{prefix}-tasks.fifo", DEMO_BUCKET=f"{prefix}-results"
    )
    sys.path.insert(0, str(SCRIPTS))
    import demo_lambda_app as app

    with tempfile.TemporaryDirectory(prefix="demo-lambda-") as tmp:
        started = time.monotonic()
        built = lambda_zip.build(
            "demo_lambda_app",
            app_dir=SCRIPTS,
            arch="x86_64",
            python_version=f"{sys.version_info[0]}.{sys.version_info[1]}",
            out=Path(tmp) / "demo_lambda_app.zip",
            compile_pyc=False,  # faster to build; `make lambda-zip` compiles bytecode in
        )
        took = time.monotonic() - started
        print(f"Zip: {built.zipped / 1e6:.1f} MB ({built.files} files), built in {took:.0f} s")
        zip_bytes = built.path.read_bytes()

    async with SQSClient() as sqs, S3Client() as s3, httpx.AsyncClient(timeout=60) as http:
        dlq_url = await sqs.create_queue(f"{prefix}-dead-letters")
        dlq_arn = (await sqs.get_queue_attributes(dlq_url, ["QueueArn"]))["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
        # At least six times the function timeout, as AWS advises for Lambda event sources.
        visibility = str(6 * FUNCTION_TIMEOUT)
        await sqs.create_queue(
            app.QUEUE, attributes={"VisibilityTimeout": visibility, "RedrivePolicy": redrive}
        )
        await sqs.create_queue(
            app.FIFO_QUEUE,
            attributes={
                "FifoQueue": "true",
                "ContentBasedDeduplication": "true",
                "VisibilityTimeout": visibility,
            },
        )
        await s3.create_bucket(app.BUCKET)
        print(f"Queues: {app.QUEUE} (dead letters: {prefix}-dead-letters), {app.FIFO_QUEUE}")
        print(f"Bucket: {app.BUCKET} (results, and payloads over 1 MiB)")
        api = LambdaAPI(endpoint, http)
        function = await deploy(api, app, zip_bytes, endpoint, prefix)
        print(f"Function {function}: handler demo_lambda_app.handler, mappings with ReportBatchItemFailures")
        try:
            await app.broker.startup()
            try:
                sent = await send_tasks(app)
                print(
                    f"Sent {len(sent)} tasks; Lambda runs them as the mapping delivers batches "
                    "(the first ones wait for the function's cold start)"
                )
                await collect(sent)
                print()
                table(sent)
                print()
                all_done = all(s.result is not None and not s.result.is_err for s in sent)
                ordered = fifo_in_order(sent)
                dead = await dead_letter(app, sqs, dlq_url)
            finally:
                await app.broker.shutdown()
        finally:
            await undeploy(api, function)
    ok = all_done and ordered and dead
    print("\nDone." if ok else "\nDone, with problems (see above).")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--ministack", help="path of the ministack executable: start a private one")
    where.add_argument("--endpoint", help="URL of a running emulator with Lambda to use instead")
    parser.add_argument(
        "--prefix", default="demo-lambda", help="prefix of the queue, bucket and function names"
    )
    args = parser.parse_args()

    def _terminate(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    try:
        with contextlib.ExitStack() as cleanup:
            endpoint = args.endpoint
            if endpoint is None:
                endpoint = cleanup.enter_context(ministack(args.ministack, services="sqs,s3,lambda"))
                print(f"MiniStack: {endpoint} (with Lambda; pid-managed, private TMPDIR)")
            code = asyncio.run(demo(endpoint, args.prefix))
        print(f"Stopped everything the demo started; {time.monotonic() - started:.1f} s in all")
        return code
    except KeyboardInterrupt:
        print("\nInterrupted: stopped everything the demo started.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
