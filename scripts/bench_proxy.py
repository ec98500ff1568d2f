"""A tiny counting HTTP/1.1 proxy for the broker benchmark (scripts/bench.py); stdlib only.

It listens on 127.0.0.1, forwards every request byte for byte to one upstream (MiniStack, also on
127.0.0.1) over a keep-alive connection per client connection, and records ``(monotonic time, operation)``
for each request. The operation is the ``X-Amz-Target`` suffix (SQS JSON protocol, used by both our client
and botocore 1.3x+), else the ``Action=`` of a query-protocol body, else ``METHOD /path``. Counting at the
wire is the same for both libraries, whatever their internals do.

Bounded by construction: requests are read with a size cap and a per-read timeout, and ``aclose()`` closes
every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = ["CountingProxy"]

_MAX_HEAD = 64 * 1024
_MAX_BODY = 16 * 1024 * 1024
_READ_TIMEOUT = 120.0
_ACTION = re.compile(rb"(?:^|&)Action=([A-Za-z]+)")


def _headers(head: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        out[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return out


def _operation(head: bytes, headers: dict[str, str], body: bytes) -> str:
    target = headers.get("x-amz-target")
    if target:
        return target.rpartition(".")[2]
    match = _ACTION.search(body)
    if match:
        return match.group(1).decode()
    request_line = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
    return " ".join(request_line[:2])


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    """The head up to and including the blank line, or None at a clean end of stream."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        return None
    if len(head) > _MAX_HEAD:
        raise ValueError("HTTP head too large")
    return head


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str], *, response: bool) -> bytes:
    """The raw body bytes as they were framed (content-length, chunked, or until close for responses)."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        total = 0
        for _ in range(1_000_000):  # bounded: at most a million chunks
            size_line = await asyncio.wait_for(reader.readuntil(b"\r\n"), _READ_TIMEOUT)
            size = int(size_line.split(b";")[0].strip(), 16)
            total += size
            if total > _MAX_BODY:
                raise ValueError("chunked body too large")
            data = await asyncio.wait_for(reader.readexactly(size + 2), _READ_TIMEOUT)
            chunks.append(size_line + data)
            if size == 0:
                return b"".join(chunks)
        raise ValueError("too many chunks")
    length = headers.get("content-length")
    if length is not None:
        size = int(length)
        if size > _MAX_BODY:
            raise ValueError("body too large")
        return await asyncio.wait_for(reader.readexactly(size), _READ_TIMEOUT)
    if response:
        return await asyncio.wait_for(reader.read(_MAX_BODY), _READ_TIMEOUT)
    return b""


@dataclass
class CountingProxy:
    """Forwards to ``upstream`` (``http://127.0.0.1:PORT``) and counts requests by operation."""

    upstream: str
    events: list[tuple[float, str]] = field(default_factory=list[tuple[float, str]])
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set[asyncio.StreamWriter])

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def start(self) -> CountingProxy:
        parts = urlsplit(self.upstream)
        if parts.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError(f"the counting proxy only forwards to 127.0.0.1, not {self.upstream}")
        self._host = "127.0.0.1"
        self._port = parts.port or 80
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    def counts(self, since: float = 0.0, until: float = float("inf")) -> Counter[str]:
        return Counter(op for at, op in self.events if since <= at < until)

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self._writers.add(client_writer)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            for _ in range(10_000_000):  # bounded keep-alive loop
                head = await _read_head(client_reader)
                if head is None:
                    return
                headers = _headers(head)
                body = await _read_body(client_reader, headers, response=False)
                self.events.append((time.monotonic(), _operation(head, headers, body)))
                if upstream is None:
                    upstream = await asyncio.open_connection(self._host, self._port)
                    self._writers.add(upstream[1])
                up_reader, up_writer = upstream
                up_writer.write(head + body)
                await up_writer.drain()
                response_head = await _read_head(up_reader)
                if response_head is None:
                    return
                response_headers = _headers(response_head)
                response_body = await _read_body(up_reader, response_headers, response=True)
                client_writer.write(response_head + response_body)
                await client_writer.drain()
                closing = "close" in (
                    headers.get("connection", "").lower() + response_headers.get("connection", "").lower()
                )
                if closing or (
                    "content-length" not in response_headers
                    and "chunked" not in response_headers.get("transfer-encoding", "").lower()
                ):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
            return
        finally:
            for writer in (client_writer, upstream[1] if upstream else None):
                if writer is not None:
                    self._writers.discard(writer)
                    writer.close()
