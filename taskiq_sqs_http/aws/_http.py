"""The one HTTP pool a process's SQS and S3 clients share, and the single place httpx errors are mapped.

Why not ``AsyncClient.send`` on every request: httpx's client layer (auth flow, cookies, redirects, event
hooks) costs more CPU per request than the rest of an SQS call. When we own the pool we build the
``httpx.Request`` ourselves and hand it straight to the transport; when the user gives us their own
``AsyncClient`` we honour it and go through ``send``. Either way the request is an ordinary
``httpx.Request``, so respx and custom transports work unchanged.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Literal, cast
from urllib.parse import urlsplit

import httpx

from ._errors import (
    ConfigurationError,
    ConnectError,
    InvalidRequestError,
    RequestTimeoutError,
    SessionClosedError,
    TransportError,
)

if TYPE_CHECKING:
    from ._aiohttp import AiohttpTransport

__all__ = ["Backend", "HTTPSession", "RawResponse", "Timeouts"]

logger = logging.getLogger("taskiq_sqs_http.aws")


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Timeouts in seconds: per phase of one attempt, and ``total`` for a whole operation.

    ``read`` suits calls AWS answers in milliseconds; a long-poll receive uses its wait time plus a margin
    instead. ``total`` bounds an operation across all its attempts and backoff waits (a receive gets its
    wait time and margin on top), so an endpoint that accepts connections and never answers costs the
    caller ``total`` seconds, not ``max_attempts`` read timeouts; when it passes,
    `DeadlineExceededError` names the operation and the deadline. A request body over 1 MiB adds a second
    per MiB, so a large upload on a slow link is not mistaken for a dead endpoint.
    """

    connect: float = 5.0
    read: float = 10.0
    write: float = 30.0
    pool: float = 30.0
    total: float = 30.0

    def __post_init__(self) -> None:
        for name in ("connect", "read", "write", "pool", "total"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigurationError(
                    f"timeout {name} is {value!r} ({type(value).__name__}); expected a number of seconds"
                )
            if not 0 < value <= 3600:
                raise ConfigurationError(
                    f"timeout {name} is {value!r}; allowed range is 0 < {name} <= 3600 seconds"
                )

    def as_extension(self, read: float | None = None) -> dict[str, float]:
        return {
            "connect": self.connect,
            "read": self.read if read is None else read,
            "write": self.write,
            "pool": self.pool,
        }


@dataclass(frozen=True, slots=True)
class RawResponse:
    """What the protocol layers need from a response: the rest of httpx stays below this module."""

    status: int
    headers: dict[str, str]
    body: bytes


Backend = Literal["auto", "aiohttp", "httpx"]


def _default_transport(backend: Backend, verify: bool, max_connections: int) -> httpx.AsyncBaseTransport:
    """aiohttp when it is importable (taskiq always brings it), else httpx's own transport.

    Measured with scripts/bench_client.py: through aiohttp a SendMessage costs about half the client CPU of
    httpcore, and stays flat at concurrency 16 where httpcore's pool degrades.
    """
    if backend in ("auto", "aiohttp"):
        try:
            from ._aiohttp import AiohttpTransport
        except ImportError:
            if backend == "aiohttp":
                raise ConfigurationError(
                    "backend is 'aiohttp' but aiohttp is not installed; install it or use 'httpx'"
                ) from None
        else:
            return AiohttpTransport(verify=verify, max_connections=max_connections)
    elif backend != "httpx":
        raise ConfigurationError(f"backend is {backend!r}; allowed values are 'auto', 'aiohttp', 'httpx'")
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    return httpx.AsyncHTTPTransport(verify=verify, limits=limits)


def _host(url: str) -> str:
    return urlsplit(url).netloc


def _offending_header(headers: list[tuple[str, str]]) -> str | None:
    """The name of the first header HTTP forbids as written (None when all are fine).

    Only the name is reported: values may be credentials.
    """
    for name, value in headers:
        if value != value.strip() or not value.isascii() or not value.isprintable():
            return name
        if not name or not name.isascii() or not name.isprintable() or " " in name or ":" in name:
            return name or "<empty name>"
    return None


class HTTPSession:
    """The connection pool that clients share; whoever opens a session closes it.

    Pass ``http_client`` to send through an ``httpx.AsyncClient`` you manage (closing the session never
    closes it), or ``transport`` to plug in a different transport (mock, fault-injecting, your own); with
    neither the session creates the transport chosen by ``backend`` (``"auto"``: aiohttp when importable,
    else httpx), TLS verification on, and closes it in ``aclose``.

    A client given a session only borrows it and never closes it; a client that made its own session
    closes that one. Sending through, or building a client on, a closed session raises
    `SessionClosedError`.
    """

    def __init__(
        self,
        *,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeouts: Timeouts | None = None,
        verify: bool = True,
        max_connections: int = 64,
        backend: Backend = "auto",
    ) -> None:
        if http_client is not None and transport is not None:
            raise ConfigurationError(
                "pass either http_client or transport, not both: a transport belongs to its client"
            )
        if max_connections < 1:
            raise ConfigurationError(f"max_connections is {max_connections!r}; allowed range is >= 1")
        self.timeouts = timeouts or Timeouts()
        self._client = http_client
        self._owns_transport = http_client is None and transport is None
        self._transport: httpx.AsyncBaseTransport | None = None
        if http_client is None:
            self._transport = transport or _default_transport(backend, verify, max_connections)
        # When the transport is our aiohttp one, skip building httpx objects on the hot path.
        self._raw: AiohttpTransport | None = None
        if self._owns_transport and type(self._transport).__name__ == "AiohttpTransport":
            self._raw = cast("AiohttpTransport", self._transport)
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def check_open(self, operation: str = "") -> None:
        """Raise `SessionClosedError` when the session was closed."""
        if self._closed:
            what = f"{operation}: " if operation else ""
            raise SessionClosedError(
                f"{what}the HTTPSession is closed; whoever opened it closed it, so open a new one "
                "(or let the client make its own)"
            )

    async def send(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        content: bytes,
        *,
        operation: str,
        read_timeout: float | None = None,
    ) -> RawResponse:
        if self._closed:
            self.check_open(operation)
        timeout = self.timeouts.as_extension(read_timeout)
        started = time.perf_counter()
        try:
            if self._raw is not None:
                status, response_headers, body = await self._raw.request_raw(
                    method, url, headers, content, timeout
                )
            else:
                status, response_headers, body = await self._send_httpx(
                    method, url, headers, content, timeout
                )
        except httpx.ConnectTimeout as exc:
            raise ConnectError(f"connect timeout to {_host(url)}", operation=operation) from exc
        except httpx.TimeoutException as exc:
            raise RequestTimeoutError(
                f"{type(exc).__name__} talking to {_host(url)}", operation=operation
            ) from exc
        except (httpx.LocalProtocolError, ValueError) as exc:
            # Refused by the HTTP stack before anything was sent: the same request would be refused again.
            name = _offending_header(headers)
            if name is None and not isinstance(exc, httpx.LocalProtocolError):
                raise
            detail = (
                f"header {name!r} has a value HTTP does not allow (surrounding whitespace, a control "
                "character or a non-ASCII character)"
                if name is not None
                else f"the HTTP stack refused the request ({type(exc).__name__})"
            )
            raise InvalidRequestError(detail, operation=operation) from None
        except httpx.ConnectError as exc:
            raise ConnectError(f"cannot connect to {_host(url)}: {exc}", operation=operation) from exc
        except httpx.TransportError as exc:
            raise TransportError(
                f"{type(exc).__name__} talking to {_host(url)}: {exc}", operation=operation
            ) from exc
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> %d in %.1f ms",
                operation,
                _host(url),
                status,
                (time.perf_counter() - started) * 1000,
            )
        return RawResponse(status, response_headers, body)

    async def _send_httpx(
        self, method: str, url: str, headers: list[tuple[str, str]], content: bytes, timeout: dict[str, float]
    ) -> tuple[int, dict[str, str], bytes]:
        request = httpx.Request(
            method, url, headers=headers, content=content, extensions={"timeout": timeout}
        )
        if self._client is not None:
            response = await self._client.send(request)
        else:
            assert self._transport is not None
            response = await self._transport.handle_async_request(request)
        try:
            body = await response.aread()
        finally:
            await response.aclose()
        response_headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers.raw}
        return response.status_code, response_headers, body

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_transport and self._transport is not None:
            await self._transport.aclose()

    async def __aenter__(self) -> HTTPSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        kind = "borrowed client" if self._client is not None else type(self._transport).__name__
        return f"HTTPSession({kind}, closed={self._closed})"
