"""Broker benchmarks, ours against taskiq-aio-sqs 2.1.1, side by side in one run against one MiniStack.

Three parts: **measure** (this module: each scenario runs worker processes, scripts/bench_worker.py, ours
with .venv's python and 2.1.1 with .venv-aiosqs's, ours and theirs interleaved, and records their raw
numbers), **rows** and **render** (scripts/bench_report.py: tables of medians and ratios, markdown, a
console table, the chart). Requests and connections are counted on the wire by the chaos suite's proxy
(tests/chaos/proxy.py) in front of MiniStack, the same for both libraries.

    make bench                       # MiniStack + full run -> bench/results.md, results.png, runs.json
    BENCH_QUICK=1 make bench         # smoke-sized run (what the integration test runs, without 2.1.1)
    python scripts/bench.py [--quick] [--no-theirs] [--only SECTION,...] [--out DIR]  # TEST_AWS_ENDPOINT_URL
    python scripts/bench.py --render bench/runs.json   # re-render tables and chart, no measuring

Sections: headline (publish, consume, end to end, requests, idle, cold start, import, installed size),
sequential (CLI worker with --max-async-tasks 1, plain listen/ack loop), payload (1 KB .. 4 MB), queues
(1/4/16 per worker), inflight (10/100/1000 held with heartbeats), processes (1/2/4 workers), offload
(1..32 MB through S3), memory (held messages, buffered tasks).
``BENCH_OURS_SRC=DIR`` puts DIR first on our workers' PYTHONPATH (to measure a snapshot of the package).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
OURS_SRC = os.environ.get("BENCH_OURS_SRC", "")
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # tests.chaos.proxy: the one HTTP proxy for faults and counting
if OURS_SRC:
    sys.path.insert(0, OURS_SRC)  # the queue helper below uses our client too

import bench_report  # noqa: E402

from tests.chaos.proxy import FaultPlan, FaultProxy, running_proxy  # noqa: E402

WORKER = SCRIPTS / "bench_worker.py"
THEIRS_PYTHON = os.environ.get("BENCH_AIOSQS_PYTHON", str(ROOT / ".venv-aiosqs/bin/python"))
TASK_NAME = "bench:noop"
WORKER_TIMEOUT = 300.0
KIB, MIB = 1024, 1024 * 1024
MAX_BATCH_BYTES = 1024 * 1024  # SendMessageBatch's total payload limit
# Consumers whose run ends while messages flow get a short long-poll wait: it changes nothing while the
# queue has messages, and the receive still on the wire at the end would otherwise hold shutdown() for up
# to the default 10 s (ours lets it finish so that no message stays hidden). Idle and request counts keep
# the libraries' defaults.
FAST_STOP_MODES = frozenset(
    {"consume", "cold", "listen-ack", "payload", "inflight", "offload-consumer", "pool"}
)
SECTIONS = (
    "headline",
    "sequential",
    "payload",
    "bytes",
    "queues",
    "inflight",
    "processes",
    "offload",
    "memory",
)


@dataclass(frozen=True)
class Impl:
    key: str
    label: str
    python: str
    lib: str
    dist: str


OURS = Impl("ours", "taskiq-sqs-http", sys.executable, "taskiq_sqs_http", "taskiq-sqs-http")
THEIRS = Impl("theirs", "taskiq-aio-sqs 2.1.1", THEIRS_PYTHON, "taskiq_aio_sqs", "taskiq-aio-sqs")


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does."""

    repeats: int = 3
    producers: int = 50
    publish: int = 600
    consume_p1: int = 200
    consume_p10: int = 600
    requests: int = 300
    idle_seconds: float = 20.0
    sequential_tasks: int = 200
    payload_sizes: tuple[int, ...] = (1 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, 1 * MIB, 4 * MIB)
    payload_tasks: int = 100
    payload_bytes: int = 8 * MIB  # per phase: fewer tasks for bigger payloads
    payload_repeats: int = 2
    queue_counts: tuple[int, ...] = (1, 4, 16)
    queue_tasks: int = 200
    inflight_counts: tuple[int, ...] = (10, 100, 1000)
    heartbeat_interval: float = 5.0
    visibility: int = 30
    hold_seconds: float = 20.0
    process_counts: tuple[int, ...] = (1, 2, 4)
    process_tasks: int = 1500
    process_repeats: int = 2
    offload_sizes: tuple[int, ...] = (1 * MIB, 4 * MIB, 16 * MIB, 32 * MIB)
    buffer_tasks: int = 10_000
    import_runs: int = 5
    bytes_repeats: int = 3


FULL = Sizes()
QUICK = Sizes(
    repeats=1,
    publish=60,
    consume_p1=20,
    consume_p10=60,
    requests=30,
    idle_seconds=1.5,
    sequential_tasks=20,
    payload_sizes=(1 * KIB, 256 * KIB, 1 * MIB),
    payload_tasks=10,
    payload_bytes=2 * MIB,
    payload_repeats=1,
    queue_counts=(1, 4),
    queue_tasks=20,
    inflight_counts=(10,),
    heartbeat_interval=1.0,
    visibility=10,
    hold_seconds=2.5,
    process_counts=(1, 2),
    process_tasks=60,
    process_repeats=1,
    offload_sizes=(1 * MIB,),
    buffer_tasks=300,
    import_runs=1,
    bytes_repeats=1,
)


class WorkerError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------------
# Worker processes and queues
# ---------------------------------------------------------------------------------------------------
def worker_env(impl: Impl, *extra_paths: str) -> dict[str, str]:
    paths = [*extra_paths]
    if impl is OURS and OURS_SRC:
        paths.insert(0, OURS_SRC)
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("PYTHONPATH", None)
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def worker_command(impl: Impl, mode: str, endpoint: str, args: Sequence[str]) -> list[str]:
    fast_stop = ["--wait", "1"] if mode in FAST_STOP_MODES and "--wait" not in args else []
    head = [impl.python, str(WORKER), mode, "--lib", impl.lib, "--dist", impl.dist, "--endpoint", endpoint]
    return [*head, *args, *fast_stop]


def _last_json(impl: Impl, mode: str, stdout: bytes, stderr: bytes) -> dict[str, Any]:
    lines = stdout.decode().strip().splitlines()
    if not lines:
        raise WorkerError(f"{impl.key} {mode} printed nothing:\n{stderr.decode()[-3000:]}")
    return json.loads(lines[-1])


async def run_worker(impl: Impl, mode: str, endpoint: str, *args: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        *worker_command(impl, mode, endpoint, args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=worker_env(impl),
        cwd=str(ROOT),
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), WORKER_TIMEOUT)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise WorkerError(f"{impl.key} {mode} did not finish within {WORKER_TIMEOUT:.0f} s") from None
    if proc.returncode != 0:
        raise WorkerError(f"{impl.key} {mode} failed ({proc.returncode}):\n{stderr.decode()[-3000:]}")
    return _last_json(impl, mode, stdout, stderr)


def task_body(i: int, payload: int = 0) -> str:
    """A taskiq message as both libraries put it on the wire (JSON text, no attributes)."""
    return json.dumps(
        {
            "task_id": uuid.uuid4().hex,
            "task_name": TASK_NAME,
            "labels": {},
            "labels_types": {},
            "args": ["x" * payload if payload else i],
            "kwargs": {},
        }
    )


class Queues:
    """Fresh queues and buckets per measurement, created, filled, counted and deleted with our client."""

    def __init__(self, endpoint: str) -> None:
        from taskiq_sqs_http.aws import Credentials, S3Client, SQSClient

        credentials = Credentials("test", "test")
        self._client = SQSClient(endpoint_url=endpoint, region_name="us-east-1", credentials=credentials)
        self._s3 = S3Client(endpoint_url=endpoint, region_name="us-east-1", credentials=credentials)
        self._bucket: str | None = None

    async def aclose(self) -> None:
        await self._client.aclose()
        await self._s3.aclose()

    async def bucket(self) -> str:
        """One S3 bucket for offloaded payloads, created on first use."""
        if self._bucket is None:
            name = f"bench-{uuid.uuid4().hex[:12]}"
            await self._s3.create_bucket(name)
            self._bucket = name
        return self._bucket

    @contextlib.asynccontextmanager
    async def fresh(self, prefill: int = 0, payload: int = 0) -> AsyncGenerator[tuple[str, str], None]:
        """Yield (name, url) of a new queue holding ``prefill`` tasks; delete it afterwards."""
        async with self.many(1, prefill, payload) as created:
            yield created[0]

    @contextlib.asynccontextmanager
    async def many(
        self, count: int, prefill: int = 0, payload: int = 0
    ) -> AsyncGenerator[list[tuple[str, str]], None]:
        created: list[tuple[str, str]] = []
        try:
            for _ in range(count):
                name = f"bench-{uuid.uuid4().hex[:16]}"
                created.append((name, await self._client.create_queue(name)))
            if prefill:
                await self.fill([url for _, url in created], prefill, payload)
            yield created
        finally:
            for _, url in created:
                with contextlib.suppress(Exception):
                    await self._client.delete_queue(url)

    async def fill(self, urls: Sequence[str], count: int, payload: int = 0) -> None:
        """``count`` tasks spread round-robin over ``urls``, in batches that respect the 1 MiB limit."""
        from taskiq_sqs_http.aws import SendMessageEntry

        per_batch = max(1, min(10, MAX_BATCH_BYTES // (payload + 512)))
        jobs: list[tuple[str, list[int]]] = []
        for q, url in enumerate(urls):
            mine = list(range(q, count, len(urls)))
            jobs += [(url, mine[i : i + per_batch]) for i in range(0, len(mine), per_batch)]
        slots = asyncio.Semaphore(8)

        async def send(url: str, chunk: list[int]) -> None:
            async with slots:
                entries = [SendMessageEntry(str(i), task_body(i, payload)) for i in chunk]
                result = await self._client.send_message_batch(url, entries)
                if result.failed:
                    raise WorkerError(f"prefill failed: {result.failed[:3]}")

        await asyncio.gather(*(send(url, chunk) for url, chunk in jobs))

    async def count(self, url: str) -> tuple[int, int]:
        """(visible + delayed, in flight) messages: MiniStack's counts are exact."""
        attrs = await self._client.get_queue_attributes(
            url,
            [
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesDelayed",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )
        visible = int(attrs.get("ApproximateNumberOfMessages", "0"))
        visible += int(attrs.get("ApproximateNumberOfMessagesDelayed", "0"))
        return visible, int(attrs.get("ApproximateNumberOfMessagesNotVisible", "0"))

    async def wait_empty(self, url: str, timeout: float, interval: float = 0.2) -> bool:
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / interval) + 2):
            visible, in_flight = await self.count(url)
            if visible + in_flight == 0:
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(interval)
        return False


@contextlib.contextmanager
def counting(endpoint: str) -> Generator[FaultProxy, None, None]:
    """The chaos proxy with no faults planned: it forwards and records (time, operation) per request."""
    with running_proxy(endpoint) as proxy:
        yield proxy


def _kb_to_mb(kb: float) -> float:
    return kb / 1024


# ---------------------------------------------------------------------------------------------------
# Measure: each section records raw per-run numbers under "scenario|impl"
# ---------------------------------------------------------------------------------------------------
# The round trip added in the sequential rows that model a network (same region, to real SQS: 5-20 ms).
SEQUENTIAL_RTT = 0.01


@dataclass
class Bench:
    endpoint: str
    queues: Queues
    sizes: Sizes
    impls: list[Impl]
    progress: Callable[[str], None]
    runs: bench_report.Runs = field(default_factory=dict[str, list[dict[str, Any]]])

    def record(self, impl: Impl, scenario: str, result: dict[str, Any]) -> None:
        self.runs.setdefault(bench_report.key(scenario, impl.key), []).append(result)
        self.progress(f"{impl.key:6} {scenario}")

    def orders(self, repeats: int) -> Iterator[list[Impl]]:
        """Ours and theirs alternate which goes first, so drift on the host hits both alike."""
        for repeat in range(repeats):
            yield self.impls if repeat % 2 == 0 else self.impls[::-1]

    # -- headline ------------------------------------------------------------------------------------
    async def publish(self, impl: Impl, batched: bool) -> dict[str, Any]:
        n = self.sizes.publish
        async with self.queues.fresh() as (name, url):
            extra = (
                ["--batching", "--producers", str(self.sizes.producers)] if batched else ["--producers", "1"]
            )
            result = await run_worker(impl, "publish", self.endpoint, "--queue", name, "-n", str(n), *extra)
            visible, in_flight = await self.queues.count(url)
        delivered = visible + in_flight
        return {
            **result,
            "delivered": delivered,
            "n": n,
            "tps": delivered / result["send_wall"] if result["send_wall"] > 0 else 0.0,
            "cpu_ms": result["cpu"] / max(delivered, 1) * 1000,
        }

    async def consume(self, impl: Impl, prefetch: int, batched: bool, n: int) -> dict[str, Any]:
        async with self.queues.fresh(prefill=n) as (name, url):
            args = ["--queue", name, "-n", str(n), "--prefetch", str(prefetch)] + (
                ["--batching"] if batched else []
            )
            result = await run_worker(impl, "consume", self.endpoint, *args)
            visible, in_flight = await self.queues.count(url)
        return {
            **result,
            "left": visible + in_flight,
            "n": n,
            "tps": result["acked"] / result["wall"] if result["wall"] > 0 else 0.0,
            "cpu_ms": result["cpu"] / max(result["acked"], 1) * 1000,
        }

    async def cold(self, impl: Impl) -> dict[str, Any]:
        async with self.queues.fresh() as (name, _url):
            started = time.time()
            result = await run_worker(impl, "cold", self.endpoint, "--queue", name, "--timeout", "60")
        return {**result, "wall": result["acked_at"] - started}

    async def requests(self, impl: Impl, batched: bool) -> dict[str, Any]:
        """Publish N then consume what arrived, both through the counting proxy: requests per task."""
        n = self.sizes.requests
        with counting(self.endpoint) as proxy:
            async with self.queues.fresh() as (name, url):
                producers = str(self.sizes.producers if batched else 1)
                extra = ["--batching"] if batched else []
                pub = await run_worker(
                    impl,
                    "publish",
                    proxy.url,
                    "--queue",
                    name,
                    "-n",
                    str(n),
                    "--producers",
                    producers,
                    *extra,
                )
                visible, _ = await self.queues.count(url)
                prefetch = "10" if batched else "1"
                consumer = await run_worker(
                    impl,
                    "consume",
                    proxy.url,
                    "--queue",
                    name,
                    "-n",
                    str(visible),
                    "--prefetch",
                    prefetch,
                    *extra,
                )
            # Up to the moment the last ack completed: the polls a listener keeps making afterwards are idle
            # cost (measured below), not the cost of these tasks.
            by_op = proxy.counts(until=consumer["done_at"])
            after = sum(proxy.counts(since=consumer["done_at"]).values())
        total = sum(by_op.values())
        return {
            "n": n,
            "delivered": visible,
            "acked": consumer["acked"],
            "by_op": dict(sorted(by_op.items())),
            "after": after,
            "total": total,
            "per_task": total / max(consumer["acked"], 1),
            "shutdown_error": pub.get("shutdown_error"),
        }

    async def idle(self, impl: Impl, wait: int | None) -> dict[str, Any]:
        """Requests in [first ReceiveMessage, +D) on an empty queue, extrapolated to one hour."""
        duration = self.sizes.idle_seconds
        with counting(self.endpoint) as proxy:
            async with self.queues.fresh() as (name, _url):
                # A listener stopped mid-poll lets that poll finish (up to the wait time): not idle cost.
                args = ["--queue", name, "--duration", str(duration + 1.5), "--shutdown-timeout", "2"]
                if wait is not None:
                    args += ["--wait", str(wait)]
                result = await run_worker(impl, "idle", proxy.url, *args)
            events = list(proxy.events)
        receives = [at for at, op in events if op == "ReceiveMessage"]
        if not receives:
            raise WorkerError(f"{impl.key} idle: no ReceiveMessage seen")
        counts = proxy.counts(receives[0], receives[0] + duration)
        return {
            **result,
            "window": duration,
            "by_op": dict(counts),
            "per_hour": sum(counts.values()) * 3600.0 / duration,
        }

    async def headline(self) -> None:
        s = self.sizes
        scenarios: list[tuple[str, Callable[[Impl], Awaitable[dict[str, Any]]]]] = [
            ("publish_a", lambda i: self.publish(i, batched=False)),
            ("publish_b", lambda i: self.publish(i, batched=True)),
            ("consume_1", lambda i: self.consume(i, 1, batched=False, n=s.consume_p1)),
            ("consume_10", lambda i: self.consume(i, 10, batched=True, n=s.consume_p10)),
            ("cold", self.cold),
        ]
        for order in self.orders(s.repeats):
            for scenario, measure in scenarios:
                for impl in order:
                    self.record(impl, scenario, await measure(impl))
        for batched in (False, True):  # counted, not timed: one run each
            for impl in self.impls:
                self.record(
                    impl, "requests_" + ("on" if batched else "off"), await self.requests(impl, batched)
                )
        # Idle workers sleep in long polls: all of them at once, one window.
        cases = [(impl, wait) for wait in (None, 20) for impl in self.impls]
        results = await asyncio.gather(*(self.idle(impl, wait) for impl, wait in cases))
        for (impl, wait), result in zip(cases, results, strict=True):
            self.record(impl, f"idle_{wait or 'default'}", result)
        for impl in self.impls:
            self.record(impl, "sizes", await run_worker(impl, "sizes", self.endpoint))
            runs = self.sizes.import_runs
            broker_ms = await asyncio.to_thread(
                import_ms, impl, f"import {impl.lib}; {impl.lib}.SQSBroker", runs
            )
            plain_ms = await asyncio.to_thread(import_ms, impl, f"import {impl.lib}", runs)
            self.record(impl, "import", {"ms": plain_ms, "broker_ms": broker_ms})

    # -- sequential consumption ------------------------------------------------------------------------
    async def cli_worker(self, impl: Impl, rtt: float = 0.0) -> dict[str, Any]:
        """``taskiq worker --max-async-tasks 1`` drains N tasks; rate from first receive to last delete.

        ``rtt``: seconds the proxy adds to every answer, as the network to real SQS does (loopback to
        MiniStack has none, which hides what a round trip costs).
        """
        n = self.sizes.sequential_tasks
        with counting(self.endpoint) as proxy:
            if rtt:
                proxy.set_plan(FaultPlan(rate=1.0, kinds=("delay",), delay_seconds=rtt))
            async with self.queues.fresh(prefill=n) as (name, url):
                env = {
                    **worker_env(impl, str(SCRIPTS)),
                    "BENCH_LIB": impl.lib,
                    "BENCH_ENDPOINT": proxy.url,
                    "BENCH_QUEUE": name,
                }
                command = [
                    impl.python,
                    "-m",
                    "taskiq",
                    "worker",
                    "bench_tasks:broker",
                    "--workers",
                    "1",
                    "--max-async-tasks",
                    "1",
                    "--no-configure-logging",
                ]
                with tempfile.TemporaryFile() as log:
                    proc = subprocess.Popen(  # noqa: ASYNC220 - polled below, never blocked on
                        command,
                        env=env,
                        cwd=str(ROOT),
                        stdout=subprocess.DEVNULL,
                        stderr=log,
                        start_new_session=True,
                    )
                    try:
                        drained = await self.queues.wait_empty(url, timeout=120)
                    finally:
                        stop_process_group(proc)
                    log.seek(0)
                    tail = log.read().decode(errors="replace")[-2000:]
            events = list(proxy.events)
        receives = [at for at, op in events if op == "ReceiveMessage"]
        deletes = [at for at, op in events if op.startswith("DeleteMessage")]
        if not drained or not receives or not deletes:
            raise WorkerError(f"{impl.key} taskiq worker did not drain {n} tasks:\n{tail}")
        wall = deletes[-1] - receives[0]
        return {"n": n, "wall": wall, "tps": n / wall if wall > 0 else 0.0}

    async def listen_ack(self, impl: Impl, rtt: float = 0.0) -> dict[str, Any]:
        n = self.sizes.sequential_tasks
        with counting(self.endpoint) as proxy:
            if rtt:
                proxy.set_plan(FaultPlan(rate=1.0, kinds=("delay",), delay_seconds=rtt))
            async with self.queues.fresh(prefill=n) as (name, _url):
                result = await run_worker(impl, "listen-ack", proxy.url, "--queue", name, "-n", str(n))
        return {**result, "tps": result["acked"] / result["wall"] if result["wall"] > 0 else 0.0}

    async def sequential(self) -> None:
        for order in self.orders(self.sizes.repeats):
            for impl in order:
                self.record(impl, "seq_worker", await self.cli_worker(impl))
                self.record(impl, "seq_listen", await self.listen_ack(impl))
                self.record(impl, "seq_worker_rtt", await self.cli_worker(impl, SEQUENTIAL_RTT))
                self.record(impl, "seq_listen_rtt", await self.listen_ack(impl, SEQUENTIAL_RTT))

    # -- payload size curve ----------------------------------------------------------------------------
    async def payload(self) -> None:
        s = self.sizes
        bucket = await self.queues.bucket()
        for order in self.orders(s.payload_repeats):
            for size in s.payload_sizes:
                n = max(3, min(s.payload_tasks, s.payload_bytes // size))
                for impl in order:
                    async with self.queues.many(2) as [(queue_a, _), (queue_b, url_b)]:
                        result = await run_worker(
                            impl,
                            "payload",
                            self.endpoint,
                            "--queue",
                            queue_a,
                            "--queue-b",
                            queue_b,
                            "--bucket",
                            bucket,
                            "--payload",
                            str(size),
                            "-n",
                            str(n),
                            "--producers",
                            str(min(n, s.producers)),
                            "--timeout",
                            "120",
                        )
                        visible, in_flight = await self.queues.count(url_b)
                    self.record(
                        impl, f"payload_{size}", {**result, "n": n, "delivered_b": visible + in_flight}
                    )

    # -- queues per worker -----------------------------------------------------------------------------
    async def queues_per_worker(self) -> None:
        """All listeners idle at once for one window, then each one's queues are filled in turn."""
        s = self.sizes
        window = s.idle_seconds
        cases = [(q, impl) for q in s.queue_counts for impl in self.impls]
        async with contextlib.AsyncExitStack() as stack:
            prepared: list[tuple[int, Impl, FaultProxy, list[str], asyncio.Task[dict[str, Any]]]] = []
            for q, impl in cases:
                proxy = stack.enter_context(counting(self.endpoint))
                created = await stack.enter_async_context(self.queues.many(q))
                names = ",".join(name for name, _ in created)
                worker = asyncio.create_task(
                    run_worker(
                        impl,
                        "queues",
                        proxy.url,
                        "--queues",
                        names,
                        "-n",
                        str(s.queue_tasks),
                        "--prefetch",
                        "10",
                        "--wait",
                        "20",
                        "--timeout",
                        str(window + 60 + 30 * len(cases)),
                        "--shutdown-timeout",
                        "2",
                    )
                )
                prepared.append((q, impl, proxy, [url for _, url in created], worker))
            firsts: list[float] = []
            for _q, _impl, proxy, _urls, worker in prepared:
                first = await first_event(proxy, "ReceiveMessage", worker, timeout=60)
                firsts.append(first)
            await asyncio.sleep(max(0.0, max(firsts) + window - time.monotonic()))
            for (q, impl, proxy, urls, worker), first in zip(prepared, firsts, strict=True):
                idle = proxy.counts(first, first + window)
                idle_connections = proxy.open_connections
                await self.queues.fill(urls, s.queue_tasks)
                result = await worker
                self.record(
                    impl,
                    f"queues_{q}",
                    {
                        **result,
                        "idle_by_op": dict(idle),
                        "per_hour": sum(idle.values()) * 3600.0 / window,
                        "cpu_ms": result["active_cpu"] / max(result["acked"], 1) * 1000,
                        "connections": proxy.peak_connections,
                        "idle_connections": idle_connections,
                    },
                )

    # -- tasks in flight -------------------------------------------------------------------------------
    async def inflight_case(self, impl: Impl, k: int) -> dict[str, Any]:
        s = self.sizes
        with counting(self.endpoint) as proxy:
            async with self.queues.fresh(prefill=k) as (name, _url):
                result = await run_worker(
                    impl,
                    "inflight",
                    proxy.url,
                    "--queue",
                    name,
                    "-n",
                    str(k),
                    "--prefetch",
                    "10",
                    "--heartbeat-interval",
                    str(s.heartbeat_interval),
                    "--visibility",
                    str(s.visibility),
                    "--duration",
                    str(s.hold_seconds),
                    "--timeout",
                    "120",
                )
            window = result["end_at"] - result["full_at"]
            counts = proxy.counts(result["full_at"], result["end_at"])
        beats = sum(v for op, v in counts.items() if op.startswith("ChangeMessageVisibility"))
        return {
            **result,
            "k": k,
            "by_op": dict(counts),
            "hb_per_min": beats * 60.0 / window if window > 0 else 0.0,
            "kb_per_task": (result["held_kb"] - result["base_kb"]) / max(result["held"], 1),
        }

    async def inflight(self) -> None:
        cases = [(impl, k) for k in self.sizes.inflight_counts for impl in self.impls]
        results = await asyncio.gather(*(self.inflight_case(impl, k) for impl, k in cases))
        for (impl, k), result in zip(cases, results, strict=True):
            self.record(impl, f"inflight_{k}", result)

    # -- worker processes ------------------------------------------------------------------------------
    async def processes_case(self, impl: Impl, p: int) -> dict[str, Any]:
        n = self.sizes.process_tasks
        with counting(self.endpoint) as proxy:
            async with self.queues.fresh(prefill=n) as (name, url):
                args = ["--queue", name, "--prefetch", "10", "--batching"]
                procs = [
                    await asyncio.create_subprocess_exec(
                        *worker_command(impl, "pool", proxy.url, args),
                        stdin=asyncio.subprocess.PIPE,
                        stdout=asyncio.subprocess.PIPE,
                        stderr=asyncio.subprocess.PIPE,
                        env=worker_env(impl),
                        cwd=str(ROOT),
                    )
                    for _ in range(p)
                ]
                try:
                    for proc in procs:
                        assert proc.stdout is not None
                        line = await asyncio.wait_for(proc.stdout.readline(), 120)
                        if line.strip() != b"READY":
                            raise WorkerError(f"{impl.key} pool worker did not start: {line!r}")
                    go = time.monotonic()
                    for proc in procs:
                        assert proc.stdin is not None
                        proc.stdin.write(b"go\n")
                        await proc.stdin.drain()
                    drained = await self.queues.wait_empty(url, timeout=180, interval=0.1)
                    for proc in procs:
                        assert proc.stdin is not None
                        proc.stdin.write(b"stop\n")
                        await proc.stdin.drain()
                    outputs = [await asyncio.wait_for(proc.communicate(), 60) for proc in procs]
                finally:
                    for proc in procs:
                        if proc.returncode is None:
                            proc.kill()
                            await proc.wait()
            events = list(proxy.events)
        results = [_last_json(impl, "pool", out, err) for out, err in outputs]
        deletes = [at for at, op in events if op.startswith("DeleteMessage") and at >= go]
        if not drained or not deletes:
            raise WorkerError(f"{impl.key} {p} workers did not drain {n} tasks")
        last = deletes[-1]
        requests = sum(1 for at, _ in events if go <= at <= last)
        acked = sum(r["acked"] for r in results)
        return {
            "n": n,
            "acked": acked,
            "wall": last - go,
            "tps": n / (last - go),
            "requests": requests,
            "per_task": requests / n,
            "cpu_ms": sum(r["cpu"] for r in results) / max(acked, 1) * 1000,
        }

    async def processes(self) -> None:
        for order in self.orders(self.sizes.process_repeats):
            for p in self.sizes.process_counts:
                for impl in order:
                    self.record(impl, f"procs_{p}", await self.processes_case(impl, p))

    # -- offloaded payloads ----------------------------------------------------------------------------
    async def offload(self) -> None:
        bucket = await self.queues.bucket()
        for size in self.sizes.offload_sizes:
            for impl in self.impls:
                async with self.queues.fresh() as (name, _url):
                    common = ["--queue", name, "--bucket", bucket, "--timeout", "120"]
                    producer = await run_worker(
                        impl, "offload-producer", self.endpoint, *common, "--payload", str(size)
                    )
                    consumer = await run_worker(impl, "offload-consumer", self.endpoint, *common)
                self.record(
                    impl,
                    f"offload_{size}",
                    {
                        "size": size,
                        "producer": producer,
                        "consumer": consumer,
                        "producer_mb": _kb_to_mb(producer["peak_kb"] - producer["base_kb"]),
                        "consumer_mb": _kb_to_mb(consumer["peak_kb"] - consumer["base_kb"]),
                        "producer_s": producer["wall"],
                        "consumer_s": consumer["wall"],
                    },
                )

    # -- memory ----------------------------------------------------------------------------------------
    async def per_byte(self) -> None:
        """scripts/bench_bytes.py: CPU per unbatched send by payload size against a stub server that costs
        no CPU of its own, the clean view of the per-byte path; its table goes into results.md as is."""
        if THEIRS not in self.impls:
            return  # it compares with 2.1.1 only
        with tempfile.TemporaryDirectory() as tmp:
            table = Path(tmp) / "bytes.md"
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(SCRIPTS / "bench_bytes.py"),
                "--repeats",
                str(self.sizes.bytes_repeats),
                "--markdown",
                str(table),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=worker_env(OURS),
                cwd=str(ROOT),
            )
            _, stderr = await asyncio.wait_for(proc.communicate(), WORKER_TIMEOUT)
            if proc.returncode != 0 or not table.exists():
                raise WorkerError(f"bench_bytes.py failed ({proc.returncode}):\n{stderr.decode()[-2000:]}")
            self.runs["bytes|bench"] = [{"markdown": table.read_text()}]
        self.progress("bytes  bench_bytes.py")

    async def memory(self) -> None:
        s = self.sizes
        for impl in self.impls:
            async with self.queues.fresh(prefill=10, payload=256 * KIB) as (name, _url):
                held = await run_worker(
                    impl,
                    "inflight",
                    self.endpoint,
                    "--queue",
                    name,
                    "-n",
                    "10",
                    "--prefetch",
                    "10",
                    "--duration",
                    "0.5",
                    "--timeout",
                    "60",
                )
            self.record(
                impl,
                "hold",
                {
                    **held,
                    "kb_per_message": (held["held_kb"] - held["base_kb"]) / max(held["held"], 1),
                    "peak_mb": _kb_to_mb(held["peak_kb"]),
                },
            )
            async with self.queues.fresh() as (name, _url):
                buffered = await run_worker(
                    impl, "buffer", self.endpoint, "--queue", name, "-n", str(s.buffer_tasks)
                )
            self.record(
                impl,
                "buffer",
                {
                    **buffered,
                    "bytes_per_task": (buffered["peak_kb"] - buffered["base_kb"])
                    * 1024
                    / max(buffered["kicked"], 1),
                    "peak_mb": _kb_to_mb(buffered["peak_kb"]),
                },
            )


def stop_process_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group we started (the taskiq CLI and its worker child), SIGKILL after 5 s:
    the measurement is over by then, and a graceful stop may wait out a long poll."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


async def first_event(proxy: FaultProxy, operation: str, worker: asyncio.Task[Any], timeout: float) -> float:
    """When the proxy first saw ``operation``; raises if the worker ended or nothing came in time."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.05) + 1):
        seen = [at for at, op in list(proxy.events) if op == operation]
        if seen:
            return seen[0]
        if worker.done():
            worker.result()  # raises the worker's error
            raise WorkerError(f"worker ended before any {operation}")
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    raise WorkerError(f"no {operation} within {timeout:.0f} s")


def import_ms(impl: Impl, statement: str, runs: int) -> float:
    """``-X importtime`` of ``statement``: the cumulative times of every top-level import from the
    package's own line on (ours imports its broker lazily, on first attribute access, as a separate
    top-level entry). Median of ``runs`` fresh processes, in ms."""
    samples: list[float] = []
    for _ in range(runs):
        out = subprocess.run(
            [impl.python, "-X", "importtime", "-c", statement],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
            timeout=60,
            env=worker_env(impl),
        )
        total, counting_lines = 0, False
        for line in out.stderr.splitlines():
            parts = line.split("|")
            if len(parts) != 3 or not parts[1].strip().isdigit():
                continue
            name = parts[2].rstrip()
            if name == " " + impl.lib:
                counting_lines = True
            if counting_lines and name.startswith(" ") and not name.startswith("  "):
                total += int(parts[1].strip())
        samples.append(total / 1000)
    return statistics.median(samples)


# ---------------------------------------------------------------------------------------------------
# Facts for the report: computed, not written down
# ---------------------------------------------------------------------------------------------------
def machine_note(endpoint: str) -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    ministack = "?"
    health = endpoint + "/_ministack/health"
    with contextlib.suppress(Exception), urllib.request.urlopen(health, timeout=2) as r:  # noqa: S310 - 127.0.0.1
        ministack = json.loads(r.read()).get("version", "?")
    return (
        f"{platform.system()} {platform.release()}, {model}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, MiniStack {ministack} (emulator on the same host)"
    )


def commit_note() -> str:
    def git(*args: str) -> str:
        with contextlib.suppress(Exception):
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        return ""

    head = git("rev-parse", "--short", "HEAD") or "?"
    if OURS_SRC:
        return os.environ.get("BENCH_OURS_NOTE") or f"commit {head}, package copied to {OURS_SRC}"
    dirty = git("status", "--porcelain", "--", "taskiq_sqs_http")
    return f"commit {head}" + (" with uncommitted changes in taskiq_sqs_http/" if dirty else "")


def installed_version(impl: Impl) -> str:
    code = f"import importlib.metadata as m; print(m.version({impl.dist!r}))"
    with contextlib.suppress(Exception):
        out = subprocess.run(
            [impl.python, "-c", code], capture_output=True, text=True, timeout=30, env=worker_env(impl)
        )
        return out.stdout.strip() or "?"
    return "?"


def caveats(cores: int | None) -> list[str]:
    return [
        f"MiniStack runs on the same {cores or '?'}-core host as the clients (and other work on a shared "
        "machine), so server time competes with client time; throughput rows are bounded by MiniStack and "
        "are the noisiest. CPU per task is the client process's own `process_time`, the better measure of "
        "what a library costs.",
        "Publish throughput runs to the moment the last SendMessage(Batch) was accepted (a wrapper on the "
        "client's send methods), so a slow or hanging `shutdown()` is reported apart (under the headline "
        "table); CPU per task includes the shutdown.",
        "End-to-end rows are derived: per-task publish time plus per-task consume time of the same repeat.",
        "Requests are counted at a proxy in front of MiniStack (tests/chaos/proxy.py with no faults) and "
        "include startup calls and the receive in flight when a consumer stops. Idle windows start at the "
        "first ReceiveMessage and are extrapolated to an hour; MiniStack honours long polling like SQS.",
        "2.1.1's batched `shutdown()` called while its buffer still holds messages does not return (its "
        "batch task absorbs the cancellation, then waits on the empty buffer); the headline publish (b) "
        "run cancels it after 10 s and counts what reached the queue. Other batched runs wait until every "
        "entry was handed to SendMessageBatch before calling `shutdown()`.",
        "2.1.1 long-polls in 1 s steps whatever `wait_time_seconds` says, so its idle cost is one request "
        "per second per queue; and it batches without checking the 1 MiB request limit, so ten 256 KB "
        "tasks in one SendMessageBatch are refused and dropped (payload table details).",
        "Memory rows read /proc/self/status: VmRSS after startup is the base, VmHWM (reset with "
        "clear_refs) the peak of the phase. Allocator reuse makes small deltas noisy.",
        "Cold start includes interpreter start and imports; both import taskiq (with aiohttp and pydantic), "
        "most of either side's import time. Installed size sums each distribution's RECORD; taskiq's whole "
        "dependency closure is excluded from both sides.",
    ]


def meta_for(
    sizes: Sizes,
    impls: list[Impl],
    endpoint: str,
    quick: bool,
    elapsed: float,
    versions: dict[str, str],
    commit: str,
) -> dict[str, Any]:
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_note(endpoint),
        "versions": ", ".join(f"{impl.dist} {versions.get(impl.key, '?')}" for impl in impls)
        + f" ({commit})",
        "command": "MiniStack on a free 127.0.0.1 port, then `scripts/bench.py`"
        + (" with BENCH_QUICK=1" if quick else ""),
        "quick": quick,
        "elapsed": elapsed,
        "impls": [impl.key for impl in impls],
        "labels": [impl.label for impl in impls],
        "sizes": asdict(sizes),
        "caveats": caveats(os.cpu_count()),
    }


# ---------------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------------
class _PlainConsole:
    def log(self, text: str) -> None:
        print(text.replace("[red]", "").replace("[/]", ""), flush=True)


class _PlainProgress:
    """What the run uses of rich's Progress, as plain lines, where rich (a dev tool) is not installed."""

    console = _PlainConsole()

    def add_task(self, description: str, total: int) -> int:
        del description, total
        return 0

    def update(self, task: int, description: str) -> None:
        del task
        print(description, flush=True)

    def advance(self, task: int) -> None:
        del task


@contextlib.contextmanager
def progress_bar() -> Generator[Any, None, None]:
    try:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    except ImportError:
        yield _PlainProgress()
        return
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"))
    with Progress(*columns, TimeElapsedColumn()) as bar:
        yield bar


async def measure(
    endpoint: str, impls: list[Impl], sizes: Sizes, sections: Sequence[str]
) -> bench_report.Runs:
    queues = Queues(endpoint)
    with progress_bar() as bar:
        overall = bar.add_task("sections", total=len(sections))
        started = time.perf_counter()

        def progress(text: str) -> None:
            bar.console.log(f"[{time.perf_counter() - started:6.1f}s] {text}")

        bench = Bench(endpoint, queues, sizes, impls, progress)
        steps: dict[str, Callable[[], Awaitable[None]]] = {
            "headline": bench.headline,
            "sequential": bench.sequential,
            "payload": bench.payload,
            "queues": bench.queues_per_worker,
            "inflight": bench.inflight,
            "processes": bench.processes,
            "offload": bench.offload,
            "memory": bench.memory,
            "bytes": bench.per_byte,
        }
        try:
            for section in sections:
                bar.update(overall, description=f"section: {section}")
                try:
                    await steps[section]()
                except WorkerError as exc:  # one broken section must not cost the others' numbers
                    progress(f"[red]{section} failed:[/] {exc}")
                    bench.runs.setdefault("errors|bench", []).append(
                        {"section": section, "error": str(exc)[:2000]}
                    )
                bar.advance(overall)
        finally:
            await queues.aclose()
    return bench.runs


def render(runs: bench_report.Runs, meta: dict[str, Any], out: Path) -> None:
    chart_path = out / "results.png"
    tables = bench_report.tables(runs, meta)
    drew = bench_report.chart(tables, chart_path)
    meta = {**meta, "chart": chart_path.name if drew else None}
    errors = runs.get("errors|bench", [])
    meta["details"] = [f"- section {e['section']} failed: `{e['error'][:600]}`" for e in errors]
    per_byte = runs.get("bytes|bench", [])
    if per_byte:
        meta["extra"] = [
            ("Per-byte send path, stub server (scripts/bench_bytes.py)", per_byte[0]["markdown"])
        ]
    (out / "results.md").write_text(bench_report.markdown(tables, meta))
    bench_report.console(tables)
    print(f"wrote {out / 'results.md'}" + (f" and {chart_path}" if drew else " (no chart)"))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument(
        "--repeats", type=int, default=None, help="runs per headline cell (default 3, quick 1)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("BENCH_QUICK") == "1",
        help="smoke run: small N, 1 repeat (also BENCH_QUICK=1)",
    )
    parser.add_argument("--no-theirs", action="store_true", help="skip taskiq-aio-sqs 2.1.1 (.venv-aiosqs)")
    parser.add_argument("--only", default="", help=f"comma-separated sections of {','.join(SECTIONS)}")
    parser.add_argument(
        "--out", default=str(ROOT / "bench"), help="directory for results.md / .png / runs.json"
    )
    parser.add_argument("--render", default="", help="re-render a saved runs.json; measure nothing")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.render:
        saved = json.loads(Path(args.render).read_text())
        render(saved["runs"], saved["meta"], out)
        return 0
    endpoint = os.environ.get("TEST_AWS_ENDPOINT_URL", "")
    if not endpoint.startswith(("http://127.0.0.1:", "http://localhost:")):
        print("TEST_AWS_ENDPOINT_URL must point at MiniStack on 127.0.0.1: run `make bench`", file=sys.stderr)
        return 2
    impls = [OURS]
    if not args.no_theirs:
        if not Path(THEIRS.python).exists():
            print(f"{THEIRS.python} not found: run `make aiosqs`, or pass --no-theirs", file=sys.stderr)
            return 2
        impls.append(THEIRS)
    sizes = QUICK if args.quick else FULL
    if args.repeats is not None:
        sizes = replace(sizes, repeats=max(1, args.repeats))
    sections = [s for s in args.only.split(",") if s] or list(SECTIONS)
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    started = time.perf_counter()
    commit = commit_note()  # before measuring: what was measured, not what is there an hour later
    runs = asyncio.run(measure(endpoint, impls, sizes, sections))
    versions = {impl.key: installed_version(impl) for impl in impls}
    meta = meta_for(sizes, impls, endpoint, args.quick, time.perf_counter() - started, versions, commit)
    (out / "runs.json").write_text(json.dumps({"meta": meta, "runs": runs}, indent=1, default=str))
    render(runs, meta, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
