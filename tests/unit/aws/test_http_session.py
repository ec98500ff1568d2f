"""HTTPSession and both real transports against loopback servers: timeouts, errors, ownership."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from taskiq_sqs_http.aws import (
    ConfigurationError,
    ConnectError,
    Credentials,
    HTTPSession,
    RequestTimeoutError,
    RetryPolicy,
    SessionClosedError,
    SQSClient,
    Timeouts,
    TransportError,
)
from taskiq_sqs_http.aws._aiohttp import AiohttpTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return lines[0], headers, body


@pytest.fixture
async def server() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> str:
        srv = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(srv)
        port = srv.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield start
    for srv in servers:
        srv.close()
        await srv.wait_closed()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("backend", ["aiohttp", "httpx"])
async def test_http_session_round_trip_on_each_backend(
    server: Callable[[Handler], Awaitable[str]], backend: str
) -> None:
    """Both backends send the signed host, body and headers exactly as built."""
    seen: list[tuple[str, dict[str, str], bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await _read_request(reader))
        body = b'{"QueueUrl": "http://q"}'
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    url = await server(handler)
    async with HTTPSession(backend=backend) as http:  # type: ignore[arg-type]
        async with SQSClient(endpoint_url=url, credentials=Credentials("a", "b"), session=http) as sqs:
            assert await sqs.get_queue_url("q") == "http://q"
        assert not http.closed  # borrowed: the client leaves it to its owner
    assert http.closed
    request_line, headers, body = seen[0]
    assert request_line == "POST / HTTP/1.1"
    assert headers["host"] == url.removeprefix("http://")
    assert headers["x-amz-target"] == "AmazonSQS.GetQueueUrl"
    assert body == b'{"QueueName":"q"}'


@pytest.mark.parametrize("backend", ["aiohttp", "httpx"])
async def test_http_session_read_timeout(server: Callable[[Handler], Awaitable[str]], backend: str) -> None:
    """A server slower than the read timeout gives our RequestTimeoutError."""
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await release.wait()
        writer.close()

    url = await server(handler)
    timeouts = Timeouts(connect=1, read=0.2)
    try:
        async with HTTPSession(backend=backend, timeouts=timeouts) as http:  # type: ignore[arg-type]
            with pytest.raises(RequestTimeoutError):
                await http.send("GET", url + "/", [], b"", operation="Probe")
    finally:
        release.set()


@pytest.mark.parametrize("backend", ["aiohttp", "httpx"])
async def test_http_session_connection_refused(backend: str) -> None:
    """Nothing listening gives ConnectError (so the request certainly did not run)."""
    async with HTTPSession(backend=backend) as http:  # type: ignore[arg-type]
        with pytest.raises(ConnectError):
            await http.send("GET", f"http://127.0.0.1:{_closed_port()}/", [], b"", operation="Probe")


@pytest.mark.parametrize("backend", ["aiohttp", "httpx"])
async def test_http_session_connection_dropped(
    server: Callable[[Handler], Awaitable[str]], backend: str
) -> None:
    """A server that hangs up mid-response gives a TransportError, which the client retries."""
    calls = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal calls
        calls += 1
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await writer.drain()
        writer.close()

    url = await server(handler)
    async with HTTPSession(backend=backend) as http:  # type: ignore[arg-type]
        client = SQSClient(
            endpoint_url=url,
            credentials=Credentials("a", "b"),
            session=http,
            retry_policy=RetryPolicy.testing(max_attempts=2),
        )
        async with client as sqs:
            with pytest.raises(TransportError):
                await sqs.get_queue_url("q")
    assert calls == 2


async def test_http_session_borrowed_client_is_not_closed() -> None:
    """A user's AsyncClient is used through send() and left open for its owner."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"QueueUrl": "u"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as user_client:
        sqs = SQSClient(endpoint_url="http://x", credentials=Credentials("a", "b"), http_client=user_client)
        async with sqs:
            assert await sqs.get_queue_url("q") == "u"
        assert sqs.session.closed
        assert not user_client.is_closed


async def test_clients_never_close_a_session_they_were_given() -> None:
    """Whoever opens a session closes it: clients only borrow one passed to them."""
    http = HTTPSession(transport=httpx.MockTransport(lambda r: httpx.Response(200, content=b"{}")))
    a = SQSClient(endpoint_url="http://x", credentials=Credentials("a", "b"), session=http)
    b = SQSClient(endpoint_url="http://x", credentials=Credentials("a", "b"), session=http)
    await a.aclose()
    await b.aclose()
    assert not http.closed
    async with SQSClient(endpoint_url="http://x", credentials=Credentials("a", "b"), session=http) as c:
        await c.delete_queue("http://x/q")
    assert not http.closed
    await http.aclose()
    assert http.closed


async def test_a_client_closes_the_session_it_opened() -> None:
    sqs = SQSClient(
        endpoint_url="http://x",
        credentials=Credentials("a", "b"),
        transport=httpx.MockTransport(lambda r: httpx.Response(200)),
    )
    await sqs.aclose()
    assert sqs.session.closed


async def test_a_closed_session_is_a_clear_error_to_use_or_build_on() -> None:
    """Sending through, or building a client on, a closed session: SessionClosedError, never retried."""
    calls: list[httpx.Request] = []
    http = HTTPSession(transport=httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(200)))
    sqs = SQSClient(endpoint_url="http://x", credentials=Credentials("a", "b"), session=http)
    await http.aclose()
    with pytest.raises(SessionClosedError, match="DeleteQueue: the HTTPSession is closed"):
        await sqs.delete_queue("http://x/q")
    with pytest.raises(SessionClosedError, match="Probe"):
        await http.send("GET", "http://x/", [], b"", operation="Probe")
    with pytest.raises(SessionClosedError, match="closed"):
        SQSClient(endpoint_url="http://x", credentials=Credentials("a", "b"), session=http)
    assert isinstance(SessionClosedError("x"), ConfigurationError)
    assert calls == []
    await sqs.aclose()


def test_http_session_rejects_conflicting_options() -> None:
    """Bad combinations and values are configuration errors naming the parameter."""
    with pytest.raises(ConfigurationError, match="either http_client or transport"):
        HTTPSession(
            http_client=httpx.AsyncClient(), transport=httpx.MockTransport(lambda r: httpx.Response(200))
        )
    with pytest.raises(ConfigurationError, match="backend is 'curl'"):
        HTTPSession(backend="curl")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="max_connections is 0"):
        HTTPSession(max_connections=0)
    with pytest.raises(ConfigurationError, match="timeout read is 0"):
        Timeouts(read=0)
    with pytest.raises(ConfigurationError, match="pass session, or http_client"):
        SQSClient(
            session=HTTPSession(backend="httpx"), transport=httpx.MockTransport(lambda r: httpx.Response(200))
        )


async def test_aiohttp_transport_tls_verification_on_by_default() -> None:
    """TLS verification stays on unless explicitly disabled."""
    transport = AiohttpTransport()
    assert transport._verify is True  # pyright: ignore[reportPrivateUsage]
    await transport.aclose()


def test_client_layer_never_imports_taskiq_and_works_without_aiohttp() -> None:
    """`taskiq_sqs_http.aws` stands alone: no taskiq import, and httpx's transport when aiohttp is absent."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['aiohttp'] = None\n"
        "import asyncio, taskiq_sqs_http.aws as aws\n"
        "assert 'taskiq' not in sys.modules, 'taskiq was imported'\n"
        "async def main():\n"
        "    async with aws.HTTPSession() as http:\n"
        "        assert 'HTTPTransport' in repr(http), repr(http)\n"
        "asyncio.run(main())\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
