"""A small model of a fleet at 100, 1,000 and 10,000 tasks per second, from the measured per-task figures.

    python scripts/scaling_model.py                      # from bench/runs.json (written by `make bench`)
    python scripts/scaling_model.py --runs other.json --rates 100,1000,10000 --fifo
    python scripts/scaling_model.py --update docs/scaling-out.md   # rewrite the table between its markers

Inputs, all from one benchmark run (ours, batching on, prefetch 10): SQS requests per task (publish +
receive + delete, counted on the wire), client CPU per task (publish + consume), and one worker
process's throughput on one queue. Outputs per rate: SQS requests per second and per month, their price,
the broker's own CPU in cores, worker processes at the measured throughput, and which SQS quota is near.

The model is arithmetic, not a simulation of SQS: it says what a rate costs in requests and client CPU,
and where a quota starts to matter (docs/scaling-out.md says what the broker does there).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SECONDS_PER_MONTH = 30 * 24 * 3600
# SQS list prices per million requests (us-east-1, after the free tier); a request is billed per started
# 64 KB of payload, which small tasks never exceed.
PRICE_STANDARD = 0.40
PRICE_FIFO = 0.50
IN_FLIGHT_STANDARD = 120_000
IN_FLIGHT_FIFO = 120_000  # FIFO: ReceiveMessage quietly returns fewer messages at the limit, no error
FIFO_CALLS_PER_S = 300  # per API action, without high-throughput mode
FIFO_BATCHED_MSGS_PER_S = 3_000
CPU_HEADROOM = 0.7  # plan cores at 70 % busy
LABELS = {"ours": "taskiq-sqs-http", "theirs": "taskiq-aio-sqs 2.1.1"}


@dataclass(frozen=True)
class PerTask:
    """What one task costs, measured."""

    requests: float  # SQS requests per task, publish + consume
    worker_tasks_per_s: float  # one worker process, trivial tasks
    cpu_ms: float = 0.0  # client CPU per task, publish + consume (broker overhead only)
    source: str = "given"


@dataclass(frozen=True)
class ModelRow:
    tasks_per_s: int
    requests_per_s: float
    requests_per_month: float
    cost_per_month: float
    broker_cores: float
    workers: int
    workers_at_rtt: int
    in_flight: int
    quota_note: str


def model(
    per_task: PerTask,
    rates: Sequence[int],
    *,
    fifo: bool = False,
    task_seconds: float = 1.0,
    round_trip_ms: float = 20.0,
) -> list[ModelRow]:
    """``workers_at_rtt`` caps one process at ten messages per receive round trip on one queue (a queue is
    polled again once its previous receive is handed out), since MiniStack on loopback answers far
    faster than SQS does."""
    rows: list[ModelRow] = []
    per_process_at_rtt = min(per_task.worker_tasks_per_s, 10 * 1000 / round_trip_ms)
    price = PRICE_FIFO if fifo else PRICE_STANDARD
    for rate in rates:
        requests_per_s = rate * per_task.requests
        per_month = requests_per_s * SECONDS_PER_MONTH
        in_flight = int(rate * task_seconds)
        notes: list[str] = []
        if in_flight >= IN_FLIGHT_STANDARD:
            notes.append("in-flight quota (120,000): shorten tasks or split queues")
        elif in_flight >= IN_FLIGHT_STANDARD // 4:
            longest = IN_FLIGHT_STANDARD / rate
            notes.append(f"in-flight quota reached by tasks longer than {longest:.0f} s")
        if fifo and rate > FIFO_BATCHED_MSGS_PER_S:
            notes.append("above FIFO's 3,000 msg/s: high-throughput mode needed")
        elif fifo and rate > FIFO_CALLS_PER_S:
            notes.append("FIFO: needs batching (300 calls/s per action)")
        rows.append(
            ModelRow(
                tasks_per_s=rate,
                requests_per_s=requests_per_s,
                requests_per_month=per_month,
                cost_per_month=per_month / 1e6 * price,
                broker_cores=rate * per_task.cpu_ms / 1000 / CPU_HEADROOM,
                workers=max(1, math.ceil(rate / per_task.worker_tasks_per_s)),
                workers_at_rtt=max(1, math.ceil(rate / per_process_at_rtt)),
                in_flight=in_flight,
                quota_note="; ".join(notes) or "-",
            )
        )
    return rows


def _median(values: list[float]) -> float:
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def from_runs(path: Path, impl: str = "ours") -> PerTask:
    """Per-task figures of ``impl`` (ours, theirs) from a saved benchmark run (bench.py's runs.json)."""
    saved: dict[str, Any] = json.loads(path.read_text())
    runs: dict[str, list[dict[str, Any]]] = saved["runs"]

    def values(scenario: str, field: str) -> list[float]:
        return [float(r[field]) for r in runs.get(f"{scenario}|{impl}", []) if r.get(field) is not None]

    requests = values("requests_on", "per_task")
    throughput = values("procs_1", "tps")
    publish_cpu, consume_cpu = values("publish_b", "cpu_ms"), values("consume_10", "cpu_ms")
    if not requests or not throughput:
        raise SystemExit(f"{path} lacks {impl}'s headline requests or 1-process run: run `make bench` first")
    cpu = (_median(publish_cpu) if publish_cpu else 0.0) + (_median(consume_cpu) if consume_cpu else 0.0)
    return PerTask(
        requests=_median(requests),
        worker_tasks_per_s=_median(throughput),
        cpu_ms=cpu,
        source=f"{LABELS.get(impl, impl)}, {path.name} of {saved['meta'].get('date', '?')}",
    )


def markdown(
    rows: Sequence[ModelRow],
    per_task: PerTask,
    fifo: bool,
    task_seconds: float = 1.0,
    round_trip_ms: float = 20.0,
) -> str:
    price = PRICE_FIFO if fifo else PRICE_STANDARD
    lines = [
        f"Inputs ({per_task.source}): {per_task.requests:.3f} SQS requests per task, "
        f"{per_task.cpu_ms:.3f} ms broker CPU per task (publish + consume), "
        f"{per_task.worker_tasks_per_s:,.0f} tasks/s per worker process (measured on MiniStack); "
        f"${price:.2f} per million requests ({'FIFO' if fifo else 'standard'} queue); "
        f"tasks of {task_seconds:g} s.",
        "",
        "| tasks/s | SQS requests/s | requests/month | SQS cost/month | broker CPU (cores at 70 %) "
        f"| worker processes (measured) | at {round_trip_ms:g} ms round trip | in flight | quota |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.tasks_per_s:,} | {r.requests_per_s:,.0f} | {r.requests_per_month / 1e9:,.2f} billion | "
            f"${r.cost_per_month:,.0f} | {r.broker_cores:,.2f} | {r.workers:,} | {r.workers_at_rtt:,} | "
            f"{r.in_flight:,} | "
            f"{r.quota_note} |"
        )
    return "\n".join(lines) + "\n"


START, END = "<!-- scaling-model:start -->", "<!-- scaling-model:end -->"


def update(doc: Path, table: str) -> None:
    """Replace what stands between the markers in ``doc`` with ``table``."""
    text = doc.read_text()
    head, start, rest = text.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise SystemExit(f"{doc} has no {START} ... {END} block")
    doc.write_text(f"{head}{START}\n{table}{END}{tail}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--runs", default=str(ROOT / "bench/runs.json"), help="a saved benchmark run")
    parser.add_argument("--rates", default="100,1000,10000", help="tasks per second, comma-separated")
    parser.add_argument("--fifo", action="store_true", help="FIFO prices and quotas")
    parser.add_argument("--task-seconds", type=float, default=1.0, help="how long one task runs")
    parser.add_argument("--round-trip-ms", type=float, default=20.0, help="SQS round trip from the workers")
    parser.add_argument("--update", default="", help="a Markdown file whose model block to rewrite")
    parser.add_argument("--impl", default="ours", choices=("ours", "theirs", "both"), help="whose figures")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",") if r]
    tables: list[str] = []
    for impl in ("ours", "theirs") if args.impl == "both" else (args.impl,):
        per_task = from_runs(Path(args.runs), impl)
        rows = model(
            per_task, rates, fifo=args.fifo, task_seconds=args.task_seconds, round_trip_ms=args.round_trip_ms
        )
        tables.append(markdown(rows, per_task, args.fifo, args.task_seconds, args.round_trip_ms))
    table = "\n".join(tables)
    if args.update:
        update(Path(args.update), table)
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
