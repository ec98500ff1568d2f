"""Helpers of the chaos suite: worker subprocesses, the runs log, result records, queue checks."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest
from taskiq.kicker import AsyncKicker

from taskiq_sqs_http import SQSBroker
from taskiq_sqs_http.aws import SQSClient
from taskiq_sqs_http.aws import _http as http_module

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from with_ministack import ministack  # noqa: E402  (scripts/ is not a package)

__all__ = [
    "MINISTACK",
    "ROOT",
    "Record",
    "Worker",
    "kicker",
    "ministack",
    "queue_depth",
    "read_runs",
    "short_read_timeout",
    "wait_until",
    "write_record",
]

MINISTACK = Path(os.environ.get("CHAOS_MINISTACK", str(ROOT / ".venv-ministack" / "bin" / "ministack")))
NO_KEYS = ("AWS_REGION", "AWS_EC2_METADATA_DISABLED")
RESULTS_ENV = "CHAOS_RESULTS_DIR"
WORKER_ARGS = ("tests.chaos.chaos_tasks:broker", "--workers", "1")
FAKE_KEYS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# -- worker subprocesses ---------------------------------------------------------------------------------
class Worker:
    """``taskiq worker tests.chaos.chaos_tasks:broker --workers 1`` in its own session, stopped by PID."""

    def __init__(
        self,
        name: str,
        env: Mapping[str, str],
        log_dir: Path,
        *,
        static_keys: bool = True,
        log_level: str = "INFO",
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        full_env.update(FAKE_KEYS if static_keys else {k: FAKE_KEYS[k] for k in NO_KEYS})
        full_env.update(env)
        full_env["PYTHONPATH"] = str(ROOT)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "taskiq", "worker", *WORKER_ARGS, "--log-level", log_level],
                cwd=ROOT,
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group (taskiq's supervisor and its one worker)."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> None:
        if not self.alive():
            return
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        except ProcessLookupError:
            pass

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until the worker has started listening (taskiq logs it), or fail with the log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"worker {self.name} exited early:\n{self.log()[-3000:]}")
            if "Listening started" in self.log() or "chaos worker ready" in self.log():
                return
            time.sleep(0.1)
        raise AssertionError(f"worker {self.name} not ready within {timeout} s:\n{self.log()[-3000:]}")


@dataclass(frozen=True)
class Run:
    task_id: str
    pid: int
    event: str  # "run" (a short task), "start" / "done" (a long one)
    at: float


def read_runs(path: Path) -> list[Run]:
    if not path.exists():
        return []
    runs: list[Run] = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4:
            runs.append(Run(parts[0], int(parts[1]), parts[2], float(parts[3])))
    return runs


def run_counts(runs: Iterable[Run], events: tuple[str, ...] = ("run", "start")) -> Counter[str]:
    return Counter(r.task_id for r in runs if r.event in events)


# -- producers ----------------------------------------------------------------------------------------------
def kicker(broker: SQSBroker, name: str, **labels: Any) -> AsyncKicker[Any, Any]:
    """Kick by task name: the test process does not import the workers' app."""
    return AsyncKicker(task_name=name, broker=broker, labels=labels)


def short_read_timeout(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Make every HTTPSession created from now on use ``seconds`` as its read timeout.

    The broker and backend build their sessions with the default `Timeouts` (read 30 s) and expose no
    parameter for it; the chaos ``delay`` fault must outlast the read timeout without making the suite
    wait 30 s per fault, so the tests (and the workers, see chaos_tasks) patch the default here.
    """
    monkeypatch.setattr(http_module, "Timeouts", functools.partial(http_module.Timeouts, read=seconds))


async def queue_depth(sqs: SQSClient, url: str) -> tuple[int, int, int]:
    """(visible, in flight, delayed) as SQS reports them."""
    attrs = await sqs.get_queue_attributes(
        url,
        [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )
    return (
        int(attrs.get("ApproximateNumberOfMessages", 0)),
        int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
        int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
    )


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout: float, interval: float = 0.5, what: str = "condition"
) -> float:
    """Poll ``check`` until it holds; returns the seconds it took, raises AssertionError on timeout."""
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(interval)
    raise AssertionError(f"{what} not met within {timeout} s")


# -- result records (aggregated by scripts/chaos.py) --------------------------------------------------------
@dataclass
class Record:
    scenario: str
    sent: int = 0
    faults: dict[str, int] = field(default_factory=dict[str, int])
    run: int = 0
    duplicates: int = 0
    lost: int = 0
    errors_reported: int = 0
    seconds: float = 0.0
    notes: str = ""

    def add_faults(self, counts: Mapping[str, int]) -> None:
        for kind, n in counts.items():
            self.faults[kind] = self.faults.get(kind, 0) + n


def write_record(record: Record) -> None:
    """Write one JSON record into $CHAOS_RESULTS_DIR (when set) and print it for the pytest log."""
    print("chaos record:", json.dumps(asdict(record)))
    directory = os.environ.get(RESULTS_ENV)
    if not directory:
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    (path / f"{record.scenario.replace(' ', '_')}-{uuid.uuid4().hex[:6]}.json").write_text(
        json.dumps(asdict(record), indent=2)
    )
