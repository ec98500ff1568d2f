"""A fault-injecting HTTP/1.1 proxy between our AWS clients and MiniStack, for the chaos suite.

It listens on 127.0.0.1 only and forwards to one upstream that must also be a loopback address, so no
byte ever leaves the machine. Each request is classified by operation (the ``X-Amz-Target`` suffix for
SQS, ``S3.<Operation>`` for S3) and counted; a `FaultPlan` decides, with a seeded RNG (reproducible runs),
whether it gets a fault:

===============  ========================================================================================
``500``          answer 500 InternalError without forwarding
``503``          answer 503 ServiceUnavailable (S3: 503 SlowDown) without forwarding
``throttle``     answer 400 ThrottlingException (S3: 503 SlowDown) without forwarding
``drop_before``  close the connection without forwarding (the request was not applied)
``drop_after``   forward, then close the connection without answering (the request *was* applied)
``delay``        forward, then answer only after ``delay_seconds`` (past the client's read timeout)
``fail_entries`` batch calls: remove ``failed_entries`` entries before forwarding and report them as
                 ``Failed`` (SenderFault false), so they truly were not applied
``overlimit``    answer 403 OverLimit without forwarding (SQS's in-flight quota on a standard queue);
                 only when named in ``kinds`` or ``scripted``, never part of the default mix
===============  ========================================================================================

and two run-wide conditions, counted as faults when they reject a request:

* ``clock_skew``: the "server" clock runs ``clock_skew`` seconds ahead: every response ``Date`` says so,
  and a request signed more than 5 minutes off it is refused (``skew``), as AWS does;
* ``credentials_valid``: a callable that says whether an access key id may still be used; a request signed
  with any other is refused with ``ExpiredToken`` (``expired``);

and one outage: while the upstream refuses connections, the client's connection is closed (``upstream_down``).

It also serves as the benchmark's request counter (``scripts/bench.py``): every request is recorded with
its ``time.monotonic()`` (``events``, ``counts(since, until)``), and client connections are counted
(``open_connections``, ``peak_connections``, ``connections_opened``), so one proxy parses HTTP for both.

Everything is bounded: each read has a timeout, bodies have a size cap, a connection serves a bounded
number of requests, delays are capped, and ``stop()`` closes every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import ipaddress
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import orjson

__all__ = ["FAULT_KINDS", "FaultPlan", "FaultProxy", "running_proxy"]

FAULT_KINDS = ("500", "503", "throttle", "drop_before", "drop_after", "delay", "fail_entries")
# Kinds that are only injected when asked for by name (not part of the default random mix).
OPT_IN_FAULT_KINDS = ("overlimit",)
BATCH_OPERATIONS = frozenset({"SendMessageBatch", "DeleteMessageBatch", "ChangeMessageVisibilityBatch"})
MAX_HEAD = 64 * 1024
MAX_BODY = 8 * 1024 * 1024
MAX_REQUESTS_PER_CONNECTION = 100_000
MAX_DELAY_SECONDS = 60.0
IDLE_TIMEOUT = 300.0
UPSTREAM_TIMEOUT = 60.0
SKEW_LIMIT = timedelta(minutes=5)
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


@dataclass(frozen=True)
class FaultPlan:
    """What to inject. ``rate`` is the probability that one request gets a fault, whatever its operation;
    the kind is drawn uniformly among ``kinds`` that apply to it (``fail_entries`` only to batch calls).
    ``scripted`` forces faults on the next requests of an operation, in order, before any random draw."""

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    operations: frozenset[str] | None = None  # None: every operation
    seed: int = 0
    delay_seconds: float = 3.0
    failed_entries: int = 1
    clock_skew: float = 0.0
    credentials_valid: Callable[[str], bool] | None = None
    scripted: dict[str, tuple[str, ...]] = field(default_factory=dict[str, tuple[str, ...]])

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be in 0..1, got {self.rate}")
        unknown = set(self.kinds).union(*self.scripted.values()) - set(FAULT_KINDS + OPT_IN_FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        if not 0.0 <= self.delay_seconds <= MAX_DELAY_SECONDS:
            raise ValueError(f"delay_seconds must be in 0..{MAX_DELAY_SECONDS}")
        if self.failed_entries < 1:
            raise ValueError("failed_entries must be at least 1")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def operation_of(method: str, target: str, headers: dict[str, str]) -> str:
    """``ReceiveMessage`` for SQS (JSON protocol), ``S3.PutObject`` and friends for S3."""
    amz_target = headers.get("x-amz-target", "")
    if amz_target:
        return amz_target.rpartition(".")[2]
    path, _, query = target.partition("?")
    has_key = len([p for p in path.split("/") if p]) >= 2
    names = {
        ("GET", True): "GetObject",
        ("PUT", True): "PutObject",
        ("HEAD", True): "HeadObject",
        ("DELETE", True): "DeleteObject",
        ("PUT", False): "CreateBucket",
        ("HEAD", False): "HeadBucket",
        ("GET", False): "ListObjects",
        ("DELETE", False): "DeleteBucket",
    }
    name = names.get((method, has_key), f"{method}{'Object' if has_key else 'Bucket'}")
    if "uploads" in query or "uploadId" in query:
        name += "Multipart"
    return "S3." + name


@dataclass
class _Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def header_map(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers}

    def encode(self) -> bytes:
        lines = [f"{self.method} {self.target} {self.version}"]
        lines += [
            f"{k}: {v}"
            for k, v in self.headers
            if k.lower() not in ("content-length", "transfer-encoding", "connection")
        ]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


@dataclass
class _Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    close: bool = False

    def encode(self, *, head_only: bool = False) -> bytes:
        lines = [f"HTTP/1.1 {self.status} {self.reason}"]
        lines += [
            f"{k}: {v}"
            for k, v in self.headers
            if k.lower() not in ("content-length", "transfer-encoding", "connection")
        ]
        if not head_only or not any(k.lower() == "content-length" for k, _ in self.headers):
            lines.append(f"Content-Length: {len(self.body)}")
        else:
            lines += [f"{k}: {v}" for k, v in self.headers if k.lower() == "content-length"]
        if self.close:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else self.body)


class _Closed(Exception):
    """The peer closed the connection cleanly between messages."""


async def _read_head(reader: asyncio.StreamReader, timeout: float) -> tuple[str, list[tuple[str, str]]]:
    try:
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise _Closed from None
        raise
    if len(raw) > MAX_HEAD:
        raise ValueError("HTTP head too large")
    lines = raw.decode("latin-1").split("\r\n")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return lines[0], headers


async def _read_body(
    reader: asyncio.StreamReader, headers: list[tuple[str, str]], *, until_close: bool
) -> bytes:
    hmap = {k.lower(): v for k, v in headers}
    if "chunked" in hmap.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        total = 0
        for _ in range(1_000_000):  # bounded: at most a million chunks
            size_line = await asyncio.wait_for(reader.readuntil(b"\r\n"), UPSTREAM_TIMEOUT)
            size = int(size_line.split(b";")[0].strip(), 16)
            total += size
            if total > MAX_BODY:
                raise ValueError("chunked body too large")
            data = await asyncio.wait_for(reader.readexactly(size + 2), UPSTREAM_TIMEOUT)
            if size == 0:
                # Trailers are not used by MiniStack or our clients; the terminating CRLF was read above.
                return b"".join(parts)
            parts.append(data[:-2])
        raise ValueError("too many chunks")
    if "content-length" in hmap:
        length = int(hmap["content-length"])
        if length > MAX_BODY:
            raise ValueError("body too large")
        return await asyncio.wait_for(reader.readexactly(length), UPSTREAM_TIMEOUT)
    if until_close:
        return await asyncio.wait_for(reader.read(MAX_BODY), UPSTREAM_TIMEOUT)
    return b""


def _error_response(operation: str, status: int, code: str, message: str) -> _Response:
    if operation.startswith("S3."):
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message><RequestId>chaos</RequestId></Error>"
        ).encode()
        content_type = "application/xml"
    else:
        body = orjson.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": message})
        content_type = "application/x-amz-json-1.0"
    headers = [
        ("Content-Type", content_type),
        ("x-amzn-RequestId", "chaos"),
        ("Date", email.utils.formatdate(usegmt=True)),
    ]
    reasons = {400: "Bad Request", 403: "Forbidden", 500: "Internal Server Error", 503: "Service Unavailable"}
    return _Response(status, reasons.get(status, "Error"), headers, body)


def _synthetic_ok() -> _Response:
    headers = [
        ("Content-Type", "application/x-amz-json-1.0"),
        ("x-amzn-RequestId", "chaos"),
        ("Date", email.utils.formatdate(usegmt=True)),
    ]
    return _Response(200, "OK", headers, b'{"Successful": []}')


class FaultProxy:
    """The proxy itself, bound to one event loop (see `running_proxy` for a thread of its own)."""

    def __init__(self, upstream: str, plan: FaultPlan | None = None) -> None:
        self.upstream = upstream
        self.plan = plan or FaultPlan()
        self.requests: Counter[str] = Counter()
        self.faults: Counter[tuple[str, str]] = Counter()
        self.statuses: Counter[int] = Counter()
        self.events: list[tuple[float, str]] = []  # (time.monotonic() at the request head, operation)
        self.open_connections = 0
        self.peak_connections = 0
        self.connections_opened = 0
        self._rng = random.Random(self.plan.seed)
        self._scripted: dict[str, list[str]] = {}
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = threading.Lock()
        self.port = 0

    # -- configuration and counters (safe to call from another thread) ----------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def upstream(self) -> str:
        return self._upstream

    @upstream.setter
    def upstream(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or not _is_loopback(parts.hostname):
            raise ValueError(f"the upstream must be http:// on a loopback address, got {url!r}")
        self._upstream = url
        self._upstream_addr = (parts.hostname, parts.port or 80)

    def set_plan(self, plan: FaultPlan) -> None:
        with self._lock:
            self.plan = plan
            self._rng = random.Random(plan.seed)
            self._scripted = {op: list(kinds) for op, kinds in plan.scripted.items()}

    def faults_by_kind(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for (_, kind), n in list(self.faults.items()):
            out[kind] += n
        return out

    def faults_by_operation(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for (op, _), n in list(self.faults.items()):
            out[op] += n
        return out

    def total_faults(self) -> int:
        return sum(self.faults.values())

    def counts(self, since: float = 0.0, until: float = float("inf")) -> Counter[str]:
        """Requests by operation whose head arrived in ``[since, until)`` (``time.monotonic()``, which is
        CLOCK_MONOTONIC and so comparable with other processes' readings on the same host)."""
        with self._lock:
            events = list(self.events)
        return Counter(op for at, op in events if since <= at < until)

    def reset_counters(self) -> None:
        with self._lock:
            self.requests.clear()
            self.faults.clear()
            self.statuses.clear()
            self.events.clear()
            self.peak_connections = self.open_connections
            self.connections_opened = 0

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        self.set_plan(self.plan)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    # -- fault decision ----------------------------------------------------------------------------
    def _decide(self, operation: str) -> str | None:
        with self._lock:
            scripted = self._scripted.get(operation)
            if scripted:
                return scripted.pop(0)
            plan = self.plan
            if plan.rate <= 0 or (plan.operations is not None and operation not in plan.operations):
                return None
            if self._rng.random() >= plan.rate:
                return None
            kinds = [k for k in plan.kinds if k != "fail_entries" or operation in BATCH_OPERATIONS]
            return self._rng.choice(kinds) if kinds else None

    def _count_fault(self, operation: str, kind: str) -> None:
        with self._lock:
            self.faults[operation, kind] += 1

    def _refusal(self, operation: str, headers: dict[str, str]) -> _Response | None:
        """Run-wide conditions: a skewed server clock, expired credentials."""
        plan = self.plan
        if plan.credentials_valid is not None:
            match = _CREDENTIAL.search(headers.get("authorization", ""))
            key = match.group(1) if match else ""
            if not plan.credentials_valid(key):
                self._count_fault(operation, "expired")
                return _error_response(
                    operation, 400, "ExpiredToken", "The security token included in the request is expired"
                )
        if plan.clock_skew:
            signed = headers.get("x-amz-date", "")
            server_now = datetime.now(timezone.utc) + timedelta(seconds=plan.clock_skew)
            try:
                when = datetime.strptime(signed, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
            except ValueError:
                when = None
            if when is None or abs(when - server_now) > SKEW_LIMIT:
                self._count_fault(operation, "skew")
                if operation.startswith("S3."):
                    response = _error_response(
                        operation,
                        403,
                        "RequestTimeTooSkewed",
                        "The difference between the request time and the current time is too large.",
                    )
                else:
                    response = _error_response(
                        operation, 400, "InvalidSignatureException", f"Signature expired: {signed}"
                    )
                self._skew_date(response)
                return response
        return None

    def _skew_date(self, response: _Response) -> None:
        if not self.plan.clock_skew:
            return
        date = email.utils.formatdate(time.time() + self.plan.clock_skew, usegmt=True)
        response.headers = [(k, v) for k, v in response.headers if k.lower() != "date"] + [("Date", date)]

    # -- serving -----------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        with self._lock:
            self.open_connections += 1
            self.connections_opened += 1
            self.peak_connections = max(self.peak_connections, self.open_connections)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            for _ in range(MAX_REQUESTS_PER_CONNECTION):
                try:
                    request_line, headers = await _read_head(reader, IDLE_TIMEOUT)
                    arrived = time.monotonic()
                except (_Closed, asyncio.TimeoutError, ConnectionError, asyncio.IncompleteReadError):
                    return
                method, target, version = request_line.split(" ", 2)
                body = await _read_body(reader, headers, until_close=False)
                request = _Request(method, target, version, headers, body)
                hmap = request.header_map
                operation = operation_of(method, target, hmap)
                with self._lock:
                    self.requests[operation] += 1
                    self.events.append((arrived, operation))
                refusal = self._refusal(operation, hmap)
                if refusal is not None:
                    writer.write(refusal.encode())
                    await writer.drain()
                    continue
                kind = self._decide(operation)
                if kind is not None:
                    self._count_fault(operation, kind)
                response: _Response | None
                if kind == "500":
                    response = _error_response(operation, 500, "InternalError", "injected by the chaos proxy")
                elif kind == "503":
                    code = "SlowDown" if operation.startswith("S3.") else "ServiceUnavailable"
                    response = _error_response(operation, 503, code, "injected by the chaos proxy")
                elif kind == "throttle":
                    if operation.startswith("S3."):
                        response = _error_response(operation, 503, "SlowDown", "Reduce your request rate.")
                    else:
                        response = _error_response(operation, 400, "ThrottlingException", "Rate exceeded")
                elif kind == "overlimit":
                    response = _error_response(
                        operation, 403, "OverLimit", "Too many messages in flight (injected by the proxy)"
                    )
                elif kind == "drop_before":
                    writer.transport.abort()
                    return
                else:
                    failing: list[dict[str, Any]] = []
                    if kind == "fail_entries":
                        kept, failing = self._remove_entries(request)
                        if kept is None:  # every entry fails: nothing to forward
                            response = self._add_failed(_synthetic_ok(), failing)
                            writer.write(response.encode())
                            await writer.drain()
                            continue
                        request = kept
                    try:
                        upstream, response = await self._forward(upstream, request)
                    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
                        upstream = None
                        self._count_fault(operation, "upstream_down")
                        writer.transport.abort()
                        return
                    if failing:
                        response = self._add_failed(response, failing)
                    if kind == "drop_after":
                        writer.transport.abort()
                        return
                    if kind == "delay":
                        await asyncio.sleep(min(self.plan.delay_seconds, MAX_DELAY_SECONDS))
                self._skew_date(response)
                with self._lock:
                    self.statuses[response.status] += 1
                writer.write(response.encode(head_only=method == "HEAD"))
                await writer.drain()
                if response.close or hmap.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
            return
        except asyncio.CancelledError:
            return  # only stop() cancels: end quietly (asyncio's stream callback would log the cancel)
        finally:
            with self._lock:
                self.open_connections -= 1
            self._writers.discard(writer)
            self._tasks.discard(task)
            writer.transport.abort()
            if upstream is not None:
                upstream[1].transport.abort()

    async def _forward(
        self, upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None, request: _Request
    ) -> tuple[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None, _Response]:
        for attempt in range(2):  # a kept-alive upstream connection may have been closed: reconnect once
            if upstream is None:
                upstream = await asyncio.wait_for(asyncio.open_connection(*self._upstream_addr), 5)
            up_reader, up_writer = upstream
            try:
                up_writer.write(request.encode())
                await up_writer.drain()
                status_line, headers = await _read_head(up_reader, UPSTREAM_TIMEOUT)
            except (_Closed, ConnectionError, asyncio.IncompleteReadError):
                up_writer.transport.abort()
                upstream = None
                if attempt == 0:
                    continue
                raise ConnectionError("upstream closed the connection") from None
            _, status, reason = [*status_line.split(" ", 2), ""][:3]
            hmap = {k.lower(): v for k, v in headers}
            no_body = request.method == "HEAD" or status in ("204", "304")
            close = hmap.get("connection", "").lower() == "close"
            body = b"" if no_body else await _read_body(up_reader, headers, until_close=close)
            if close:
                up_writer.transport.abort()
                upstream = None
            return upstream, _Response(int(status), reason, headers, body)
        raise AssertionError("unreachable")

    def _remove_entries(self, request: _Request) -> tuple[_Request | None, list[dict[str, Any]]]:
        try:
            payload = orjson.loads(request.body)
            entries: list[dict[str, Any]] = payload["Entries"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return request, []
        n = min(self.plan.failed_entries, len(entries))
        with self._lock:
            chosen = set(self._rng.sample(range(len(entries)), n))
        failing = [e for i, e in enumerate(entries) if i in chosen]
        keep = [e for i, e in enumerate(entries) if i not in chosen]
        if not keep:
            return None, failing
        return replace(request, body=orjson.dumps({**payload, "Entries": keep})), failing

    @staticmethod
    def _add_failed(response: _Response, failing: list[dict[str, Any]]) -> _Response:
        failed = [
            {"Id": e["Id"], "Code": "InternalError", "Message": "injected", "SenderFault": False}
            for e in failing
        ]
        if response.status != 200:
            return response
        data: dict[str, Any] = orjson.loads(response.body) if response.body else {"Successful": []}
        data["Failed"] = [*data.get("Failed", []), *failed]
        return replace(response, body=orjson.dumps(data))


@contextlib.contextmanager
def running_proxy(upstream: str, plan: FaultPlan | None = None) -> Generator[FaultProxy, None, None]:
    """A `FaultProxy` serving from its own thread and event loop, so a busy test loop never stalls it."""
    proxy = FaultProxy(upstream, plan)
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(proxy.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="chaos-proxy", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the chaos proxy did not start within 10 s")
    try:
        yield proxy
    finally:
        asyncio.run_coroutine_threadsafe(proxy.stop(), loop).result(15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(15)
        loop.close()
