"""Client CPU per request, ours against aiobotocore, side by side in one run.

Each measurement runs in its own process (ours in .venv, aiobotocore in .venv-aiosqs, so their botocore
never meets ours) against the same server: a tiny local stub (so the server is never the bottleneck) and,
when TEST_AWS_ENDPOINT_URL is set, MiniStack. CPU is the client process's own time.process_time(), so the
server's work is not counted. Each cell is the median of several runs; the table reports ours / theirs.

    python scripts/bench_client.py [--repeats 5] [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
THEIRS_PYTHON = os.environ.get("BENCH_AIOBOTOCORE_PYTHON", str(ROOT / ".venv-aiosqs/bin/python"))
OPS = ("SendMessage", "ReceiveMessage", "PutObject")
QUEUE_PATH = "/000000000000/bench"

# ---------------------------------------------------------------------------------------------------
# Stub server: answers SQS JSON and S3 PUT with canned bodies over keep-alive HTTP/1.1.
# ---------------------------------------------------------------------------------------------------
_RECEIVE_BODY = json.dumps(
    {
        "Messages": [
            {
                "MessageId": "6f1b2c57-0000-4000-8000-000000000001",
                "ReceiptHandle": "AQEB" + "x" * 180,
                "MD5OfBody": "5d41402abc4b2a76b9719d911017c592",
                "Body": '{"task_id":"abc","task_name":"bench:task","labels":{},"args":[],"kwargs":{}}',
                "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
            }
        ]
    }
).encode()
_SEND_BODY = json.dumps(
    {"MessageId": "6f1b2c57-0000-4000-8000-000000000001", "MD5OfMessageBody": "x" * 32}
).encode()


class _StubProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.continued = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            target = ""
            expect = False
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                lname = name.strip().lower()
                if lname == "content-length":
                    length = int(value.strip())
                elif lname == "x-amz-target":
                    target = value.strip()
                elif lname == "expect":
                    expect = value.strip().lower() == "100-continue"
            assert self.transport is not None
            if len(self.buffer) < end + 4 + length:
                if expect and not self.continued:  # botocore waits for this before sending a PUT body
                    self.continued = True
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                return
            self.continued = False
            self.buffer = self.buffer[end + 4 + length :]
            if target.endswith("ReceiveMessage"):
                body, ctype = _RECEIVE_BODY, "application/x-amz-json-1.0"
            elif target:
                body, ctype = _SEND_BODY, "application/x-amz-json-1.0"
            else:
                body, ctype = b"", "application/xml"
            assert self.transport is not None
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype.encode() + b"\r\n"
                b'x-amzn-RequestId: r\r\nETag: "e"\r\nContent-Length: '
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )


async def _serve_stub(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_StubProtocol, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


# ---------------------------------------------------------------------------------------------------
# Workers: one process per (implementation, op, concurrency, endpoint).
# ---------------------------------------------------------------------------------------------------
async def _drive(call: Any, requests: int, concurrency: int) -> dict[str, float]:
    for _ in range(min(50, requests)):  # warm the pool and the caches
        await call()
    per_worker = requests // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            await call()

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    done = per_worker * concurrency
    return {"cpu_ms": cpu / done * 1000, "rps": done / wall}


async def _run_ours(endpoint: str, op: str, requests: int, concurrency: int) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from taskiq_sqs_http.aws import Credentials, HTTPSession, S3Client, SQSClient

    creds = Credentials("AKIDEXAMPLE", "secret")
    async with HTTPSession() as http:
        sqs = SQSClient(endpoint_url=endpoint, region_name="us-east-1", credentials=creds, session=http)
        s3 = S3Client(endpoint_url=endpoint, region_name="us-east-1", credentials=creds, session=http)
        queue = endpoint + QUEUE_PATH
        if "127.0.0.1" in endpoint and op != "PutObject" and os.environ.get("BENCH_REAL") == "1":
            queue = await sqs.create_queue("bench")
        if os.environ.get("BENCH_REAL") == "1" and op == "PutObject":
            await s3.create_bucket("bench")

        async def send() -> None:
            await sqs.send_message(queue, "hello")

        async def receive() -> None:
            await sqs.receive_message(queue, max_number_of_messages=1, wait_time_seconds=0)

        async def put() -> None:
            await s3.put_object("bench", "k", b"x" * 200)

        call = {"SendMessage": send, "ReceiveMessage": receive, "PutObject": put}[op]
        try:
            return await _drive(call, requests, concurrency)
        finally:
            await sqs.aclose()
            await s3.aclose()


async def _run_theirs(endpoint: str, op: str, requests: int, concurrency: int) -> dict[str, float]:
    from aiobotocore.config import AioConfig  # pyright: ignore[reportMissingImports]
    from aiobotocore.session import get_session  # pyright: ignore[reportMissingImports]

    session = get_session()
    config = AioConfig(max_pool_connections=64, s3={"addressing_style": "path"})
    kwargs: dict[str, Any] = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "AKIDEXAMPLE",
        "aws_secret_access_key": "secret",
        "config": config,
    }
    async with (
        session.create_client("sqs", **kwargs) as sqs,
        session.create_client("s3", **kwargs) as s3,
    ):
        queue = endpoint + QUEUE_PATH
        if os.environ.get("BENCH_REAL") == "1" and op != "PutObject":
            queue = (await sqs.create_queue(QueueName="bench"))["QueueUrl"]
        if os.environ.get("BENCH_REAL") == "1" and op == "PutObject":
            await s3.create_bucket(Bucket="bench")

        async def send() -> None:
            await sqs.send_message(QueueUrl=queue, MessageBody="hello")

        async def receive() -> None:
            await sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, WaitTimeSeconds=0)

        async def put() -> None:
            await s3.put_object(Bucket="bench", Key="k", Body=b"x" * 200)

        call = {"SendMessage": send, "ReceiveMessage": receive, "PutObject": put}[op]
        return await _drive(call, requests, concurrency)


def _worker_main(args: argparse.Namespace) -> None:
    runner = _run_ours if args.impl == "ours" else _run_theirs
    result = asyncio.run(runner(args.endpoint, args.op, args.requests, args.concurrency))
    print(json.dumps(result))


# ---------------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------------
def _measure(
    impl: str, endpoint: str, op: str, requests: int, concurrency: int, real: bool
) -> dict[str, float]:
    python = sys.executable if impl == "ours" else THEIRS_PYTHON
    env = {**os.environ, "BENCH_REAL": "1" if real else "0"}
    out = subprocess.run(
        [
            python,
            __file__,
            "--worker",
            "--impl",
            impl,
            "--endpoint",
            endpoint,
            "--op",
            op,
            "--requests",
            str(requests),
            "--concurrency",
            str(concurrency),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{impl} {op} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _import_time(python: str, module: str) -> float:
    """Cumulative import time of ``module`` in ms (median of 5 fresh processes)."""
    samples = []
    for _ in range(5):
        out = subprocess.run(
            [python, "-X", "importtime", "-c", f"import {module}"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        )
        total = 0
        for line in out.stderr.splitlines():
            parts = line.split("|")
            if len(parts) == 3 and parts[2].rstrip() == " " + module:
                total = int(parts[1].strip())
        samples.append(total / 1000)
    return statistics.median(samples)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])  # pyright: ignore[reportOptionalMemberAccess]
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--stub", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--impl", default="ours")
    parser.add_argument("--endpoint", default="")
    parser.add_argument("--op", default="SendMessage")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ministack-requests", type=int, default=400)
    args = parser.parse_args()
    if args.stub:
        asyncio.run(_serve_stub(args.stub))
        return 0
    if args.worker:
        _worker_main(args)
        return 0
    if not Path(THEIRS_PYTHON).exists():
        print(f"aiobotocore python not found at {THEIRS_PYTHON}; run `make aiosqs`", file=sys.stderr)
        return 2

    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    stub = subprocess.Popen(
        [sys.executable, __file__, "--stub", str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert stub.stdout is not None
        stub.stdout.readline()
        targets = [("stub", f"http://127.0.0.1:{port}", args.requests, False)]
        ministack = os.environ.get("TEST_AWS_ENDPOINT_URL")
        if ministack:
            targets.append(("ministack", ministack, args.ministack_requests, True))
        rows = [
            [
                "server",
                "operation",
                "conc",
                "ours CPU ms/req",
                "theirs CPU ms/req",
                "CPU ratio",
                "ours req/s",
                "theirs req/s",
                "req/s ratio",
            ]
        ]
        for server, endpoint, requests, real in targets:
            for op in OPS:
                for concurrency in (1, 16):
                    ours, theirs = [], []
                    for _ in range(args.repeats):  # interleave so drift hits both sides alike
                        ours.append(_measure("ours", endpoint, op, requests, concurrency, real))
                        theirs.append(_measure("theirs", endpoint, op, requests, concurrency, real))
                    o_cpu = statistics.median(r["cpu_ms"] for r in ours)
                    t_cpu = statistics.median(r["cpu_ms"] for r in theirs)
                    o_rps = statistics.median(r["rps"] for r in ours)
                    t_rps = statistics.median(r["rps"] for r in theirs)
                    rows.append(
                        [
                            server,
                            op,
                            str(concurrency),
                            f"{o_cpu:.3f}",
                            f"{t_cpu:.3f}",
                            f"{o_cpu / t_cpu:.2f}x",
                            f"{o_rps:.0f}",
                            f"{t_rps:.0f}",
                            f"{o_rps / t_rps:.2f}x",
                        ]
                    )
                    print(_table(rows[:1] + rows[-1:]).splitlines()[-1], flush=True)
        print()
        print(f"Client benchmark, medians of {args.repeats} runs (target: SendMessage CPU ratio <= 0.45x)")
        print(_table(rows))
        ours_import = _import_time(sys.executable, "taskiq_sqs_http.aws")
        theirs_import = _import_time(THEIRS_PYTHON, "aiobotocore.session")
        print()
        print(
            _table(
                [
                    ["import", "ms (median of 5)"],
                    ["taskiq_sqs_http.aws", f"{ours_import:.1f}"],
                    ["aiobotocore.session", f"{theirs_import:.1f}"],
                    ["ratio", f"{ours_import / theirs_import:.2f}x"],
                ]
            )
        )
    finally:
        stub.terminate()
        stub.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
