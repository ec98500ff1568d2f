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

from ._errors import ConfigurationError, ConnectError, TimeoutError, TransportError

if TYPE_CHECKING:
    from ._aiohttp import AiohttpTransport

__all__ = ["Backend", "HTTPSession", "RawResponse", "Timeouts"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Per-phase timeouts in seconds. A long-poll receive raises ``read`` above its wait time."""

    connect: float = 5.0
    read: float = 30.0
    write: float = 30.0
    pool: float = 30.0

    def __post_init__(self) -> None:
        for name in ("connect", "read", "write", "pool"):
            value = getattr(self, name)
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


class HTTPSession:
    """Owns (or borrows) the connection pool.

    Pass ``http_client`` to share a pool you manage (we never close it), or ``transport`` to plug in a
    different transport (mock, fault-injecting, your own); with neither we create the transport chosen by
    ``backend`` (``"auto"``: aiohttp when importable, else httpx), TLS verification on, and close it in
    ``aclose``.
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
        self._users = 0

    @property
    def closed(self) -> bool:
        return self._closed

    def acquire(self) -> None:
        """Count a client sharing this session, so the last one to close it closes the pool."""
        self._users += 1

    async def release(self) -> None:
        self._users -= 1
        if self._users <= 0:
            await self.aclose()

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
            raise TransportError("HTTP session is closed", operation=operation)
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
            raise TimeoutError(f"{type(exc).__name__} talking to {_host(url)}", operation=operation) from exc
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
