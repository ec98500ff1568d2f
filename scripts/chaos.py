"""`make chaos`: run the chaos suite (tests/chaos, CHAOS=1) and print / write the reliability table.

Each scenario writes a JSON record into $CHAOS_RESULTS_DIR; this script runs pytest with a fresh directory,
then aggregates the records into a table (scenario, tasks sent, faults injected by kind, tasks run,
duplicates, lost, time) printed and written to bench/reliability.md. Every scenario starts its own MiniStack
on 127.0.0.1 (scripts/with_ministack.py), so no emulator is needed beforehand.

Usage: python scripts/chaos.py [--output bench/reliability.md] [-- extra pytest args]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HEADER = ("scenario", "tasks sent", "faults injected", "tasks run", "duplicates", "lost", "time")


def load(directory: Path) -> list[dict[str, Any]]:
    records = [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]
    return sorted(records, key=lambda r: str(r["scenario"]))


def faults_cell(faults: dict[str, int]) -> str:
    if not faults:
        return "-"
    return ", ".join(f"{kind} {n}" for kind, n in sorted(faults.items(), key=lambda kv: (-kv[1], kv[0])))


def rows(records: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    return [
        (
            str(r["scenario"]),
            str(r["sent"]),
            faults_cell(r.get("faults", {})),
            str(r["run"]),
            str(r["duplicates"]),
            str(r["lost"]),
            f"{r['seconds']:.1f} s",
        )
        for r in records
    ]


def markdown(records: list[dict[str, Any]], outcome: str, wall: float) -> str:
    lines = [
        "# Reliability: the chaos suite",
        "",
        f"`make chaos` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs: **{outcome}** in {wall:.0f} s. Faults are injected by a proxy between the "
        "clients and MiniStack (tests/chaos/proxy.py, seeded); *lost* counts tasks whose kick succeeded but "
        "that never ran (must be 0); *duplicates* counts extra runs of a task (at-least-once delivery).",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows(records)]
    notes = [f"- **{r['scenario']}**: {r['notes']}" for r in records if r.get("notes")]
    if notes:
        lines += ["", "Notes:", "", *notes]
    return "\n".join(lines) + "\n"


def text_table(records: list[dict[str, Any]]) -> str:
    table = [HEADER, *rows(records)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    out = []
    for n, row in enumerate(table):
        out.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])  # pyright: ignore[reportOptionalMemberAccess]
    parser.add_argument("--output", default=str(ROOT / "bench" / "reliability.md"))
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    extra = [a for a in args.pytest_args if a != "--"]
    with tempfile.TemporaryDirectory(prefix="chaos-results-") as results:
        env = {**os.environ, "CHAOS": "1", "CHAOS_RESULTS_DIR": results}
        started = time.monotonic()
        command = [sys.executable, "-m", "pytest", "tests/chaos", "-p", "no:cacheprovider", "-q", *extra]
        code = subprocess.call(command, cwd=ROOT, env=env)
        wall = time.monotonic() - started
        records = load(Path(results))
    outcome = "all scenarios passed" if code == 0 else f"pytest exit code {code}"
    print()
    print(text_table(records))
    print(f"\n{outcome}; wall time {wall:.0f} s")
    lost = sum(int(r["lost"]) for r in records)
    if records:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(markdown(records, outcome, wall))
        print(f"written to {Path(args.output).relative_to(ROOT)}")
    return code or (1 if lost else 0)


if __name__ == "__main__":
    sys.exit(main())
