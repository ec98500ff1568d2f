"""`BENCH_QUICK=1 scripts/bench.py --no-theirs` runs every section end to end against the test MiniStack,
and the report (tables, chart) renders from saved runs without a server."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = (
    "Headline: small tasks, one queue",
    "Sequential consumption",
    "Payload size: client CPU per task",
    "Queues per worker",
    "Tasks in flight with heartbeats",
    "Worker processes on one queue",
    "Offloaded payloads (S3)",
    "Memory",
)


def _scripts_module(name: str) -> Any:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        return importlib.import_module(name)  # scripts/ is not a package
    finally:
        sys.path.remove(str(ROOT / "scripts"))


def test_bench_quick_smoke(endpoint_url: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts/bench.py"), "--no-theirs", "--out", str(tmp_path)],
        env={**os.environ, "TEST_AWS_ENDPOINT_URL": endpoint_url, "BENCH_QUICK": "1"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]

    results = (tmp_path / "results.md").read_text()
    assert "quick smoke run" in results
    assert "| Case | Metric | ours | 2.1.1 | ratio | target | status |" in results
    for section in SECTIONS:
        assert f"## {section}" in results, section
    assert "failed:" not in results  # no section broke
    # Without 2.1.1 there is nothing to compare against: no row claims a target as met or missed.
    assert "**met**" not in results
    assert "**NOT met**" not in results
    # Ours delivered and acked everything it was asked to.
    assert "publish (b): delivered to the queue 60/60" in results
    assert "20/20 acked, 0 left" in results
    assert "60/60 acked, 0 left" in results
    assert not (tmp_path / "results.png").exists()  # no ratios to draw without 2.1.1

    saved = json.loads((tmp_path / "runs.json").read_text())
    runs = saved["runs"]
    assert runs["seq_worker|ours"][0]["tps"] > 0
    assert runs["queues_4|ours"][0]["acked"] == saved["meta"]["sizes"]["queue_tasks"]
    assert runs["inflight_10|ours"][0]["held"] == 10
    assert runs["offload_1048576|ours"][0]["consumer"]["size"] > 1024 * 1024
    # The core count in the caveats is the machine's, not a number written into the script.
    assert f"same {os.cpu_count()}-core host" in results


def _row(report: Any, metric: str, ours: list[float], theirs: list[float], **kwargs: Any) -> Any:
    return report.Row("case", metric, "unit", ours, theirs, **kwargs)


def test_rows_ratio_and_status() -> None:
    report = _scripts_module("bench_report")
    rows = [
        _row(report, "cpu", [0.1, 0.2], [0.5, 0.6], target=("<=", 0.5)),
        _row(report, "idle", [360.0], [3600.0], target=("<=", 0.1)),
        _row(report, "tps", [100.0], [100.0], better="higher", target=(">=", 1.5)),
        _row(report, "import", [10.0], []),
    ]
    assert [r.status for r in rows] == ["met", "met", "NOT met", "info"]
    assert rows[0].ratio == pytest.approx(0.15 / 0.55)
    assert rows[0].cell(rows[0].ours) == "0.15 (0.10-0.20)"
    assert report._slope([(1.0, 2.0), (2.0, 4.0), (3.0, 6.0)]) == pytest.approx(2.0)


def test_chart_panels_keep_directions_apart(tmp_path: Path) -> None:
    """Higher-is-better and lower-is-better never share an axis; the chart draws headless (Agg)."""
    report = _scripts_module("bench_report")
    table = report.Table(
        "t",
        "Table",
        "intro",
        [
            _row(report, "cpu", [0.1], [0.5], target=("<=", 0.5)),
            _row(report, "tps", [200.0], [100.0], better="higher"),
        ],
        curve=False,
    )
    curve = report.Table(
        "c",
        "Curve",
        "intro",
        [
            report.Row("1 KB", "cpu", "ms", [0.1], [0.3]),
            report.Row("64 KB", "cpu", "ms", [0.5], [0.9]),
            report.Row("1 KB", "tps", "1/s", [10.0], [5.0], better="higher"),
        ],
    )
    panels = report.panels([table, curve])
    for panel in panels:
        assert {row.better for row in panel.rows} == {panel.better}
    assert [p.kind for p in panels] == ["ratio", "ratio", "curve", "curve"]
    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("matplotlib is a bench-only development tool")
    assert report.chart([table, curve], tmp_path / "chart.png")
    assert (tmp_path / "chart.png").stat().st_size > 0


def test_scaling_model_table() -> None:
    model = _scripts_module("scaling_model")
    rows = model.model(model.PerTask(requests=0.31, worker_tasks_per_s=500.0), rates=(100, 10_000))
    assert [r.tasks_per_s for r in rows] == [100, 10_000]
    assert rows[1].requests_per_s == pytest.approx(3_100)
    assert rows[1].workers == 20
    assert rows[1].workers_at_rtt == 20  # 500 tasks/s per process: ten per 20 ms round trip
    assert rows[1].cost_per_month > rows[0].cost_per_month
    slow = model.model(
        model.PerTask(requests=0.31, worker_tasks_per_s=1000.0), rates=(10_000,), round_trip_ms=40
    )
    assert (slow[0].workers, slow[0].workers_at_rtt) == (10, 40)
    long_tasks = model.model(
        model.PerTask(requests=0.31, worker_tasks_per_s=500.0), rates=(10_000,), task_seconds=30
    )
    assert "in-flight quota" in long_tasks[0].quota_note
