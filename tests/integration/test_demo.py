"""`make demo`'s main path (scripts/demo.py) against the test MiniStack, and its cleanup on Ctrl-C."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "scripts" / "demo.py"


def _demo_command(endpoint_url: str, prefix: str) -> list[str]:
    return [sys.executable, str(DEMO), "--endpoint", endpoint_url, "--prefix", prefix]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_demo_runs_every_kind_of_task(endpoint_url: str, unique_name: str) -> None:
    started = time.monotonic()
    done = subprocess.run(
        _demo_command(endpoint_url, unique_name),
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )
    output = done.stdout
    assert done.returncode == 0, output + done.stderr
    assert time.monotonic() - started < 30
    assert "22/22 results" in output
    assert re.search(r"add\(3, 3\)\s+\S+-tasks\s+6\s", output)
    assert re.search(r"square\(9\) batched\s+\S+-tasks\s+81\s", output)
    assert "'in 3 s'" in output
    assert "1,200,000 chars, sha256" in output
    assert "error: RuntimeError('this task always fails')" in output
    assert "FIFO group a: ran a1 -> a2 -> a3 (in order)" in output
    assert "FIFO group b: ran b1 -> b2 -> b3 (in order)" in output
    assert f"it is in {unique_name}-tasks-dlq after 2 failed runs (messages there: 0 -> 1)" in output
    assert "Stopped the worker;" in output


def test_demo_stops_its_worker_on_ctrl_c(endpoint_url: str, unique_name: str) -> None:
    demo = subprocess.Popen(
        _demo_command(endpoint_url, unique_name),
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert demo.stdout is not None
    worker_pid: int | None = None
    seen: list[str] = []
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(demo.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + 20
            while worker_pid is None and time.monotonic() < deadline and demo.poll() is None:
                if not selector.select(timeout=deadline - time.monotonic()):
                    break
                seen.append(demo.stdout.readline())
                match = re.match(r"Worker: pid (\d+),", seen[-1])
                worker_pid = int(match.group(1)) if match else None
        assert worker_pid is not None, "".join(seen)
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=20)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate(timeout=5)
    assert demo.returncode == 130, "".join(seen) + rest
    assert "Interrupted" in rest
    # The worker ran in its own process group (pgid = its pid): nothing of it may be left.
    assert not _group_alive(worker_pid)
