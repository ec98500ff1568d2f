"""Request bodies through the aiohttp transport: exact bytes with a Content-Length, and no copy when large."""

from __future__ import annotations

import asyncio
import warnings
from asyncio import selector_events
from collections.abc import AsyncIterator
from typing import Any

import pytest

from taskiq_sqs_http.aws._aiohttp import _ZERO_COPY_FROM, AiohttpTransport  # pyright: ignore[reportPrivateUsage]

TIMEOUTS = {"connect": 5.0, "read": 30.0, "write": 30.0, "pool": 30.0}
Seen = list[tuple[dict[str, str], bytes]]


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[str, Seen]]:
    """A keep-alive HTTP/1.1 server that records each request's headers and body and answers 200."""
    seen: Seen = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers: dict[str, str] = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                seen.append((headers, body))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/bucket/key", seen
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    "size", [0, 1, _ZERO_COPY_FROM - 1, _ZERO_COPY_FROM, 256 * 1024, 3 * 1024 * 1024 + 7]
)
async def test_every_body_arrives_exactly_with_its_content_length(
    endpoint: tuple[str, Seen], size: int
) -> None:
    url, seen = endpoint
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    transport = AiohttpTransport()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)  # aiohttp's "large raw bytes body" warning
            for _ in range(2):  # the second request reuses the connection
                status, _, answer = await transport.request_raw(
                    "PUT", url, [("content-type", "application/octet-stream")], body, TIMEOUTS
                )
                assert (status, answer) == (200, b"ok")
    finally:
        await transport.aclose()
    assert len(seen) == 2
    for headers, received in seen:
        assert received == body
        assert "transfer-encoding" not in headers
        assert headers.get("content-length", "0") == str(size)


async def test_a_large_body_reaches_the_socket_as_views_of_itself(
    endpoint: tuple[str, Seen], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No buffer the size of the body is made on its way to the socket: what is written is the body."""
    url, _ = endpoint
    body = b"a" * (512 * 1024)
    writes: list[Any] = []
    original = selector_events._SelectorSocketTransport.write  # pyright: ignore[reportPrivateUsage, reportAttributeAccessIssue]

    def recording(self: Any, data: Any) -> None:
        writes.append(data)
        original(self, data)

    monkeypatch.setattr(selector_events._SelectorSocketTransport, "write", recording)  # pyright: ignore[reportPrivateUsage, reportAttributeAccessIssue]
    transport = AiohttpTransport()
    try:
        await transport.request_raw("PUT", url, [], body, TIMEOUTS)
    finally:
        await transport.aclose()
    large = [w for w in writes if len(w) >= 64 * 1024]
    assert large, "the body was not written at all"
    assert all(isinstance(w, memoryview) and w.obj is body for w in large)
    assert sum(len(w) for w in large) == len(body)
