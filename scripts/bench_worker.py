"""One broker-benchmark measurement in its own process; scripts/bench.py starts it with either venv.

Ours runs in .venv (``--lib taskiq_sqs_http``), taskiq-aio-sqs 2.1.1 in .venv-aiosqs
(``--lib taskiq_aio_sqs``), so their botocore never meets ours. Both libraries take the same constructor
arguments, so one code path drives both. Only the standard library is imported at module level: the
library is imported inside the measurement (the cold-start mode counts that import).
The last stdout line is one JSON object.

Modes:
  publish  N tasks through ``task.kiq()`` (P concurrent producers), then ``shutdown()``; window = both
  consume  listen() and ack until N messages are acked (acks run concurrently, at most 100 in flight)
  cold     process start -> import, broker, startup, kiq one task, receive and ack it (wall, CPU, RSS)
  idle     listen() on an empty queue for D seconds (the requests are counted by the proxy in front)
  sizes    on-disk size of the library's runtime dependency closure minus taskiq's (run inside a venv)

Every loop is bounded by a count and every wait by a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import importlib.metadata as metadata
import inspect
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

REGION = "us-east-1"
TASK_NAME = "bench:noop"
MAX_ACKS_IN_FLIGHT = 100
RUN_TIMEOUT = 240.0
CLOSE_TIMEOUT = 15.0
# 2.1.1's listener only stops after its current poll cycle (up to wait_time_seconds of 1 s polls); it is
# cut short after this long, outside every measurement window, so that a run does not idle for 10-20 s.
LISTENER_CLOSE_TIMEOUT = 2.0


def make_broker(args: argparse.Namespace, *, wait_time_seconds: int | None = None) -> Any:
    module = importlib.import_module(args.lib)
    kwargs: dict[str, Any] = {
        "endpoint_url": args.endpoint,
        "region_name": REGION,
        "aws_access_key_id": "test",
        "aws_secret_access_key": "test",
        "max_number_of_messages": args.prefetch,
        "enable_batching": args.batching,
    }
    wait = args.wait if wait_time_seconds is None else wait_time_seconds
    if wait is not None:  # None: the library's default (10 s in both)
        kwargs["wait_time_seconds"] = wait
    return module.SQSBroker(args.queue, **kwargs)


def _cpu() -> float:
    return time.process_time()


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value


async def _close_listener(gen: Any) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(gen.aclose(), LISTENER_CLOSE_TIMEOUT)


async def _shutdown(broker: Any, timeout: float = CLOSE_TIMEOUT) -> str | None:
    """shutdown(), bounded; returns the error text if it raised or did not return in time.

    ``wait_for`` cannot always tell: 2.1.1's shutdown swallows the CancelledError of the timeout (its
    ``suppress(CancelledError)`` around the batch task), so a run that took the whole bound is flagged too.
    """
    started = time.perf_counter()
    try:
        await asyncio.wait_for(broker.shutdown(), timeout)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
    if time.perf_counter() - started >= timeout:
        return f"did not return within {timeout:.0f} s (cancelled by the benchmark)"
    return None


class SendClock:
    """Wraps the client's send methods on the broker: when did the last SendMessage(Batch) complete?

    Throughput is measured to the moment the last message is accepted by SQS, the same wire-level event
    for both libraries, so a slow or hanging ``shutdown()`` does not count as publishing time (it is
    reported on its own). The wrapper adds one attribute lookup and a clock read per request.
    """

    def __init__(self, broker: Any) -> None:
        self.last: float | None = None
        self.requests = 0
        client = getattr(broker, "_sqs", None) or getattr(broker, "_sqs_client", None)
        self.installed = client is not None
        for name in ("send_message", "send_message_batch"):
            original = getattr(client, name, None)
            if original is not None:
                setattr(client, name, self._wrap(original))

    def _wrap(self, original: Any) -> Any:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            result = await original(*args, **kwargs)
            self.last = time.perf_counter()
            self.requests += 1
            return result

        return timed


# -- publish ------------------------------------------------------------------------------------------
async def publish(args: argparse.Namespace) -> dict[str, Any]:
    broker = make_broker(args)

    @broker.task(task_name=TASK_NAME)
    async def noop(i: int) -> None:  # never runs here: publish only
        del i

    await broker.startup()
    clock = SendClock(broker)
    producers = max(1, args.producers)
    shares = [args.n // producers + (1 if k < args.n % producers else 0) for k in range(producers)]
    kicked = 0
    errors: list[str] = []

    async def producer(count: int) -> None:
        nonlocal kicked
        for i in range(count):
            try:
                await noop.kiq(i)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}"[:300])
                return
            kicked += 1

    cpu0, wall0 = _cpu(), time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(producer(c) for c in shares if c)), RUN_TIMEOUT)
    kick_wall = time.perf_counter() - wall0
    shutdown0 = time.perf_counter()
    shutdown_error = await _shutdown(broker, args.shutdown_timeout)
    end = time.perf_counter()
    wall, cpu = end - wall0, _cpu() - cpu0
    delivered_at = clock.last if clock.last is not None else end
    return {
        "wall": wall,
        "cpu": cpu,
        "send_wall": (delivered_at - wall0) if clock.installed else wall,
        "send_requests": clock.requests,
        "shutdown_wall": end - shutdown0,
        "kicked": kicked,
        "kick_wall": kick_wall,
        "errors": errors[:3],
        "shutdown_error": shutdown_error,
    }


# -- consume ------------------------------------------------------------------------------------------
async def consume(args: argparse.Namespace) -> dict[str, Any]:
    broker = make_broker(args)
    await broker.startup()
    acked = 0
    ack_errors: list[str] = []
    finished = asyncio.Event()
    slots = asyncio.Semaphore(MAX_ACKS_IN_FLIGHT)
    pending: set[asyncio.Task[None]] = set()

    async def ack(message: Any) -> None:
        nonlocal acked
        try:
            await _maybe_await(message.ack())
            acked += 1
        except Exception as exc:
            ack_errors.append(f"{type(exc).__name__}: {exc}"[:300])
        finally:
            slots.release()
            if acked + len(ack_errors) >= args.n:
                finished.set()

    gen = broker.listen()

    async def pump() -> None:
        received = 0
        async for message in gen:
            await slots.acquire()
            task = asyncio.create_task(ack(message))
            pending.add(task)
            task.add_done_callback(pending.discard)
            received += 1
            if received >= args.n:
                return

    cpu0, wall0 = _cpu(), time.perf_counter()
    pump_task = asyncio.create_task(pump())
    timed_out = False
    try:
        await asyncio.wait_for(finished.wait(), args.timeout)
    except asyncio.TimeoutError:
        timed_out = True
    wall, cpu = time.perf_counter() - wall0, _cpu() - cpu0
    done_at = time.monotonic()  # CLOCK_MONOTONIC: comparable with the proxy's timestamps
    pump_task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await pump_task
    await _close_listener(gen)
    if pending:
        await asyncio.wait(pending, timeout=CLOSE_TIMEOUT)
    shutdown_error = await _shutdown(broker)
    return {
        "wall": wall,
        "cpu": cpu,
        "acked": acked,
        "done_at": done_at,
        "timed_out": timed_out,
        "errors": ack_errors[:3],
        "shutdown_error": shutdown_error,
    }


# -- cold start ---------------------------------------------------------------------------------------
async def cold(args: argparse.Namespace) -> dict[str, Any]:
    broker = make_broker(args)

    @broker.task(task_name=TASK_NAME)
    async def noop(i: int) -> None:
        del i

    await broker.startup()
    await noop.kiq(1)
    gen = broker.listen()
    acked_at: float | None = None
    usage: resource.struct_rusage | None = None

    async def first() -> None:
        nonlocal acked_at, usage
        async for message in gen:
            await _maybe_await(message.ack())
            acked_at = time.time()
            usage = resource.getrusage(resource.RUSAGE_SELF)
            return

    await asyncio.wait_for(first(), args.timeout)
    await _close_listener(gen)
    shutdown_error = await _shutdown(broker)
    assert acked_at is not None and usage is not None
    return {
        "acked_at": acked_at,
        "cpu": usage.ru_utime + usage.ru_stime,
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "shutdown_error": shutdown_error,
    }


# -- idle ---------------------------------------------------------------------------------------------
async def idle(args: argparse.Namespace) -> dict[str, Any]:
    broker = make_broker(args)
    await broker.startup()
    gen = broker.listen()
    received = 0

    async def drain() -> None:
        nonlocal received
        async for message in gen:
            received += 1
            await _maybe_await(message.ack())

    started = time.monotonic()
    task = asyncio.create_task(drain())
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(task), args.duration)
    listened = time.monotonic() - started
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError, Exception):
        await asyncio.wait_for(task, CLOSE_TIMEOUT)
    await _close_listener(gen)
    shutdown_error = await _shutdown(broker)
    return {"listened": listened, "received": received, "shutdown_error": shutdown_error}


# -- installed size of runtime dependencies -----------------------------------------------------------
def _requirement_class() -> Any:
    try:
        from packaging.requirements import Requirement
    except ImportError:  # the aiosqs venv has no packaging; pip vendors it
        from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]
    return Requirement


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def closure(root: str, extras: frozenset[str] = frozenset()) -> set[str]:
    """Normalized names of ``root`` and every distribution it needs at runtime (markers evaluated)."""
    requirement = _requirement_class()
    seen: dict[str, set[str]] = {}
    todo: list[tuple[str, frozenset[str]]] = [(root, extras)]
    for _ in range(10_000):
        if not todo:
            break
        name, wanted = todo.pop()
        key = _normalize(name)
        known = seen.get(key)
        if known is not None and wanted <= known:
            continue
        seen.setdefault(key, set()).update(wanted)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            req = requirement(text)
            envs = [{"extra": ""}] + [{"extra": e} for e in sorted(seen[key])]
            if req.marker is not None and not any(req.marker.evaluate(env) for env in envs):
                continue
            todo.append((req.name, frozenset(req.extras)))
    return set(seen)


def dist_size(name: str) -> int:
    """Bytes on disk of the files a distribution installed (its RECORD), excluding our editable source."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return 0
    total = 0
    for file in dist.files or []:
        path = Path(str(dist.locate_file(file)))
        with contextlib.suppress(OSError):
            total += path.stat().st_size
    return total


def sizes(args: argparse.Namespace) -> dict[str, Any]:
    root = _normalize(args.dist)
    everything = closure(root)
    taskiq_share = closure("taskiq")
    own = sorted(everything - taskiq_share - {root})
    per_dist = {name: dist_size(name) for name in own}
    return {
        "version": metadata.version(args.dist),
        "total": sum(per_dist.values()),
        "per_dist": per_dist,
        "closure": len(everything),
        "taskiq_closure_size": sum(dist_size(n) for n in taskiq_share),
    }


# -- entry point --------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("mode", choices=["publish", "consume", "cold", "idle", "sizes"])
    parser.add_argument("--lib", default="taskiq_sqs_http")
    parser.add_argument("--dist", default="taskiq-sqs-http")
    parser.add_argument("--endpoint", default=os.environ.get("TEST_AWS_ENDPOINT_URL", ""))
    parser.add_argument("--queue", default="")
    parser.add_argument("-n", type=int, default=100)
    parser.add_argument("--producers", type=int, default=1)
    parser.add_argument("--prefetch", type=int, default=1)
    parser.add_argument("--batching", action="store_true")
    parser.add_argument("--wait", type=int, default=None)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--shutdown-timeout", type=float, default=10.0)
    args = parser.parse_args()
    if args.mode == "sizes":
        print(json.dumps(sizes(args)))
        return 0
    if not args.endpoint.startswith(("http://127.0.0.1:", "http://localhost:")):
        parser.error("the benchmark only talks to an emulator on 127.0.0.1")
    runner = {"publish": publish, "consume": consume, "cold": cold, "idle": idle}[args.mode]
    result = asyncio.run(asyncio.wait_for(runner(args), RUN_TIMEOUT + 60))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
