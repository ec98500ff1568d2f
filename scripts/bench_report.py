"""Rows and rendering for the broker benchmark (scripts/bench.py measures, this module reports).

``rows(runs, meta)`` turns the raw per-run numbers into tables of rows (ours, 2.1.1, ratio, target);
``markdown``, ``console`` and ``chart`` render them. Nothing here measures or talks to a server, so a saved
``runs.json`` can be re-rendered: ``python scripts/bench.py --render bench/runs.json``.
"""

# matplotlib's stubs leave **kwargs untyped; everything else here is strictly typed.
# pyright: reportUnknownMemberType=false

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Runs = dict[str, list[dict[str, Any]]]
Better = Literal["lower", "higher"]
KIB = 1024
MIB = 1024 * 1024


def key(scenario: str, impl: str) -> str:
    return f"{scenario}|{impl}"


def size_label(size: int) -> str:
    return f"{size // MIB} MB" if size >= MIB else f"{size // KIB} KB"


@dataclass
class Row:
    case: str
    metric: str
    unit: str
    ours: list[float]
    theirs: list[float]
    better: Better = "lower"
    target: tuple[str, float] | None = None  # ("<=", 0.6): the ratio ours/theirs must satisfy it
    digits: int = 2
    note: str = ""

    @property
    def ours_median(self) -> float | None:
        return statistics.median(self.ours) if self.ours else None

    @property
    def theirs_median(self) -> float | None:
        return statistics.median(self.theirs) if self.theirs else None

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
        return "met" if (ratio <= value if op == "<=" else ratio >= value) else "NOT met"

    def cell(self, values: Sequence[float]) -> str:
        if not values:
            return "-"
        text = f"{statistics.median(values):,.{self.digits}f}"
        if len(values) > 1 and min(values) != max(values):
            text += f" ({min(values):,.{self.digits}f}-{max(values):,.{self.digits}f})"
        return text

    def target_text(self) -> str:
        if self.target is None:
            return "-"
        op, value = self.target
        return f"{'≤' if op == '<=' else '≥'}{value:g}x"


@dataclass
class Table:
    """One results table; ``curve`` tables chart each metric over their cases (x axis)."""

    slug: str
    title: str
    intro: str
    rows: list[Row]
    curve: bool = True
    details: list[str] = field(default_factory=list[str])


class Source:
    """Looks up runs of ours and theirs."""

    def __init__(self, runs: Runs, impls: Sequence[str]) -> None:
        self.runs = runs
        self.impls = list(impls)

    def get(self, scenario: str, impl: str) -> list[dict[str, Any]]:
        return self.runs.get(key(scenario, impl), [])

    def pair(
        self, scenario: str, value: Callable[[dict[str, Any]], float | None]
    ) -> tuple[list[float], list[float]]:
        ours, theirs = (
            [v for v in (value(r) for r in self.get(scenario, impl)) if v is not None]
            for impl in ("ours", "theirs")
        )
        return ours, theirs

    def field(self, scenario: str, name: str, scale: float = 1.0) -> tuple[list[float], list[float]]:
        return self.pair(scenario, lambda r: float(r[name]) * scale if r.get(name) is not None else None)


def _per(numerator: float, denominator: float, scale: float = 1.0) -> float | None:
    return numerator / denominator * scale if denominator else None


# ---------------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------------
def headline_table(src: Source, meta: dict[str, Any]) -> Table:
    producers = meta["sizes"]["producers"]
    cpu_a, cpu_b = ("<=", 0.5), ("<=", 0.3)
    pub_a, pub_b = "publish (a) unbatched, sequential kiq", f"publish (b) batching, {producers} producers"
    cons_1, cons_10 = "consume prefetch 1", "consume prefetch 10, batching"
    e2e_a, e2e_b = "end to end unbatched (a + prefetch 1)", "end to end batched (b + prefetch 10)"
    cold, imp = "cold start to first ack", "import (python -X importtime)"

    def e2e(pub: str, cons: str, kind: str) -> tuple[list[float], list[float]]:
        out: list[list[float]] = []
        for impl in ("ours", "theirs"):
            values: list[float] = []
            for p, c in zip(src.get(pub, impl), src.get(cons, impl), strict=False):
                if kind == "tps":
                    ok = p["tps"] and c["tps"]
                    values.append(1.0 / (1.0 / p["tps"] + 1.0 / c["tps"]) if ok else 0.0)
                else:
                    values.append(p["cpu_ms"] + c["cpu_ms"])
            out.append(values)
        return out[0], out[1]

    tps, cpu = ("throughput", "tasks/s"), ("client CPU", "ms/task")
    rows = [
        Row(pub_a, *tps, *src.field("publish_a", "tps"), "higher", digits=0),
        Row(pub_a, *cpu, *src.field("publish_a", "cpu_ms"), target=cpu_a, digits=3),
        Row(pub_b, *tps, *src.field("publish_b", "tps"), "higher", digits=0),
        Row(pub_b, *cpu, *src.field("publish_b", "cpu_ms"), target=cpu_b, digits=3),
        Row(cons_1, *tps, *src.field("consume_1", "tps"), "higher", digits=0),
        Row(cons_1, *cpu, *src.field("consume_1", "cpu_ms"), target=cpu_a, digits=3),
        Row(cons_10, *tps, *src.field("consume_10", "tps"), "higher", digits=0),
        Row(cons_10, *cpu, *src.field("consume_10", "cpu_ms"), target=cpu_b, digits=3),
        Row(e2e_a, *tps, *e2e("publish_a", "consume_1", "tps"), "higher", note="derived", digits=0),
        Row(e2e_a, *cpu, *e2e("publish_a", "consume_1", "cpu"), target=cpu_a, note="derived", digits=3),
        Row(e2e_b, *tps, *e2e("publish_b", "consume_10", "tps"), "higher", (">=", 2.0), 0, "derived"),
        Row(e2e_b, *cpu, *e2e("publish_b", "consume_10", "cpu"), target=cpu_b, note="derived", digits=3),
        Row(
            "SQS requests, batching off",
            "requests",
            "per task",
            *src.field("requests_off", "per_task"),
            digits=3,
            note="send + receive + delete per task is the floor without batching",
        ),
        Row(
            "SQS requests, batching on, prefetch 10",
            "requests",
            "per task",
            *src.field("requests_on", "per_task"),
            target=("<=", 0.3),
            digits=3,
        ),
        Row(
            "idle listener, wait_time_seconds default (10)",
            "requests",
            "per hour",
            *src.field("idle_default", "per_hour"),
            target=("<=", 0.1),
            digits=0,
        ),
        Row(
            "idle listener, wait_time_seconds=20",
            "requests",
            "per hour",
            *src.field("idle_20", "per_hour"),
            target=("<=", 0.1),
            digits=0,
        ),
        Row(cold, "wall", "s", *src.field("cold", "wall"), target=("<=", 0.5), digits=3),
        Row(cold, "CPU", "s", *src.field("cold", "cpu"), digits=3),
        Row(cold, "peak RSS", "MB", *src.field("cold", "maxrss_kb", 1 / 1024), target=("<=", 0.75), digits=1),
        Row(
            imp,
            "`import <pkg>`",
            "ms",
            *src.field("import", "ms"),
            note="ours resolves names lazily",
            digits=1,
        ),
        Row(imp, "`import <pkg>; <pkg>.SQSBroker`", "ms", *src.field("import", "broker_ms"), digits=1),
        Row(
            "installed runtime deps, taskiq's closure excluded",
            "size",
            "MB",
            *src.field("sizes", "total", 1e-6),
            target=("<=", 0.2),
            digits=2,
        ),
    ]
    details: list[str] = []
    for impl, label in zip(("ours", "theirs"), meta["labels"], strict=False):
        pubs = src.get("publish_b", impl)
        if pubs:
            delivered = ", ".join(f"{r['delivered']}/{r['n']}" for r in pubs)
            shutdowns = sorted({str(r["shutdown_error"]) for r in pubs if r.get("shutdown_error")})
            walls = ", ".join(f"{r['shutdown_wall']:.2f}" for r in pubs)
            details.append(
                f"- {label}, publish (b): delivered to the queue {delivered}; shutdown took {walls} s"
                + (f"; shutdown: {'; '.join(shutdowns)}" if shutdowns else "")
            )
        for scenario in ("consume_1", "consume_10"):
            cons = src.get(scenario, impl)
            if cons:
                text = ", ".join(f"{r['acked']}/{r['n']} acked, {r['left']} left" for r in cons)
                details.append(f"- {label}, {scenario}: {text}")
        for scenario in ("requests_off", "requests_on"):
            for r in src.get(scenario, impl):
                ops = ", ".join(f"{k} {v}" for k, v in r["by_op"].items())
                details.append(
                    f"- {label}, {scenario}: {r['total']} requests for {r['acked']} tasks: {ops} "
                    f"({r['after']} more after the last ack, not counted)"
                )
        for scenario in ("idle_default", "idle_20"):
            for r in src.get(scenario, impl):
                ops = ", ".join(f"{k} {v}" for k, v in r["by_op"].items())
                details.append(f"- {label}, {scenario}: {ops} in {r['window']:g} s")
        for r in src.get("sizes", impl):
            dists = ", ".join(
                f"{k} {v / 1e6:.2f}" for k, v in sorted(r["per_dist"].items(), key=lambda kv: -kv[1])
            )
            details.append(f"- {label}, runtime deps beyond taskiq's closure (MB): {dists or 'none'}")
    return Table(
        "headline",
        "Headline: small tasks, one queue",
        "Targets: client CPU per task ≤0.5x unbatched and ≤0.3x batched; end-to-end throughput ≥2x with "
        "batching; SQS requests per task ≤0.3x; idle requests ≤0.1x; cold start wall ≤0.5x; peak RSS "
        "≤0.75x; installed runtime deps ≤0.2x (taskiq's share excluded).",
        rows,
        curve=False,
        details=details,
    )


def _slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x (None for fewer than two distinct x)."""
    if len({x for x, _ in points}) < 2:
        return None
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den


def payload_table(src: Source, meta: dict[str, Any]) -> Table:
    sizes: list[int] = meta["sizes"]["payload_sizes"]
    phases = [
        ("unbatched", "publish, unbatched kiq"),
        ("batched", "publish, batching"),
        ("consume", "consume + ack (prefetch 10)"),
    ]
    rows: list[Row] = []
    for size in sizes:
        scenario = f"payload_{size}"
        for phase, label in phases:
            done = "acked" if phase == "consume" else "kicked"
            lost = [
                f"{impl_label} delivered {r['delivered_b']}/{r['batched']['kicked']}"
                for impl, impl_label in (("ours", "ours"), ("theirs", "2.1.1"))
                for r in src.get(scenario, impl)[:1]
                if phase == "batched" and r["delivered_b"] < r["batched"]["kicked"]
            ]
            rows.append(
                Row(
                    size_label(size),
                    label,
                    "ms/task",
                    *src.pair(scenario, lambda r, p=phase, d=done: _per(r[p]["cpu"], r[p][d], 1000)),
                    target=("<=", 0.6),
                    digits=3,
                    note="; ".join(lost) + (": a batch over 1 MiB was refused and dropped" if lost else ""),
                )
            )
    inline = [s for s in sizes if s <= 256 * KIB]
    for phase, label in phases:
        slopes: list[list[float]] = []
        for impl in ("ours", "theirs"):
            points: list[tuple[float, float]] = []
            for size in inline:
                for r in src.get(f"payload_{size}", impl):
                    done = r[phase]["acked" if phase == "consume" else "kicked"]
                    if done:
                        points.append((size / KIB, r[phase]["cpu"] / done * 1e6))
            slope = _slope(points)
            slopes.append([slope] if slope is not None else [])
        rows.append(
            Row(
                f"slope {size_label(inline[0])}-{size_label(inline[-1])}" if inline else "slope",
                label,
                "µs/KB",
                slopes[0],
                slopes[1],
                target=("<=", 0.7),
                digits=2,
                note="least-squares fit over all runs",
            )
        )
    details: list[str] = []
    for impl, label in zip(("ours", "theirs"), meta["labels"], strict=False):
        for size in sizes:
            runs = src.get(f"payload_{size}", impl)
            notes = [
                f"{r['delivered_b']}/{r['batched']['kicked']} batched tasks reached the queue"
                + (
                    f" ({r['batched_errors'] or r['batched_shutdown_error'] or 'no error raised'})"
                    if r["delivered_b"] < r["n"]
                    else ""
                )
                for r in runs
            ]
            problems = sorted({str(e) for r in runs for e in r["unbatched_errors"] + r["consume_errors"]})
            if any(r["delivered_b"] < r["n"] for r in runs) or problems:
                details.append(
                    f"- {label}, {size_label(size)}: {'; '.join(notes)}"
                    + (f"; {problems}" if problems else "")
                )
    return Table(
        "payload",
        "Payload size: client CPU per task",
        "One task whose argument is a string of the given size; 1 MB and up go through S3 (extended "
        "messages). CPU is the client process's `process_time` per task for each phase, in one process "
        "per run. Targets: ≤0.6x 2.1.1's CPU at every size, per-kilobyte slope ≤0.7x.",
        rows,
        details=details,
    )


def queues_table(src: Source, meta: dict[str, Any]) -> Table:
    rows: list[Row] = []
    for q in meta["sizes"]["queue_counts"]:
        scenario, case = f"queues_{q}", f"{q} queue{'s' if q > 1 else ''}"
        rows += [
            Row(
                case,
                "idle requests",
                "per hour",
                *src.field(scenario, "per_hour"),
                target=("<=", 0.1),
                digits=0,
            ),
            Row(case, "client CPU", "ms/task", *src.field(scenario, "cpu_ms"), target=("<=", 0.5), digits=3),
            Row(
                case,
                "connections held while idle",
                "count",
                *src.field(scenario, "idle_connections"),
                digits=0,
            ),
            Row(case, "connections held at most", "count", *src.field(scenario, "connections"), digits=0),
        ]
    window = meta["sizes"]["idle_seconds"]
    return Table(
        "queues",
        "Queues per worker",
        f"One broker listening to Q queues (wait_time_seconds=20 on each, prefetch 10). Idle requests are "
        f"counted at the proxy for {window:g} s from the first ReceiveMessage and extrapolated to an hour; "
        "then the queues are filled and CPU per task is the worker's from its first message to its last "
        "ack; connections are those open at the proxy at the end of the idle window, and the most open at "
        "once during the run. Targets as in the headline: idle requests ≤0.1x, CPU per task ≤0.5x.",
        rows,
    )


def inflight_table(src: Source, meta: dict[str, Any]) -> Table:
    rows: list[Row] = []
    sizes = meta["sizes"]
    for k in sizes["inflight_counts"]:
        scenario, case = f"inflight_{k}", f"{k:,} in flight"
        rows += [
            Row(
                case,
                "heartbeat requests",
                "per minute",
                *src.field(scenario, "hb_per_min"),
                digits=1,
                note=f"{k * 60 / sizes['heartbeat_interval']:,.0f} extensions due",
            ),
            Row(case, "memory per in-flight task", "KB", *src.field(scenario, "kb_per_task"), digits=2),
        ]
    return Table(
        "inflight",
        "Tasks in flight with heartbeats",
        f"K messages received (prefetch 10) and held unacked with `enable_heartbeat=True`, "
        f"`heartbeat_interval={sizes['heartbeat_interval']:g}`, visibility timeout {sizes['visibility']} s, "
        f"for {sizes['hold_seconds']:g} s. Heartbeat requests (ChangeMessageVisibility and its batch "
        "form) are counted at the proxy in that window; memory is the RSS growth from startup to all K "
        "held, per task.",
        rows,
    )


def processes_table(src: Source, meta: dict[str, Any]) -> Table:
    rows: list[Row] = []
    for p in meta["sizes"]["process_counts"]:
        scenario, case = f"procs_{p}", f"{p} process{'es' if p > 1 else ''}"
        rows += [
            Row(case, "throughput", "tasks/s", *src.field(scenario, "tps"), "higher", digits=0),
            Row(case, "SQS requests", "per task", *src.field(scenario, "per_task"), digits=3),
        ]
    return Table(
        "processes",
        "Worker processes on one queue",
        f"P worker processes (listen + ack, prefetch 10, batching) drain {meta['sizes']['process_tasks']:,} "
        "tasks from one queue: from the moment all are ready to the last delete at the proxy. MiniStack "
        "shares the same cores, so read the ratios, not the rates.",
        rows,
    )


def offload_table(src: Source, meta: dict[str, Any]) -> Table:
    rows: list[Row] = []
    for size in meta["sizes"]["offload_sizes"]:
        scenario, case = f"offload_{size}", size_label(size)
        rows += [
            Row(
                case,
                "producer peak memory",
                "payload copies",
                *src.field(scenario, "producer_mb", MIB / size),
                digits=2,
            ),
            Row(
                case,
                "worker peak memory",
                "payload copies",
                *src.field(scenario, "consumer_mb", MIB / size),
                digits=2,
            ),
            Row(case, "producer kiq() time", "s", *src.field(scenario, "producer_s"), digits=3),
            Row(case, "worker receive + ack time", "s", *src.field(scenario, "consumer_s"), digits=3),
        ]
    return Table(
        "offload",
        "Offloaded payloads (S3)",
        "One task with a string argument of the given size, published and consumed in separate processes. "
        "Peak memory is VmHWM over the RSS after startup, in multiples of the payload size: the "
        "producer's own argument is one copy, a received message's data another; the rest is the library's.",
        rows,
    )


def memory_table(src: Source, meta: dict[str, Any]) -> Table:
    n = meta["sizes"]["buffer_tasks"]
    rows = [
        Row(
            "worker holding 10 x 256 KB (max_number_of_messages=10)",
            "memory per held message",
            "KB",
            *src.field("hold", "kb_per_message"),
            target=("<=", 1.0),
            digits=1,
        ),
        Row(
            "worker holding 10 x 256 KB (max_number_of_messages=10)",
            "peak RSS",
            "MB",
            *src.field("hold", "peak_mb"),
            digits=1,
        ),
        Row(
            f"producer batching {n:,} small tasks",
            "memory per buffered task",
            "bytes",
            *src.field("buffer", "bytes_per_task"),
            digits=0,
        ),
        Row(
            f"producer batching {n:,} small tasks",
            "peak RSS",
            "MB",
            *src.field("buffer", "peak_mb"),
            digits=1,
        ),
    ]
    return Table(
        "memory",
        "Memory",
        "RSS growth over the RSS after startup, divided by the messages held or the tasks kicked. Target: "
        "a held message costs no more than with 2.1.1.",
        rows,
        curve=False,
    )


def sequential_table(src: Source, meta: dict[str, Any]) -> Table:
    n = meta["sizes"]["sequential_tasks"]
    rows = [
        Row(
            "`taskiq worker --max-async-tasks 1`",
            "throughput",
            "tasks/s",
            *src.field("seq_worker", "tps"),
            "higher",
            (">=", 1.5),
            digits=0,
        ),
        Row(
            "`async for m in broker.listen(): await m.ack()`",
            "throughput",
            "tasks/s",
            *src.field("seq_listen", "tps"),
            "higher",
            (">=", 1.5),
            digits=0,
        ),
        Row(
            "`taskiq worker --max-async-tasks 1`, 10 ms round trip",
            "throughput",
            "tasks/s",
            *src.field("seq_worker_rtt", "tps"),
            "higher",
            (">=", 1.5),
            digits=0,
        ),
        Row(
            "`async for m in broker.listen(): await m.ack()`, 10 ms round trip",
            "throughput",
            "tasks/s",
            *src.field("seq_listen_rtt", "tps"),
            "higher",
            (">=", 1.5),
            digits=0,
        ),
    ]
    return Table(
        "sequential",
        "Sequential consumption",
        f"{n:,} trivial tasks drained one at a time with default broker settings (the loop's long-poll "
        "wait is 1 s, which matters only once the queue is empty). The CLI worker's rate "
        "runs from its first ReceiveMessage to its last delete at the proxy; the loop's from its first "
        "message to its last ack. Target ≥1.5x. Each task costs a receive and a delete round trip in both "
        "libraries; on loopback to MiniStack a round trip costs almost nothing, so there the ratio is near "
        "1 and moves with host load. The rows with a 10 ms round trip (added by the proxy to every answer, "
        "as the network to real SQS does) show the difference that matters in production: our receive "
        "loop asks for the next message while the current task runs and acks, so a task waits for one "
        "round trip (the delete) instead of two.",
        rows,
        curve=False,
    )


def tables(runs: Runs, meta: dict[str, Any]) -> list[Table]:
    src = Source(runs, meta["impls"])
    builders = [
        headline_table,
        sequential_table,
        payload_table,
        queues_table,
        inflight_table,
        processes_table,
        offload_table,
        memory_table,
    ]
    built = [b(src, meta) for b in builders]
    return [t for t in built if any(r.ours or r.theirs for r in t.rows)]


# ---------------------------------------------------------------------------------------------------
# Render: markdown
# ---------------------------------------------------------------------------------------------------
def _ratio_text(row: Row) -> str:
    ratio = row.ratio
    return f"{ratio:.2f}x" if ratio is not None else "-"


def markdown(all_tables: list[Table], meta: dict[str, Any]) -> str:
    sizes = meta["sizes"]
    lines = [
        "# Broker benchmark: taskiq-sqs-http vs taskiq-aio-sqs 2.1.1",
        "",
        f"- Date: {meta['date']}"
        + (" (quick smoke run: small N, 1 repeat; not a result)" if meta["quick"] else ""),
        f"- Machine: {meta['machine']}. Numbers are medians of {sizes['repeats']} interleaved runs where "
        "repeated, (min-max) in brackets.",
        f"- Versions: {meta['versions']}",
        f"- Command: `make bench` ({meta['command']}); run time {meta['elapsed']:.0f} s.",
        "- Ratio is ours / 2.1.1; the status compares it with the target.",
        "",
    ]
    rows = [r for t in all_tables for r in t.rows]
    met = sum(r.status == "met" for r in rows)
    missed = [(t, r) for t in all_tables for r in t.rows if r.status == "NOT met"]
    lines.append(
        f"Targets: {met} met, {len(missed)} not met"
        + (": " + "; ".join(f"{t.title} / {r.case} / {r.metric}" for t, r in missed) if missed else "")
        + "."
    )
    lines.append("")
    if meta.get("chart"):
        # Named, not linked: the documentation site includes this file from elsewhere (docs/benchmarks.md)
        # and shows the chart itself, where a relative image link would not resolve.
        lines += [f"The chart of these tables is `{meta['chart']}`, beside this file.", ""]
    for table in all_tables:
        lines += [
            f"## {table.title}",
            "",
            table.intro,
            "",
            "| Case | Metric | ours | 2.1.1 | ratio | target | status |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in table.rows:
            status = f"**{row.status}**" if row.status in ("met", "NOT met") else row.status
            metric = f"{row.metric} [{row.unit}]" + (f" ({row.note})" if row.note else "")
            lines.append(
                f"| {row.case} | {metric} | {row.cell(row.ours)} | {row.cell(row.theirs)} | "
                f"{_ratio_text(row)} | {row.target_text()} | {status} |"
            )
        if table.details:
            lines += ["", *table.details]
        lines.append("")
    for title, text in meta.get("extra", []):
        lines += [f"## {title}", "", text.strip(), ""]
    if meta.get("details"):
        lines += ["## Details", "", *meta["details"], ""]
    lines += ["## How to read it (caveats)", "", *(f"- {c}" for c in meta["caveats"])]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------
# Render: console (rich)
# ---------------------------------------------------------------------------------------------------
def console(all_tables: list[Table]) -> None:
    try:
        from rich import box
        from rich.console import Console
        from rich.table import Table as RichTable
    except ImportError:  # rich is a development tool; results.md has the same tables
        return
    out = Console(width=None if sys.stdout.isatty() else 150)
    styles = {"met": "green", "NOT met": "bold red"}
    for table in all_tables:
        rich_table = RichTable(title=table.title, box=box.SIMPLE_HEAD, title_justify="left")
        for name, justify in [
            ("case", "left"),
            ("metric", "left"),
            ("ours", "right"),
            ("2.1.1", "right"),
            ("ratio", "right"),
            ("target", "right"),
            ("status", "left"),
        ]:
            rich_table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for row in table.rows:
            rich_table.add_row(
                row.case,
                f"{row.metric} [{row.unit}]",
                row.cell(row.ours),
                row.cell(row.theirs),
                _ratio_text(row),
                row.target_text(),
                f"[{styles.get(row.status, 'dim')}]{row.status}[/]",
            )
        out.print(rich_table)


# ---------------------------------------------------------------------------------------------------
# Render: chart
# ---------------------------------------------------------------------------------------------------
OURS_COLOR, THEIRS_COLOR = "#1565c0", "#9e9e9e"
MET_COLOR, MISSED_COLOR, INFO_COLOR = "#2e7d32", "#c62828", "#90a4ae"


@dataclass
class Panel:
    title: str
    better: Better
    kind: Literal["ratio", "curve"]
    rows: list[Row]


def panels(all_tables: list[Table]) -> list[Panel]:
    """Ratio panels for the non-curve tables (one per direction), one curve panel per curve metric."""
    out: list[Panel] = []
    flat = [r for t in all_tables if not t.curve for r in t.rows if r.ratio is not None]
    for better in ("lower", "higher"):
        chosen = [r for r in flat if r.better == better]
        if chosen:
            word = "lower" if better == "lower" else "higher"
            out.append(Panel(f"Ratio ours / 2.1.1 ({word} is better)", better, "ratio", chosen))  # type: ignore[arg-type]
    for table in all_tables:
        if not table.curve:
            continue
        metrics: dict[str, list[Row]] = {}
        for row in table.rows:
            if row.case.startswith("slope"):
                continue
            metrics.setdefault(f"{row.metric} [{row.unit}]", []).append(row)
        for metric, rows in metrics.items():
            if any(r.ours or r.theirs for r in rows):
                better = rows[0].better
                title = f"{table.title}\n{metric}\n{better} is better"
                out.append(Panel(title, better, "curve", rows))
    return out


def _short(text: str, limit: int = 44) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def chart(all_tables: list[Table], path: Path) -> bool:
    """A grid of panels; False when matplotlib is missing or there is nothing with a ratio to draw."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    chosen = panels(all_tables)
    if not any(r.ratio is not None for p in chosen for r in p.rows):
        return False
    ratio_panels = [p for p in chosen if p.kind == "ratio"]
    curve_panels = [p for p in chosen if p.kind == "curve"]
    cols = 3
    curve_rows = (len(curve_panels) + cols - 1) // cols
    ratio_heights = [max(2.2, 0.32 * len(p.rows) + 1.2) for p in ratio_panels]
    curve_height = 4.0 * curve_rows
    fig = plt.figure(figsize=(16, sum(ratio_heights) + curve_height + 1.0), layout="constrained")
    # One subfigure per kind, so that the ratio panels' long labels do not widen the curve grid's margin.
    parts = [h for h in (sum(ratio_heights), curve_height) if h > 0]
    split: Any = fig.subfigures(len(parts), 1, height_ratios=parts) if len(parts) > 1 else [fig]
    figures: list[Any] = [split[i] for i in range(len(parts))]
    if ratio_panels:
        top: Any = figures[0]
        ratio_axes: Any = top.subplots(len(ratio_panels), 1, height_ratios=ratio_heights, squeeze=False)
        for i, panel in enumerate(ratio_panels):
            _draw_ratio(ratio_axes[i, 0], panel)
    if curve_panels:
        bottom: Any = figures[-1]
        curve_axes: Any = bottom.subplots(curve_rows, cols, squeeze=False)
        for j in range(curve_rows * cols):
            ax: Any = curve_axes[j // cols, j % cols]
            if j < len(curve_panels):
                _draw_curve(ax, curve_panels[j])
            else:
                ax.set_visible(False)
        from matplotlib.patches import Patch

        fig.legend(
            handles=[
                Patch(color=OURS_COLOR, label="ours"),
                Patch(color=THEIRS_COLOR, label="taskiq-aio-sqs 2.1.1"),
            ],
            loc="outside upper right",
            ncols=2,
            fontsize=9,
            frameon=False,
        )
    fig.suptitle("taskiq-sqs-http vs taskiq-aio-sqs 2.1.1 on MiniStack (same run)", fontsize=13)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return True


def _draw_ratio(ax: Any, panel: Panel) -> None:
    rows = panel.rows
    ratios = [r.ratio or 0.0 for r in rows]
    colors = [{"met": MET_COLOR, "NOT met": MISSED_COLOR}.get(r.status, INFO_COLOR) for r in rows]
    y = list(range(len(rows)))
    ax.barh(y, ratios, color=colors, height=0.6)
    for i, row in enumerate(rows):
        if row.target is not None:
            ax.plot([row.target[1]] * 2, [i - 0.38, i + 0.38], color="black", linewidth=2.2)
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    low = min([*ratios, *(r.target[1] for r in rows if r.target)] or [0.1])
    high = max([*ratios, *(r.target[1] for r in rows if r.target)] or [1.0])
    ax.set_xlim(max(low / 2.5, 1e-3), high * 4)  # room for the value labels on the right
    for i, (ratio, row) in enumerate(zip(ratios, rows, strict=True)):
        right = max(ratio, row.target[1] if row.target else 0.0)  # clear of the target tick
        ax.text(right * 1.1, i, f"{ratio:.2f}x", va="center", fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels([_short(f"{r.case}: {r.metric}", 90) for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_title(panel.title + "  —  black tick: target; green met, red not met, grey no target", fontsize=10)


def _draw_curve(ax: Any, panel: Panel) -> None:
    rows = panel.rows
    x = list(range(len(rows)))
    width = 0.38
    ours = [r.ours_median or 0.0 for r in rows]
    theirs = [r.theirs_median or 0.0 for r in rows]
    ax.bar([i - width / 2 for i in x], ours, width, color=OURS_COLOR, label="ours")
    ax.bar([i + width / 2 for i in x], theirs, width, color=THEIRS_COLOR, label="2.1.1")
    values = [v for v in ours + theirs if v > 0]
    if values and max(values) / min(values) > 30:
        ax.set_yscale("log")
    top = max(values) if values else 1.0
    ax.set_ylim(top=top * (3.0 if ax.get_yscale() == "log" else 1.25))
    for i, row in enumerate(rows):
        ratio = row.ratio
        if ratio is not None:
            color = {"met": MET_COLOR, "NOT met": MISSED_COLOR}.get(row.status, "black")
            ax.text(
                i,
                max(ours[i], theirs[i]) * (1.15 if ax.get_yscale() == "log" else 1.03),
                f"{ratio:.2f}x",
                ha="center",
                va="bottom",
                fontsize=8,
                color=color,
            )
    ax.set_xticks(x)
    ax.set_xticklabels([r.case for r in rows], fontsize=8)
    ax.set_title(panel.title, fontsize=9)
    ax.tick_params(axis="y", labelsize=8)
