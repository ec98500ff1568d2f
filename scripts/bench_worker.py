"""One broker-benchmark measurement in its own process; scripts/bench.py starts it with either venv.

Ours runs in .venv (``--lib taskiq_sqs_http``), taskiq-aio-sqs 2.1.1 in .venv-aiosqs
(``--lib taskiq_aio_sqs``), so their botocore never meets ours. Both libraries take the same constructor
arguments, so one code path drives both. Only the standard library is imported at module level: the
library is imported inside the measurement (the cold-start mode counts that import).
The last stdout line is one JSON object.

Modes:
  publish   N tasks through ``task.kiq()`` (P concurrent producers), then ``shutdown()``
  consume   listen() and ack until N messages are acked (acks run concurrently, at most 100 in flight)
  payload   one payload size: N unbatched kiq() to queue A, N batched kiq() to queue B, then consume and
            ack N from A; client CPU of each phase
  queues    listen to Q queues (idle until the bench fills them), ack N tasks; CPU from first message on
  inflight  receive K messages and hold them (heartbeats on or off) for a while; RSS before and after
  buffer    batching producer: N small kiq() as fast as they return; peak RSS over the baseline
  offload-producer / offload-consumer   one payload of S bytes through S3: peak RSS over the baseline
  listen-ack   sequential ``async for m in broker.listen(): await m.ack()`` of N tasks
  pool      one of several worker processes: READY, wait for "go" on stdin, ack until "stop"
  cold      process start -> import, broker, startup, kiq one task, receive and ack it (wall, CPU, RSS)
  idle      listen() on an empty queue for D seconds (the requests are counted by the proxy in front)
  sizes     on-disk size of the library's runtime dependency closure minus taskiq's (run inside a venv)

Every loop is bounded by a count and every wait by a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import importlib.metadata as metadata
import inspect
import json
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REGION = "us-east-1"
TASK_NAME = "bench:noop"
MAX_ACKS_IN_FLIGHT = 100
RUN_TIMEOUT = 240.0
CLOSE_TIMEOUT = 15.0
DRAIN_TIMEOUT = 60.0
# 2.1.1's listener only stops after its current poll cycle (up to wait_time_seconds of 1 s polls); it is
# cut short after this long, outside every measurement window, so that a run does not idle for 10-20 s.
LISTENER_CLOSE_TIMEOUT = 2.0


def make_broker(args: argparse.Namespace, queue: str | None = None, **overrides: Any) -> Any:
    module = importlib.import_module(args.lib)
    kwargs: dict[str, Any] = {
        "endpoint_url": args.endpoint,
        "region_name": REGION,
        "aws_access_key_id": "test",
        "aws_secret_access_key": "test",
        "max_number_of_messages": args.prefetch,
        "enable_batching": args.batching,
    }
    if args.wait is not None:  # None: the library's default (10 s in both)
        kwargs["wait_time_seconds"] = args.wait
    if args.bucket:
        kwargs["s3_extended_bucket_name"] = args.bucket
    kwargs.update(overrides)
    return module.SQSBroker(queue or args.queue, **kwargs)


def register_noop(broker: Any) -> Any:
    @broker.task(task_name=TASK_NAME)
    async def noop(i: Any) -> None:  # never runs here
        del i

    return noop


def _cpu() -> float:
    return time.process_time()


def _status_kb(field: str) -> int:
    """A ``/proc/self/status`` field in kB (VmRSS now, VmHWM the peak since the last `reset_peak`)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def rss_kb() -> int:
    gc.collect()
    return _status_kb("VmRSS")


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ``clear_refs`` 5), so the peak of one phase can be read."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_kb() -> int:
    return _status_kb("VmHWM")


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
    """Wraps the client's send methods on the broker: when did the last SendMessage(Batch) complete, and
    how many entries were attempted?

    Throughput is measured to the moment the last message is accepted by SQS, the same wire-level event
    for both libraries, so a slow or hanging ``shutdown()`` does not count as publishing time (it is
    reported on its own). The wrapper adds one attribute lookup and a clock read per request.
    """

    def __init__(self, broker: Any) -> None:
        self.last: float | None = None
        self.requests = 0
        self.attempted = 0
        client = getattr(broker, "_sqs", None) or getattr(broker, "_sqs_client", None)
        self.installed = client is not None
        for name in ("send_message", "send_message_batch"):
            original = getattr(client, name, None)
            if original is not None:
                setattr(client, name, self._wrap(original, batch=name.endswith("batch")))

    def _wrap(self, original: Callable[..., Awaitable[Any]], *, batch: bool) -> Any:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            entries = kwargs.get("Entries", args[1] if len(args) > 1 else kwargs.get("entries", ()))
            try:
                result = await original(*args, **kwargs)
            finally:
                self.attempted += len(entries) if batch else 1
            self.last = time.perf_counter()
            self.requests += 1
            return result

        return timed

    async def drained(self, count: int, timeout: float = DRAIN_TIMEOUT) -> bool:
        """Wait until ``count`` messages were handed to SQS (accepted or refused); False on timeout."""
        if not self.installed:
            return False
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / 0.005) + 1):
            if self.attempted >= count:
                return True
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.005)
        return False


async def kick_all(task: Any, count: int, producers: int, arg: Any = None) -> tuple[int, list[str]]:
    """``count`` kiq() calls from ``producers`` concurrent loops; (kicked, first errors)."""
    producers = max(1, min(producers, count)) if count else 1
    shares = [count // producers + (1 if k < count % producers else 0) for k in range(producers)]
    kicked = 0
    errors: list[str] = []

    async def producer(share: int) -> None:
        nonlocal kicked
        for i in range(share):
            try:
                await task.kiq(i if arg is None else arg)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}"[:300])
                return
            kicked += 1

    await asyncio.wait_for(asyncio.gather(*(producer(c) for c in shares if c)), RUN_TIMEOUT)
    return kicked, errors[:3]


class Acker:
    """Acks messages concurrently (at most MAX_ACKS_IN_FLIGHT) until ``target`` are settled."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.acked = 0
        self.errors: list[str] = []
        self.first_at: float | None = None  # perf_counter and CPU at the first received message
        self.first_cpu = 0.0
        self.done = asyncio.Event()
        self._slots = asyncio.Semaphore(MAX_ACKS_IN_FLIGHT)
        self._pending: set[asyncio.Task[None]] = set()

    async def _ack(self, message: Any) -> None:
        try:
            await _maybe_await(message.ack())
            self.acked += 1
        except Exception as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}"[:300])
        finally:
            self._slots.release()
            if self.acked + len(self.errors) >= self.target:
                self.done.set()

    async def pump(self, gen: Any) -> None:
        received = 0
        async for message in gen:
            if self.first_at is None:
                self.first_at, self.first_cpu = time.perf_counter(), _cpu()
            await self._slots.acquire()
            task = asyncio.create_task(self._ack(message))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            received += 1
            if received >= self.target:
                return

    async def settle(self) -> None:
        if self._pending:
            await asyncio.wait(self._pending, timeout=CLOSE_TIMEOUT)


async def ack_until(broker: Any, target: int, timeout: float) -> dict[str, Any]:
    """listen() and ack ``target`` messages; wall/CPU from the call, and from the first message on."""
    acker = Acker(target)
    gen = broker.listen()
    cpu0, wall0 = _cpu(), time.perf_counter()
    pump = asyncio.create_task(acker.pump(gen))
    timed_out = False
    try:
        await asyncio.wait_for(acker.done.wait(), timeout)
    except asyncio.TimeoutError:
        timed_out = True
    end, cpu_end = time.perf_counter(), _cpu()
    done_at = time.monotonic()  # CLOCK_MONOTONIC: comparable with the proxy's timestamps
    pump.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await pump
    await _close_listener(gen)
    await acker.settle()
    first = acker.first_at if acker.first_at is not None else end
    return {
        "wall": end - wall0,
        "cpu": cpu_end - cpu0,
        "active_wall": end - first,
        "active_cpu": cpu_end - (acker.first_cpu if acker.first_at is not None else cpu_end),
        "acked": acker.acked,
        "done_at": done_at,
        "timed_out": timed_out,
        "errors": acker.errors[:3],
    }


# -- publish ------------------------------------------------------------------------------------------
async def publish(args: argparse.Namespace) -> dict[str, Any]:
    broker = make_broker(args)
    noop = register_noop(broker)
    await broker.startup()
    clock = SendClock(broker)
    arg = "x" * args.payload if args.payload else None
    cpu0, wall0 = _cpu(), time.perf_counter()
    kicked, errors = await kick_all(noop, args.n, args.producers, arg)
    kick_wall = time.perf_counter() - wall0
    if args.drain:
        await clock.drained(kicked)
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
        "errors": errors,
        "shutdown_error": shutdown_error,
    }


# -- consume ------------------------------------------------------------------------------------------
async def consume(args: argparse.Namespace) -> dict[str, Any]:
    broker = make_broker(args)
    await broker.startup()
    result = await ack_until(broker, args.n, args.timeout)
    result["shutdown_error"] = await _shutdown(broker)
    return result


# -- payload size curve -------------------------------------------------------------------------------
async def payload(args: argparse.Namespace) -> dict[str, Any]:
    """Client CPU per task at one payload size: unbatched publish, batched publish, consume and ack."""
    arg = "x" * args.payload
    plain = make_broker(args, args.queue, enable_batching=False, max_number_of_messages=10)
    batched = make_broker(args, args.queue_b, enable_batching=True)
    plain_task, batched_task = register_noop(plain), register_noop(batched)
    await plain.startup()
    await batched.startup()
    plain_clock, batched_clock = SendClock(plain), SendClock(batched)
    out: dict[str, Any] = {}

    cpu0, wall0 = _cpu(), time.perf_counter()
    kicked, errors = await kick_all(plain_task, args.n, 1, arg)
    out["unbatched"] = {"cpu": _cpu() - cpu0, "wall": time.perf_counter() - wall0, "kicked": kicked}
    out["unbatched_errors"] = errors

    cpu0, wall0 = _cpu(), time.perf_counter()
    kicked, errors = await kick_all(batched_task, args.n, args.producers, arg)
    drained = await batched_clock.drained(kicked)
    out["batched"] = {"cpu": _cpu() - cpu0, "wall": time.perf_counter() - wall0, "kicked": kicked}
    out["batched_errors"] = errors
    out["batched_drained"] = drained
    out["batched_shutdown_error"] = await _shutdown(batched)

    consumed = await ack_until(plain, int(out["unbatched"]["kicked"]), args.timeout)
    out["consume"] = {"cpu": consumed["cpu"], "wall": consumed["wall"], "acked": consumed["acked"]}
    out["consume_errors"] = consumed["errors"]
    out["shutdown_error"] = await _shutdown(plain)
    out["send_requests"] = plain_clock.requests
    return out


# -- queues per worker --------------------------------------------------------------------------------
async def queues(args: argparse.Namespace) -> dict[str, Any]:
    """One broker listening to several queues: the bench counts idle polls at its proxy, then fills."""
    module = importlib.import_module(args.lib)
    names = args.queues.split(",")
    broker = make_broker(args, names[0])
    extra = [
        module.SQSQueue(name=name, wait_time_seconds=args.wait or 20, max_number_of_messages=args.prefetch)
        for name in names[1:]
    ]
    if extra:
        broker.with_queues(*extra)
    await broker.startup()
    result = await ack_until(broker, args.n, args.timeout)
    result["shutdown_error"] = await _shutdown(broker, args.shutdown_timeout)
    return result


# -- tasks held in flight -----------------------------------------------------------------------------
async def inflight(args: argparse.Namespace) -> dict[str, Any]:
    """Receive K messages and keep them unacked for ``--duration`` s, then ack all.

    RSS is read after startup (base) and once all K are held; the heartbeat requests in the holding
    window are counted by the bench's proxy between ``full_at`` and ``end_at``.
    """
    overrides: dict[str, Any] = {}
    if args.heartbeat_interval:
        overrides.update(enable_heartbeat=True, heartbeat_interval=args.heartbeat_interval)
    if args.visibility:
        overrides["visibility_timeout"] = args.visibility
    broker = make_broker(args, **overrides)
    await broker.startup()
    base = rss_kb()
    reset_peak()
    held: list[Any] = []
    full = asyncio.Event()
    gen = broker.listen()

    async def hold() -> None:
        async for message in gen:
            held.append(message)
            if len(held) >= args.n:
                full.set()

    listener = asyncio.create_task(hold())
    started = time.perf_counter()
    timed_out = False
    try:
        await asyncio.wait_for(full.wait(), args.timeout)
    except asyncio.TimeoutError:
        timed_out = True
    receive_wall = time.perf_counter() - started
    full_at = time.monotonic()
    held_rss = rss_kb()
    await asyncio.sleep(args.duration)
    end_at = time.monotonic()
    peak = peak_kb()
    acks = await asyncio.gather(*(_maybe_await(m.ack()) for m in held), return_exceptions=True)
    listener.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await listener
    await _close_listener(gen)
    shutdown_error = await _shutdown(broker)
    return {
        "held": len(held),
        "timed_out": timed_out,
        "receive_wall": receive_wall,
        "base_kb": base,
        "held_kb": held_rss,
        "peak_kb": peak,
        "full_at": full_at,
        "end_at": end_at,
        "ack_errors": sorted({type(a).__name__ for a in acks if isinstance(a, BaseException)}),
        "shutdown_error": shutdown_error,
    }


# -- producer buffer ----------------------------------------------------------------------------------
async def buffer(args: argparse.Namespace) -> dict[str, Any]:
    """A batching producer kicking N small tasks back to back: how much memory do buffered tasks take?"""
    broker = make_broker(args, enable_batching=True)
    noop = register_noop(broker)
    await broker.startup()
    clock = SendClock(broker)
    base = rss_kb()
    reset_peak()
    wall0 = time.perf_counter()
    kicked, errors = await kick_all(noop, args.n, 1)
    kick_wall = time.perf_counter() - wall0
    after_kicks = _status_kb("VmRSS")
    drained = await clock.drained(kicked)
    drain_wall = time.perf_counter() - wall0
    peak = peak_kb()
    shutdown_error = await _shutdown(broker)
    return {
        "kicked": kicked,
        "errors": errors,
        "base_kb": base,
        "after_kicks_kb": after_kicks,
        "peak_kb": peak,
        "kick_wall": kick_wall,
        "drain_wall": drain_wall,
        "drained": drained,
        "shutdown_error": shutdown_error,
    }


# -- offloaded payloads -------------------------------------------------------------------------------
async def offload_producer(args: argparse.Namespace) -> dict[str, Any]:
    broker = make_broker(args)
    noop = register_noop(broker)
    await broker.startup()
    base = rss_kb()
    arg = "x" * args.payload  # one copy of the payload is the caller's own argument
    reset_peak()
    wall0 = time.perf_counter()
    error = None
    try:
        await asyncio.wait_for(noop.kiq(arg), RUN_TIMEOUT)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
    wall = time.perf_counter() - wall0
    peak = peak_kb()
    del arg
    shutdown_error = await _shutdown(broker)
    return {"base_kb": base, "peak_kb": peak, "wall": wall, "error": error, "shutdown_error": shutdown_error}


async def offload_consumer(args: argparse.Namespace) -> dict[str, Any]:
    broker = make_broker(args)
    await broker.startup()
    base = rss_kb()
    reset_peak()
    gen = broker.listen()
    wall0 = time.perf_counter()
    size = 0

    async def first() -> None:
        nonlocal size
        async for message in gen:
            size = len(message.data)
            await _maybe_await(message.ack())
            return

    error = None
    try:
        await asyncio.wait_for(first(), args.timeout)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
    wall = time.perf_counter() - wall0
    peak = peak_kb()
    await _close_listener(gen)
    shutdown_error = await _shutdown(broker)
    return {
        "base_kb": base,
        "peak_kb": peak,
        "wall": wall,
        "size": size,
        "error": error,
        "shutdown_error": shutdown_error,
    }


# -- sequential consumption ---------------------------------------------------------------------------
async def listen_ack(args: argparse.Namespace) -> dict[str, Any]:
    """The plainest consumer: one message at a time, ``await ack()`` before the next."""
    broker = make_broker(args)
    await broker.startup()
    gen = broker.listen()
    acked = 0
    first_at: float | None = None

    async def loop() -> None:
        nonlocal acked, first_at
        async for message in gen:
            if first_at is None:
                first_at = time.perf_counter()
            await _maybe_await(message.ack())
            acked += 1
            if acked >= args.n:
                return

    timed_out = False
    try:
        await asyncio.wait_for(loop(), args.timeout)
    except asyncio.TimeoutError:
        timed_out = True
    end = time.perf_counter()
    await _close_listener(gen)
    shutdown_error = await _shutdown(broker)
    wall = end - first_at if first_at is not None else 0.0
    return {"acked": acked, "wall": wall, "timed_out": timed_out, "shutdown_error": shutdown_error}


# -- one of several worker processes ------------------------------------------------------------------
async def pool(args: argparse.Namespace) -> dict[str, Any]:
    """READY on stdout after startup; ack everything from "go" until "stop" (or EOF) on stdin."""
    broker = make_broker(args)
    await broker.startup()
    print("READY", flush=True)
    line = await asyncio.wait_for(asyncio.to_thread(sys.stdin.readline), RUN_TIMEOUT)
    if line.strip() != "go":
        raise RuntimeError(f"expected 'go' on stdin, got {line!r}")
    acker = Acker(10**9)
    gen = broker.listen()
    cpu0 = _cpu()
    pump = asyncio.create_task(acker.pump(gen))
    await asyncio.wait_for(asyncio.to_thread(sys.stdin.readline), RUN_TIMEOUT)
    cpu = _cpu() - cpu0
    pump.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await pump
    await _close_listener(gen)
    await acker.settle()
    shutdown_error = await _shutdown(broker)
    return {"acked": acker.acked, "cpu": cpu, "errors": acker.errors[:3], "shutdown_error": shutdown_error}


# -- cold start ---------------------------------------------------------------------------------------
async def cold(args: argparse.Namespace) -> dict[str, Any]:
    broker = make_broker(args)
    noop = register_noop(broker)
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
    shutdown_error = await _shutdown(broker, args.shutdown_timeout)
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
MODES: dict[str, Callable[[argparse.Namespace], Awaitable[dict[str, Any]]]] = {
    "publish": publish,
    "consume": consume,
    "payload": payload,
    "queues": queues,
    "inflight": inflight,
    "buffer": buffer,
    "offload-producer": offload_producer,
    "offload-consumer": offload_consumer,
    "listen-ack": listen_ack,
    "pool": pool,
    "cold": cold,
    "idle": idle,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("mode", choices=[*MODES, "sizes"])
    parser.add_argument("--lib", default="taskiq_sqs_http")
    parser.add_argument("--dist", default="taskiq-sqs-http")
    parser.add_argument("--endpoint", default=os.environ.get("TEST_AWS_ENDPOINT_URL", ""))
    parser.add_argument("--queue", default="")
    parser.add_argument("--queue-b", default="", help="payload: the queue of the batched phase")
    parser.add_argument("--queues", default="", help="queues: comma-separated names")
    parser.add_argument("--bucket", default="", help="s3_extended_bucket_name")
    parser.add_argument("-n", type=int, default=100)
    parser.add_argument("--producers", type=int, default=1)
    parser.add_argument("--prefetch", type=int, default=1)
    parser.add_argument("--batching", action="store_true")
    parser.add_argument("--drain", action="store_true", help="publish: wait for the sends before shutdown")
    parser.add_argument("--payload", type=int, default=0, help="bytes of the task's string argument")
    parser.add_argument("--wait", type=int, default=None)
    parser.add_argument("--visibility", type=int, default=None)
    parser.add_argument("--heartbeat-interval", type=float, default=0.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--shutdown-timeout", type=float, default=10.0)
    args = parser.parse_args()
    if args.mode == "sizes":
        print(json.dumps(sizes(args)))
        return 0
    if not args.endpoint.startswith(("http://127.0.0.1:", "http://localhost:")):
        parser.error("the benchmark only talks to an emulator on 127.0.0.1")
    result = asyncio.run(asyncio.wait_for(MODES[args.mode](args), RUN_TIMEOUT + 60))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
