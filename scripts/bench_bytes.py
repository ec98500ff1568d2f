"""Client CPU per unbatched send as the payload grows: ours against taskiq-aio-sqs 2.1.1, side by side.

Why a separate benchmark: `make bench` measures small tasks, where fixed per-request costs dominate. Here
the payload grows (1, 16, 64, 256 KB by default) so the per-byte cost of the send path shows up as the
slope of CPU against size. Each measurement runs in its own process (ours in .venv, 2.1.1 in
.venv-aiosqs) against the same local stub server, which answers at once and whose CPU is not counted:
CPU is the client process's own ``time.process_time()`` (user + system, so the kernel's socket copies
count on both sides alike). Runs of the two libraries are interleaved so that machine noise hits both;
each cell is the median of ``--repeats`` runs. The slope is a least-squares fit of CPU against KB.

Levels:
  kiq     ``task.kiq(payload)`` on an unbatched broker (taskiq formatter + broker + client), the default
  client  ``SQSClient.send_message`` against aiobotocore's ``send_message`` with the same body

``--endpoint-url`` (MiniStack, say) replaces the stub: the queue is created there and purged after each run.

    python scripts/bench_bytes.py [--sizes 1,16,64,256] [--repeats 5] [--requests 300] [--level kiq]
        [--endpoint-url URL] [--json out.json] [--markdown out.md]

Exit status 0 even when a target is missed (the table says so); 2 when the 2.1.1 venv is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
THEIRS_PYTHON = os.environ.get("BENCH_AIOSQS_PYTHON", str(ROOT / ".venv-aiosqs/bin/python"))
QUEUE_NAME = "bench-bytes"
QUEUE_PATH = "/000000000000/" + QUEUE_NAME
TARGET_RATIO = 0.6
TARGET_SLOPE_RATIO = 0.7
WARMUP = 20


# -- stub SQS server ----------------------------------------------------------------------------------
class _Stub(asyncio.Protocol):
    """Just enough of SQS's JSON protocol for a broker to start and send; MD5s are real."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1")
            length, target = 0, ""
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                lname = name.strip().lower()
                if lname == "content-length":
                    length = int(value)
                elif lname == "x-amz-target":
                    target = value.strip().rpartition(".")[2]
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            self.respond(target, body)

    def respond(self, action: str, body: bytes) -> None:
        answer: dict[str, Any] = {}
        if action in ("GetQueueUrl", "CreateQueue"):
            answer = {"QueueUrl": f"http://127.0.0.1:{self.port}{QUEUE_PATH}"}
        elif action == "GetQueueAttributes":
            answer = {"Attributes": {"VisibilityTimeout": "30"}}
        elif action == "SendMessage":
            message = json.loads(body).get("MessageBody", "")
            answer = {
                "MessageId": "6f1b2c57-0000-4000-8000-000000000001",
                "MD5OfMessageBody": hashlib.md5(message.encode(), usedforsecurity=False).hexdigest(),
            }
        payload = json.dumps(answer).encode()
        assert self.transport is not None
        self.transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n"
            b"x-amzn-RequestId: r\r\nContent-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
        )


async def _serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Stub(port), "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


# -- one measurement process --------------------------------------------------------------------------
def payload_text(kb: int) -> str:
    """``kb`` KiB of ordinary text (letters, digits, spaces, a few quotes that JSON must escape)."""
    unit = 'The quick brown fox jumps over the "lazy" dog 0123456789. '
    size = kb * 1024
    return (unit * (size // len(unit) + 1))[:size]


async def _timed(call: Any, requests: int) -> float:
    for _ in range(WARMUP):
        await call()
    cpu0 = time.process_time()
    for _ in range(requests):
        await call()
    return (time.process_time() - cpu0) / requests * 1000


async def _kiq(lib: str, endpoint: str, sizes: list[int], requests: int) -> dict[str, float]:
    if lib == "taskiq_sqs_http":
        sys.path.insert(0, str(ROOT))
    module = __import__(lib)
    broker = module.SQSBroker(
        QUEUE_NAME,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 - the stub's fake key
    )

    @broker.task(task_name="bench:bytes")
    async def task(data: str) -> None:  # never runs: publish only
        del data

    await broker.startup()
    try:
        out: dict[str, float] = {}
        for kb in sizes:
            text = payload_text(kb)

            async def call(text: str = text) -> None:
                await task.kiq(text)

            out[str(kb)] = await _timed(call, requests)
        return out
    finally:
        await broker.shutdown()


async def _client_ours(endpoint: str, queue_url: str, sizes: list[int], requests: int) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from taskiq_sqs_http.aws import Credentials, SQSClient

    creds = Credentials("test", "test")
    async with SQSClient(endpoint_url=endpoint, region_name="us-east-1", credentials=creds) as sqs:
        out: dict[str, float] = {}
        for kb in sizes:
            text = payload_text(kb)

            async def call(text: str = text) -> None:
                await sqs.send_message(queue_url, text)

            out[str(kb)] = await _timed(call, requests)
        return out


async def _client_theirs(endpoint: str, queue_url: str, sizes: list[int], requests: int) -> dict[str, float]:
    from aiobotocore.session import get_session  # pyright: ignore[reportMissingImports]

    kwargs: dict[str, Any] = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "test",
        "aws_secret_access_key": "test",
    }
    async with get_session().create_client("sqs", **kwargs) as sqs:
        out: dict[str, float] = {}
        for kb in sizes:
            text = payload_text(kb)

            async def call(text: str = text) -> None:
                await sqs.send_message(QueueUrl=queue_url, MessageBody=text)

            out[str(kb)] = await _timed(call, requests)
        return out


def _worker(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.level == "kiq":
        lib = "taskiq_sqs_http" if args.impl == "ours" else "taskiq_aio_sqs"
        result = asyncio.run(_kiq(lib, args.endpoint, sizes, args.requests))
    elif args.impl == "ours":
        result = asyncio.run(_client_ours(args.endpoint, args.queue_url, sizes, args.requests))
    else:
        result = asyncio.run(_client_theirs(args.endpoint, args.queue_url, sizes, args.requests))
    print(json.dumps(result))


# -- orchestration ------------------------------------------------------------------------------------
async def _queue(endpoint: str, action: str) -> str:
    """Create, purge or delete the benchmark queue on a real endpoint; returns its URL."""
    sys.path.insert(0, str(ROOT))
    from taskiq_sqs_http.aws import Credentials, SQSClient

    creds = Credentials("test", "test")
    async with SQSClient(endpoint_url=endpoint, region_name="us-east-1", credentials=creds) as sqs:
        url = await sqs.create_queue(QUEUE_NAME)
        if action == "purge":
            await sqs.purge_queue(url)
        elif action == "delete":
            await sqs.delete_queue(url)
        return url


def _measure(impl: str, endpoint: str, queue_url: str, args: argparse.Namespace) -> dict[str, float]:
    python = sys.executable if impl == "ours" else THEIRS_PYTHON
    command = [python, __file__, "--worker", "--impl", impl, "--endpoint", endpoint, "--queue-url", queue_url]
    command += ["--sizes", args.sizes, "--requests", str(args.requests), "--level", args.level]
    out = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"{impl} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def slope(sizes: list[int], values: list[float]) -> float:
    """Least-squares slope of ``values`` (ms) against ``sizes`` (KB), in µs per KB."""
    mean_x, mean_y = statistics.fmean(sizes), statistics.fmean(values)
    num = sum((x - mean_x) * (y - mean_y) for x, y in zip(sizes, values, strict=True))
    den = sum((x - mean_x) ** 2 for x in sizes)
    return num / den * 1000 if den else 0.0


def report(sizes: list[int], ours: dict[int, float], theirs: dict[int, float], meta: str) -> str:
    lines = [
        f"Client CPU per unbatched send, {meta}",
        "",
        "| payload | ours ms | 2.1.1 ms | ratio | target |",
        "|---|---|---|---|---|",
    ]
    for kb in sizes:
        ratio = ours[kb] / theirs[kb]
        verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
        lines.append(
            f"| {kb} KB | {ours[kb]:.3f} | {theirs[kb]:.3f} | {ratio:.2f}x | <= {TARGET_RATIO}x {verdict} |"
        )
    if len(sizes) > 1:
        s_ours = slope(sizes, [ours[k] for k in sizes])
        s_theirs = slope(sizes, [theirs[k] for k in sizes])
        ratio = s_ours / s_theirs if s_theirs else float("nan")
        verdict = "met" if ratio <= TARGET_SLOPE_RATIO else "MISSED"
        lines.append(
            f"| slope µs/KB | {s_ours:.2f} | {s_theirs:.2f} | {ratio:.2f}x | "
            f"<= {TARGET_SLOPE_RATIO}x {verdict} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--stub", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--impl", default="ours", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", default="", help=argparse.SUPPRESS)
    parser.add_argument("--queue-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint-url", default="", help="an SQS endpoint to use instead of the stub")
    parser.add_argument("--sizes", default="1,16,64,256", help="payload sizes in KB, comma-separated")
    parser.add_argument("--requests", type=int, default=300, help="sends per size per run")
    parser.add_argument("--repeats", type=int, default=5, help="runs per library (median taken)")
    parser.add_argument("--level", choices=("kiq", "client"), default="kiq")
    parser.add_argument("--json", type=Path, help="also write the raw runs and medians as JSON")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown")
    args = parser.parse_args()
    if args.stub:
        asyncio.run(_serve(args.stub))
        return 0
    if args.worker:
        _worker(args)
        return 0
    if not Path(THEIRS_PYTHON).exists():
        print(f"taskiq-aio-sqs python not found at {THEIRS_PYTHON}; run `make aiosqs`", file=sys.stderr)
        return 2
    stub: subprocess.Popen[str] | None = None
    if args.endpoint_url:
        endpoint = args.endpoint_url.rstrip("/")
        queue_url = asyncio.run(_queue(endpoint, "create"))
    else:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        stub = subprocess.Popen(
            [sys.executable, __file__, "--stub", str(port)], stdout=subprocess.PIPE, text=True
        )
        assert stub.stdout is not None
        stub.stdout.readline()
        endpoint = f"http://127.0.0.1:{port}"
        queue_url = endpoint + QUEUE_PATH
    try:
        runs: dict[str, list[dict[str, float]]] = {"ours": [], "theirs": []}
        for repeat in range(args.repeats):  # interleaved, so drift hits both sides alike
            for impl in ("ours", "theirs"):
                runs[impl].append(_measure(impl, endpoint, queue_url, args))
                if stub is None:
                    asyncio.run(_queue(endpoint, "purge"))
            print(f"run {repeat + 1}/{args.repeats}: ours {runs['ours'][-1]} theirs {runs['theirs'][-1]}")
    finally:
        if stub is not None:
            stub.terminate()
            stub.wait(timeout=10)
        else:
            asyncio.run(_queue(endpoint, "delete"))
    sizes = [int(s) for s in args.sizes.split(",")]
    medians = {
        impl: {kb: statistics.median(r[str(kb)] for r in impl_runs) for kb in sizes}
        for impl, impl_runs in runs.items()
    }
    meta = (
        f"level {args.level}, {'endpoint ' + endpoint if stub is None else 'local stub'}, "
        f"medians of {args.repeats} runs x {args.requests} sends "
        f"(process_time, user+system)"
    )
    table = report(sizes, medians["ours"], medians["theirs"], meta)
    print()
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "level": args.level,
                    "sizes_kb": sizes,
                    "runs": runs,
                    "median_ms": {impl: {str(k): v for k, v in m.items()} for impl, m in medians.items()},
                    "slope_us_per_kb": {
                        impl: slope(sizes, [m[k] for k in sizes]) for impl, m in medians.items()
                    },
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
