"""Broker benchmarks, ours against taskiq-aio-sqs 2.1.1, side by side in one run against one MiniStack.

Structure as in scripts/bench_client.py: every measurement runs in its own process (scripts/bench_worker.py;
ours with .venv's python, 2.1.1 with .venv-aiosqs's, so their botocore never meets ours), ours and theirs
interleaved (the order alternates per repeat), each cell the median of several runs, ratios ours / theirs.
Requests are counted on the wire by a small proxy on 127.0.0.1 in front of MiniStack (scripts/bench_proxy.py).

    make bench                                   # MiniStack + full run -> bench/results.md, results.png
    python scripts/bench.py [--repeats N] [--quick] [--no-theirs] [--out DIR]   # needs TEST_AWS_ENDPOINT_URL

What is measured (see bench/results.md for the table and the caveats):
  publish    tasks/s and client CPU/task: (a) sequential kiq(), no batching; (b) enable_batching=True,
             50 concurrent producers. Throughput runs to the last SendMessage(Batch) accepted by SQS; what
             reached the queue is counted (2.1.1's shutdown can lose or hang on buffered messages).
  consume    listen() + ack until N acked, prefetch (max_number_of_messages) 1 and 10, on a queue
             pre-filled with our client's send_message_batch; CPU is the consumer process's process_time.
  end to end publish + consume of the same row pair, per-task times added (derived from the above)
  requests   SQS requests per task, publish + consume, counted at the proxy, batching off and on
  idle       requests per hour of a listening worker on an empty queue (wait_time_seconds default and 20)
  cold start process start -> first task acked: wall, CPU (getrusage), peak RSS (ru_maxrss)
  import     python -X importtime, and the on-disk size of the runtime dependency closure minus taskiq's
"""

# matplotlib's stubs leave **kwargs untyped; everything else here is strictly typed.
# pyright: reportUnknownMemberType=false

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_client import _import_time as import_time_ms  # pyright: ignore[reportPrivateUsage]
from bench_proxy import CountingProxy

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "bench_worker.py"
THEIRS_PYTHON = os.environ.get("BENCH_AIOSQS_PYTHON", str(ROOT / ".venv-aiosqs/bin/python"))
TASK_NAME = "bench:noop"
PRODUCERS = 50
WORKER_TIMEOUT = 300.0


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

    publish: int
    consume_p1: int
    consume_p10: int
    requests: int
    idle_seconds: float
    repeats: int


FULL = Sizes(publish=900, consume_p1=300, consume_p10=900, requests=300, idle_seconds=20.0, repeats=3)
QUICK = Sizes(publish=60, consume_p1=20, consume_p10=60, requests=30, idle_seconds=2.0, repeats=1)


# ---------------------------------------------------------------------------------------------------
# Running workers and managing queues
# ---------------------------------------------------------------------------------------------------
class WorkerError(RuntimeError):
    pass


async def run_worker(impl: Impl, mode: str, endpoint: str, *args: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    proc = await asyncio.create_subprocess_exec(
        impl.python,
        str(WORKER),
        mode,
        "--lib",
        impl.lib,
        "--dist",
        impl.dist,
        "--endpoint",
        endpoint,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
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
    lines = stdout.decode().strip().splitlines()
    if not lines:
        raise WorkerError(f"{impl.key} {mode} printed nothing:\n{stderr.decode()[-3000:]}")
    return json.loads(lines[-1])


def task_body(i: int) -> str:
    """A taskiq message as both libraries put it on the wire (JSON text, no attributes)."""
    return json.dumps(
        {
            "task_id": uuid.uuid4().hex,
            "task_name": TASK_NAME,
            "labels": {},
            "labels_types": {},
            "args": [i],
            "kwargs": {},
        }
    )


class Queues:
    """Fresh queues per measurement, created, filled, counted and deleted with our own client."""

    def __init__(self, endpoint: str) -> None:
        from taskiq_sqs_http.aws import Credentials, SQSClient

        self._client = SQSClient(
            endpoint_url=endpoint, region_name="us-east-1", credentials=Credentials("test", "test")
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    @contextlib.asynccontextmanager
    async def fresh(self, prefill: int = 0) -> AsyncGenerator[tuple[str, str], None]:
        """Yield (name, url) of a new queue holding ``prefill`` tasks; delete it afterwards."""
        name = f"bench-{uuid.uuid4().hex[:16]}"
        url = await self._client.create_queue(name)
        try:
            if prefill:
                await self.fill(url, prefill)
            yield name, url
        finally:
            with contextlib.suppress(Exception):
                await self._client.delete_queue(url)

    async def fill(self, url: str, count: int) -> None:
        from taskiq_sqs_http.aws import SendMessageEntry

        chunks = [range(i, min(i + 10, count)) for i in range(0, count, 10)]
        slots = asyncio.Semaphore(8)

        async def send(chunk: range) -> None:
            async with slots:
                entries = [SendMessageEntry(str(i), task_body(i)) for i in chunk]
                result = await self._client.send_message_batch(url, entries)
                if result.failed:
                    raise WorkerError(f"prefill failed: {result.failed[:3]}")

        await asyncio.gather(*(send(c) for c in chunks))

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


# ---------------------------------------------------------------------------------------------------
# Measurements: each returns one run's numbers for one implementation
# ---------------------------------------------------------------------------------------------------
@dataclass
class Bench:
    endpoint: str
    queues: Queues
    sizes: Sizes
    log: Callable[[str], None]
    notes: list[str] = field(default_factory=list[str])

    async def publish(self, impl: Impl, batched: bool) -> dict[str, Any]:
        n = self.sizes.publish
        async with self.queues.fresh() as (name, url):
            extra = ["--batching", "--producers", str(PRODUCERS)] if batched else ["--producers", "1"]
            result = await run_worker(impl, "publish", self.endpoint, "--queue", name, "-n", str(n), *extra)
            visible, in_flight = await self.queues.count(url)
        delivered = visible + in_flight
        result["delivered"] = delivered
        result["n"] = n
        result["tps"] = delivered / result["send_wall"] if result["send_wall"] > 0 else 0.0
        result["cpu_ms"] = result["cpu"] / max(delivered, 1) * 1000
        return result

    async def consume(self, impl: Impl, prefetch: int, batched: bool, n: int) -> dict[str, Any]:
        async with self.queues.fresh(prefill=n) as (name, url):
            extra = ["--batching"] if batched else []
            result = await run_worker(
                impl,
                "consume",
                self.endpoint,
                "--queue",
                name,
                "-n",
                str(n),
                "--prefetch",
                str(prefetch),
                *extra,
            )
            visible, in_flight = await self.queues.count(url)
        result["left"] = visible + in_flight
        result["n"] = n
        result["tps"] = result["acked"] / result["wall"] if result["wall"] > 0 else 0.0
        result["cpu_ms"] = result["cpu"] / max(result["acked"], 1) * 1000
        return result

    async def cold(self, impl: Impl) -> dict[str, Any]:
        async with self.queues.fresh() as (name, _url):
            started = time.time()
            result = await run_worker(impl, "cold", self.endpoint, "--queue", name, "--timeout", "60")
        result["wall"] = result["acked_at"] - started
        return result

    async def requests(self, impl: Impl, batched: bool) -> dict[str, Any]:
        """Publish N then consume what arrived, both through the counting proxy: requests per task."""
        n = self.sizes.requests
        proxy = await CountingProxy(self.endpoint).start()
        try:
            async with self.queues.fresh() as (name, url):
                extra = ["--batching", "--producers", str(PRODUCERS)] if batched else ["--producers", "1"]
                pub = await run_worker(impl, "publish", proxy.url, "--queue", name, "-n", str(n), *extra)
                visible, _ = await self.queues.count(url)
                prefetch = "10" if batched else "1"
                batching = ["--batching"] if batched else []
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
                    *batching,
                )
        finally:
            await proxy.aclose()
        # Up to the moment the last ack completed: the polls a listener keeps making afterwards are idle
        # cost (measured below), not the cost of these tasks.
        by_op = proxy.counts(until=consumer["done_at"])
        total = sum(by_op.values())
        return {
            "n": n,
            "delivered": visible,
            "acked": consumer["acked"],
            "by_op": dict(sorted(by_op.items())),
            "after": sum(proxy.counts(since=consumer["done_at"]).values()),
            "total": total,
            "per_task": total / max(consumer["acked"], 1),
            "shutdown_error": pub.get("shutdown_error"),
        }

    async def idle(self, impl: Impl, wait: int | None) -> dict[str, Any]:
        """Requests in [first ReceiveMessage, +D) on an empty queue, extrapolated to one hour."""
        duration = self.sizes.idle_seconds
        proxy = await CountingProxy(self.endpoint).start()
        try:
            async with self.queues.fresh() as (name, _url):
                args = ["--queue", name, "--duration", str(duration + 1.5)]
                if wait is not None:
                    args += ["--wait", str(wait)]
                result = await run_worker(impl, "idle", proxy.url, *args)
        finally:
            await proxy.aclose()
        receives = [at for at, op in proxy.events if op == "ReceiveMessage"]
        if not receives:
            raise WorkerError(f"{impl.key} idle: no ReceiveMessage seen")
        counts = proxy.counts(receives[0], receives[0] + duration)
        result["window"] = duration
        result["by_op"] = dict(counts)
        result["per_hour"] = sum(counts.values()) * 3600.0 / duration
        return result


def import_broker_ms(impl: Impl, runs: int = 5) -> float:
    """``-X importtime`` of ``import pkg; pkg.SQSBroker``: the cumulative times of every top-level import
    from the package's own line on (ours imports its broker lazily, on first attribute access, as a
    separate top-level entry). Median of ``runs`` fresh processes, in ms."""
    samples: list[float] = []
    for _ in range(runs):
        out = subprocess.run(
            [impl.python, "-X", "importtime", "-c", f"import {impl.lib}; {impl.lib}.SQSBroker"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
            timeout=60,
        )
        total, counting = 0, False
        for line in out.stderr.splitlines():
            parts = line.split("|")
            if len(parts) != 3 or not parts[1].strip().isdigit():
                continue
            name = parts[2].rstrip()
            if name == " " + impl.lib:
                counting = True
            if counting and name.startswith(" ") and not name.startswith("  "):
                total += int(parts[1].strip())
        samples.append(total / 1000)
    return statistics.median(samples)


# ---------------------------------------------------------------------------------------------------
# Result rows
# ---------------------------------------------------------------------------------------------------
@dataclass
class Row:
    section: str
    metric: str
    unit: str
    ours: list[float]
    theirs: list[float]
    better: str = "lower"  # or "higher"; informs the reader, the target decides met / not met
    target: tuple[str, float] | None = None  # ("<=", 0.5): ratio ours/theirs must satisfy it
    note: str = ""
    digits: int = 2

    @staticmethod
    def _median(values: Sequence[float]) -> float | None:
        return statistics.median(values) if values else None

    @property
    def ours_median(self) -> float | None:
        return self._median(self.ours)

    @property
    def theirs_median(self) -> float | None:
        return self._median(self.theirs)

    @property
    def ratio(self) -> float | None:
        o, t = self.ours_median, self.theirs_median
        if o is None or t is None or t == 0:
            return None
        return o / t

    @property
    def status(self) -> str:
        if self.target is None:
            return "info"
        ratio = self.ratio
        if ratio is None:
            return "n/a"
        op, value = self.target
        ok = ratio <= value if op == "<=" else ratio >= value
        return "met" if ok else "NOT met"

    def cell(self, values: Sequence[float]) -> str:
        if not values:
            return "-"
        text = f"{statistics.median(values):,.{self.digits}f}"
        if len(values) > 1:
            text += f" ({min(values):,.{self.digits}f}-{max(values):,.{self.digits}f})"
        return text

    def target_text(self) -> str:
        if self.target is None:
            return "-"
        op, value = self.target
        return f"{'≤' if op == '<=' else '≥'}{value:g}x"


def _values(runs: list[dict[str, Any]], key: str) -> list[float]:
    return [float(r[key]) for r in runs]


def _e2e(pub: list[dict[str, Any]], cons: list[dict[str, Any]], key: str) -> list[float]:
    """Per repeat: seconds (or CPU ms) per task to publish plus to consume, paired run by run."""
    out: list[float] = []
    for p, c in zip(pub, cons, strict=False):
        if key == "tps":
            out.append(1.0 / (1.0 / p["tps"] + 1.0 / c["tps"]) if p["tps"] and c["tps"] else 0.0)
        else:
            out.append(p["cpu_ms"] + c["cpu_ms"])
    return out


# ---------------------------------------------------------------------------------------------------
# Output: markdown and chart
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
        f"Python {platform.python_version()}, MiniStack {ministack} (in-process emulator on the same host)"
    )


def markdown(
    rows: list[Row], details: list[str], args: argparse.Namespace, sizes: Sizes, machine: str, versions: str
) -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Broker benchmark: taskiq-sqs-http vs taskiq-aio-sqs 2.1.1",
        "",
        f"- Date: {now}" + (" (quick smoke run: small N, 1 repeat; not a result)" if args.quick else ""),
        f"- Machine: {machine}. Noisy shared host: numbers are medians of {sizes.repeats} interleaved "
        "runs, (min-max) in brackets.",
        f"- Versions: {versions}",
        f"- Sizes: publish N={sizes.publish} ({PRODUCERS} producers when batched), "
        f"consume N={sizes.consume_p1} (prefetch 1) / {sizes.consume_p10} (prefetch 10), "
        f"requests N={sizes.requests}, idle window {sizes.idle_seconds:g} s.",
        "- Command: `make bench` (MiniStack on a free 127.0.0.1 port, then `scripts/bench.py`).",
        "- Ratio is ours / 2.1.1. Targets: client CPU per task ≤0.5x unbatched and ≤0.3x batched; end-to-end "
        "throughput ≥2x with batching; SQS requests per task ≤0.3x; idle requests ≤0.1x; cold start wall "
        "≤0.5x; peak RSS ≤0.75x; installed runtime deps ≤0.2x (taskiq's share excluded).",
        "",
        "| Section | Metric | ours | 2.1.1 | ratio | target | status |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = row.ratio
        ratio_text = f"{ratio:.2f}x" if ratio is not None else "-"
        status = f"**{row.status}**" if row.status in ("met", "NOT met") else row.status
        metric = f"{row.metric} [{row.unit}]" + (f" ({row.note})" if row.note else "")
        lines.append(
            f"| {row.section} | {metric} | {row.cell(row.ours)} | {row.cell(row.theirs)} | {ratio_text} | "
            f"{row.target_text()} | {status} |"
        )
    met = sum(r.status == "met" for r in rows)
    missed = [r for r in rows if r.status == "NOT met"]
    lines += [
        "",
        f"Targets: {met} met, {len(missed)} not met"
        + (": " + "; ".join(f"{r.section} / {r.metric}" for r in missed) if missed else "")
        + ".",
        "",
        "## Details",
        "",
        *details,
        "",
        "## How to read it (caveats)",
        "",
        "- MiniStack runs on the same 2-core host as the client, so server time competes with client time; "
        "throughput numbers are bounded by MiniStack (ReceiveMessage in particular costs it ~10 ms) and are "
        "the noisiest rows. CPU per task is the client process's own `process_time` and is the better "
        "measure of what the library costs.",
        "- Publish throughput is measured to the moment the last SendMessage(Batch) was accepted (a wrapper "
        "on the client's send methods), so a slow or hanging `shutdown()` is reported separately, not as "
        "publishing time; CPU per task includes the shutdown.",
        "- End-to-end rows are derived: per-task publish time plus per-task consume time of the same repeat.",
        "- Requests per task are counted at a proxy in front of MiniStack and include startup calls "
        "(GetQueueUrl) and the receive in flight when the consumer stops; deterministic up to that last one. "
        "Idle requests are counted in a window that starts at the first ReceiveMessage, extrapolated to an "
        "hour. MiniStack honours long polling (an empty receive waits its WaitTimeSeconds), like SQS.",
        "- 2.1.1 with `enable_batching=True`: `shutdown()` called while its buffer still holds messages does "
        "not return (its batch task absorbs the cancellation and then waits on the empty buffer for ever, "
        "`sqs_broker.py:757` on Python 3.11); the benchmark cancels it after 10 s and counts what reached "
        "the queue (see Details). Called after the buffer drained, it returns at once.",
        "- 2.1.1 long-polls in 1 s steps whatever `wait_time_seconds` says (10 x 1 s plus one 0 s poll per "
        "cycle), hence its idle cost does not depend on the setting. Ours coalesces acks into "
        "DeleteMessageBatch (20 ms linger) even with batching off, hence fewer than 3 requests per task "
        "there.",
        "- Cold start includes interpreter start and imports; peak RSS is the child's own `ru_maxrss`. Both "
        "import taskiq (and with it aiohttp and pydantic), which is most of either side's import time.",
        "- Installed size sums the files each distribution's RECORD lists; taskiq's whole dependency "
        "closure is attributed to taskiq and excluded from both sides.",
    ]
    return "\n".join(lines) + "\n"


def chart(rows: list[Row], path: Path) -> bool:
    """Bar chart of the ratios (log scale) with each target; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    plotted = [r for r in rows if r.ratio is not None]
    if not plotted:
        return False
    labels = [f"{r.section}: {r.metric}" for r in plotted]
    ratios = [r.ratio or 0.0 for r in plotted]
    colors = [{"met": "#2e7d32", "NOT met": "#c62828"}.get(r.status, "#90a4ae") for r in plotted]
    fig, ax = plt.subplots(figsize=(11, 0.38 * len(plotted) + 1.6))
    y = list(range(len(plotted)))
    ax.barh(y, ratios, color=colors)
    for i, row in enumerate(plotted):
        if row.target is not None:
            ax.plot([row.target[1]] * 2, [i - 0.4, i + 0.4], color="black", linewidth=2)
        ax.text(ratios[i] * 1.05, i, f"{ratios[i]:.2f}x", va="center", fontsize=8)
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ours / taskiq-aio-sqs 2.1.1 (log scale; black tick = target; green met, red not met)")
    ax.set_title("taskiq-sqs-http vs taskiq-aio-sqs 2.1.1 on MiniStack")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# ---------------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------------
async def run(args: argparse.Namespace, endpoint: str, impls: list[Impl], sizes: Sizes) -> int:
    out = Path(args.out)
    start = time.perf_counter()

    def log(text: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f}s] {text}", flush=True)

    queues = Queues(endpoint)
    bench = Bench(endpoint, queues, sizes, log)
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def record(impl: Impl, scenario: str, result: dict[str, Any]) -> None:
        runs.setdefault((impl.key, scenario), []).append(result)
        shown = {
            k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items() if k != "per_dist"
        }
        log(f"{impl.key:6} {scenario:11} {json.dumps(shown)[:260]}")

    scenarios: list[tuple[str, Callable[[Impl], Any]]] = [
        ("publish_a", lambda i: bench.publish(i, batched=False)),
        ("publish_b", lambda i: bench.publish(i, batched=True)),
        ("consume_1", lambda i: bench.consume(i, 1, batched=False, n=sizes.consume_p1)),
        ("consume_10", lambda i: bench.consume(i, 10, batched=True, n=sizes.consume_p10)),
        ("cold", bench.cold),
    ]
    try:
        for repeat in range(sizes.repeats):
            order = impls if repeat % 2 == 0 else impls[::-1]  # interleave: drift hits both alike
            for scenario, measure in scenarios:
                for impl in order:
                    record(impl, scenario, await measure(impl))
        for batched in (False, True):  # counted, not timed: one run each
            for impl in impls:
                record(impl, "requests_" + ("on" if batched else "off"), await bench.requests(impl, batched))
        # Idle workers sleep in long polls: all of them at once, one window.
        idle_cases = [(impl, wait) for wait in (None, 20) for impl in impls]
        log(f"idle: {len(idle_cases)} listeners for {sizes.idle_seconds:g} s, concurrently")
        idle_results = await asyncio.gather(*(bench.idle(impl, wait) for impl, wait in idle_cases))
        for (impl, wait), result in zip(idle_cases, idle_results, strict=True):
            record(impl, f"idle_{wait or 'default'}", result)
        for impl in impls:
            result = await run_worker(impl, "sizes", endpoint)
            record(impl, "sizes", result)
            record(
                impl,
                "import",
                {"ms": import_time_ms(impl.python, impl.lib), "broker_ms": import_broker_ms(impl)},
            )
    finally:
        await queues.aclose()

    def get(impl: Impl, scenario: str) -> list[dict[str, Any]]:
        return runs.get((impl.key, scenario), [])

    def pair(scenario: str, key: str) -> tuple[list[float], list[float]]:
        return _values(get(OURS, scenario), key), _values(get(THEIRS, scenario), key)

    def e2e(pub: str, cons: str, key: str) -> tuple[list[float], list[float]]:
        return (
            _e2e(get(OURS, pub), get(OURS, cons), key),
            _e2e(get(THEIRS, pub), get(THEIRS, cons), key),
        )

    def scaled(values: tuple[list[float], list[float]], factor: float) -> tuple[list[float], list[float]]:
        return [v * factor for v in values[0]], [v * factor for v in values[1]]

    cpu_a, cpu_b = ("<=", 0.5), ("<=", 0.3)
    pub_a, pub_b = "publish (a) unbatched, sequential kiq", f"publish (b) batching, {PRODUCERS} producers"
    cons_1, cons_10 = "consume prefetch 1", "consume prefetch 10, batching"
    e2e_a, e2e_b = "end to end unbatched (a + prefetch 1)", "end to end batched (b + prefetch 10)"
    tps, cpu = ("throughput", "tasks/s"), ("client CPU", "ms/task")
    cold, imp = "cold start to first ack", "import (python -X importtime)"
    rows = [
        Row(pub_a, *tps, *pair("publish_a", "tps"), "higher", digits=0),
        Row(pub_a, *cpu, *pair("publish_a", "cpu_ms"), target=cpu_a, digits=3),
        Row(pub_b, *tps, *pair("publish_b", "tps"), "higher", digits=0),
        Row(pub_b, *cpu, *pair("publish_b", "cpu_ms"), target=cpu_b, digits=3),
        Row(cons_1, *tps, *pair("consume_1", "tps"), "higher", digits=0),
        Row(cons_1, *cpu, *pair("consume_1", "cpu_ms"), target=cpu_a, digits=3),
        Row(cons_10, *tps, *pair("consume_10", "tps"), "higher", digits=0),
        Row(cons_10, *cpu, *pair("consume_10", "cpu_ms"), target=cpu_b, digits=3),
        Row(e2e_a, *tps, *e2e("publish_a", "consume_1", "tps"), "higher", note="derived", digits=0),
        Row(e2e_a, *cpu, *e2e("publish_a", "consume_1", "cpu"), target=cpu_a, note="derived", digits=3),
        Row(e2e_b, *tps, *e2e("publish_b", "consume_10", "tps"), "higher", (">=", 2.0), "derived", 0),
        Row(e2e_b, *cpu, *e2e("publish_b", "consume_10", "cpu"), target=cpu_b, note="derived", digits=3),
        Row(
            "SQS requests, batching off",
            "requests",
            "per task",
            *pair("requests_off", "per_task"),
            note="no target: without batching, send + receive + delete per task is the floor",
            digits=3,
        ),
        Row(
            "SQS requests, batching on, prefetch 10",
            "requests",
            "per task",
            *pair("requests_on", "per_task"),
            target=("<=", 0.3),
            digits=3,
        ),
        Row(
            "idle listener, wait_time_seconds default (10)",
            "requests",
            "per hour",
            *pair("idle_default", "per_hour"),
            target=("<=", 0.1),
            digits=0,
        ),
        Row(
            "idle listener, wait_time_seconds=20",
            "requests",
            "per hour",
            *pair("idle_20", "per_hour"),
            target=("<=", 0.1),
            digits=0,
        ),
        Row(cold, "wall", "s", *pair("cold", "wall"), target=("<=", 0.5), digits=3),
        Row(cold, "CPU", "s", *pair("cold", "cpu"), digits=3),
        Row(
            cold,
            "peak RSS",
            "MB",
            *scaled(pair("cold", "maxrss_kb"), 1 / 1024),
            target=("<=", 0.75),
            digits=1,
        ),
        Row(imp, "`import <pkg>`", "ms", *pair("import", "ms"), note="ours resolves names lazily", digits=1),
        Row(imp, "`import <pkg>; <pkg>.SQSBroker`", "ms", *pair("import", "broker_ms"), digits=1),
        Row(
            "installed runtime deps, taskiq's closure excluded",
            "size",
            "MB",
            *scaled(pair("sizes", "total"), 1e-6),
            target=("<=", 0.2),
            digits=2,
        ),
    ]

    details: list[str] = []
    for impl in impls:
        pubs = get(impl, "publish_b")
        delivered = ", ".join(f"{r['delivered']}/{r['n']}" for r in pubs)
        shutdowns = sorted({str(r.get("shutdown_error")) for r in pubs if r.get("shutdown_error")})
        shutdown_walls = ", ".join(f"{r['shutdown_wall']:.2f}" for r in pubs)
        details.append(
            f"- {impl.label}, publish (b): delivered to the queue {delivered}; "
            f"shutdown took {shutdown_walls} s" + (f"; shutdown: {'; '.join(shutdowns)}" if shutdowns else "")
        )
        pub_a = ", ".join(f"{r['delivered']}/{r['n']}" for r in get(impl, "publish_a"))
        details.append(f"- {impl.label}, publish (a): delivered {pub_a}")
        for scenario in ("consume_1", "consume_10"):
            cons = get(impl, scenario)
            text = ", ".join(f"{r['acked']}/{r['n']} acked, {r['left']} left" for r in cons)
            problems = sorted({str(r.get("errors") or r.get("shutdown_error") or "") for r in cons} - {""})
            details.append(f"- {impl.label}, {scenario}: {text}" + (f"; {problems}" if problems else ""))
        for scenario in ("requests_off", "requests_on"):
            for r in get(impl, scenario):
                ops = ", ".join(f"{k} {v}" for k, v in r["by_op"].items())
                details.append(
                    f"- {impl.label}, {scenario}: {r['total']} requests for {r['acked']} tasks "
                    f"(delivered {r['delivered']}/{r['n']}): {ops}; not counted: {r['after']} requests "
                    "after the last ack (listener shutting down)"
                )
        for scenario in ("idle_default", "idle_20"):
            for r in get(impl, scenario):
                ops = ", ".join(f"{k} {v}" for k, v in r["by_op"].items())
                details.append(f"- {impl.label}, {scenario}: {ops} in {r['window']:g} s")
        for r in get(impl, "sizes"):
            dists = ", ".join(
                f"{k} {v / 1e6:.2f}" for k, v in sorted(r["per_dist"].items(), key=lambda kv: -kv[1])
            )
            details.append(f"- {impl.label}, runtime deps beyond taskiq's closure (MB): {dists or 'none'}")

    versions = ", ".join(
        f"{impl.label}: {runs.get((impl.key, 'sizes'), [{}])[0].get('version', '?')}" for impl in impls
    )
    text = markdown(rows, details, args, sizes, machine_note(endpoint), versions)
    (out / "results.md").write_text(text)
    drew = chart(rows, out / "results.png")
    print()
    print(text)
    log(
        f"wrote {out / 'results.md'}"
        + (f" and {out / 'results.png'}" if drew else " (no chart: matplotlib missing)")
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--repeats", type=int, default=None, help="runs per cell (default 3, quick 1)")
    parser.add_argument("--quick", action="store_true", help="smoke run: small N, 1 repeat")
    parser.add_argument("--no-theirs", action="store_true", help="skip taskiq-aio-sqs 2.1.1 (.venv-aiosqs)")
    parser.add_argument("--out", default=str(ROOT / "bench"), help="directory for results.md / results.png")
    args = parser.parse_args()
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
        sizes = Sizes(**{**sizes.__dict__, "repeats": max(1, args.repeats)})
    Path(args.out).mkdir(parents=True, exist_ok=True)
    return asyncio.run(run(args, endpoint, impls, sizes))


if __name__ == "__main__":
    sys.exit(main())
