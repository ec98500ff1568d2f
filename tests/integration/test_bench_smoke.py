"""`scripts/bench.py --quick --no-theirs` runs end to end against the test MiniStack and writes its table."""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_bench_quick_smoke(endpoint_url: str, tmp_path: Path) -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts/bench.py"), "--quick", "--no-theirs", "--out", str(tmp_path)],
        env={**os.environ, "TEST_AWS_ENDPOINT_URL": endpoint_url},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    assert elapsed < 60, f"the quick run took {elapsed:.0f} s"

    results = (tmp_path / "results.md").read_text()
    assert "| Section | Metric | ours | 2.1.1 | ratio | target | status |" in results
    for section in ("publish (a)", "publish (b)", "consume prefetch 10", "SQS requests", "idle listener"):
        assert section in results
    assert "cold start to first ack" in results
    # Without 2.1.1 there is nothing to compare against: no row claims a target as met or missed.
    assert "**met**" not in results
    assert "**NOT met**" not in results
    # Ours delivered and acked everything it was asked to.
    assert "publish (b): delivered to the queue 60/60" in results
    assert "20/20 acked, 0 left" in results
    assert "60/60 acked, 0 left" in results
    assert not (tmp_path / "results.png").exists()  # no ratios to draw without 2.1.1


def test_bench_chart(tmp_path: Path) -> None:
    """The ratio chart draws headless (Agg); matplotlib is bench-only, so skip where it is absent."""
    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("matplotlib is installed by `make bench` only")
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        bench: Any = importlib.import_module("bench")  # scripts/bench.py: not a package
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    rows = [
        bench.Row("publish", "client CPU", "ms/task", [0.1, 0.2], [0.5, 0.6], target=("<=", 0.5)),
        bench.Row("idle", "requests", "per hour", [360.0], [3600.0], target=("<=", 0.1)),
        bench.Row("import", "cumulative", "ms", [10.0], [], digits=1),
    ]
    assert [r.status for r in rows] == ["met", "met", "info"]
    assert bench.chart(rows, tmp_path / "chart.png")
    assert (tmp_path / "chart.png").stat().st_size > 0
