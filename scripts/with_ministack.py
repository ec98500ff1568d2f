"""Run a command with a private MiniStack on 127.0.0.1, then stop that MiniStack by its PID.

Usage: python scripts/with_ministack.py --ministack PATH [--port N] -- command args...

Why a wrapper instead of `ministack -d` / `ministack --stop`: the detached mode keeps a shared pid file, so
two runs on one machine would stop each other's emulator. Here the emulator gets a free port, a private
TMPDIR, and is stopped by the PID this script started, also when the command fails or we are interrupted.
The command sees the endpoint in TEST_AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_MINISTACK for scripts).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"MiniStack exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/_ministack/health", timeout=1) as resp:  # noqa: S310 - http://127.0.0.1 only
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"MiniStack did not become healthy at {url} within {timeout:.0f}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the process group we started: SIGTERM, then SIGKILL after a grace period."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@contextlib.contextmanager
def ministack(executable: str, port: int | None = None, services: str = "sqs,s3") -> Iterator[str]:
    """Start MiniStack, yield its endpoint URL, always stop it by PID."""
    port = port or free_port()
    tmpdir = tempfile.mkdtemp(prefix="ministack-")
    log_path = Path(tmpdir) / "ministack.log"
    env = {
        **os.environ,
        "BIND_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "IOT_MTLS_ENABLED": "0",
        "SERVICES": services,
        "TMPDIR": tmpdir,
        "LOG_LEVEL": os.environ.get("MINISTACK_LOG_LEVEL", "WARNING"),
    }
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [executable],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        wait_healthy(url, proc, timeout=60)
        yield url
    except BaseException:
        if log_path.exists():
            sys.stderr.write(log_path.read_text(errors="replace")[-4000:])
        raise
    finally:
        stop(proc)
        shutil.rmtree(tmpdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])  # pyright: ignore[reportOptionalMemberAccess]
    parser.add_argument("--ministack", required=True, help="path of the ministack executable")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = [c for c in args.command if c != "--"] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")

    # Turn SIGTERM into an exception so the finally-block stops MiniStack.
    def _terminate(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _terminate)
    try:
        # MINISTACK_SERVICES adds emulated services (e.g. "sqs,s3,lambda" for the serverless tests).
        services = os.environ.get("MINISTACK_SERVICES", "sqs,s3")
        with ministack(args.ministack, args.port, services=services) as url:
            print(f"MiniStack ready at {url}", flush=True)
            env = {**os.environ, "TEST_AWS_ENDPOINT_URL": url, "AWS_ENDPOINT_URL_MINISTACK": url}
            child = subprocess.Popen(command, env=env)
            try:
                return child.wait()
            except KeyboardInterrupt:
                child.send_signal(signal.SIGINT)
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
                return 130
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
