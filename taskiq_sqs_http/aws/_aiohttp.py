"""An httpx transport that sends requests through aiohttp.

Why: httpx's own transport (httpcore) costs about twice the client CPU per request of aiohttp, and its
pool degrades under concurrency. Every process that runs a taskiq broker already has aiohttp loaded
(``import taskiq`` imports it), so sending through aiohttp costs no extra install and no extra import time,
while httpx stays the interface (respx, users' transports, ``httpx.Request`` everywhere).

Only what an AWS client needs is mapped: method, URL (sent exactly as encoded), headers, bytes body,
per-request timeouts, and aiohttp's errors onto httpx's, so the layer above maps errors in one place.
"""

from __future__ import annotations

import asyncio
import io

import aiohttp
import httpx
from yarl import URL

__all__ = ["AiohttpTransport"]

# aiohttp computes these itself from the body; passing them through would duplicate them.
_SKIP_HEADERS = frozenset({b"content-length", b"transfer-encoding", b"connection"})


# aiohttp warns (ResourceWarning) when handed raw bytes over 1 MiB; a BytesIO is streamed in chunks and
# still sent with a Content-Length, which S3 requires.
_STREAM_ABOVE = 1024 * 1024


def _payload(content: bytes) -> bytes | io.BytesIO | None:
    if not content:
        return None
    return io.BytesIO(content) if len(content) > _STREAM_ABOVE else content


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, verify: bool = True, max_connections: int = 64) -> None:
        self._verify = verify
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            ssl=self._verify,
            enable_cleanup_closed=False,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("Content-Type", "Accept-Encoding"),
        )
        return self._session

    async def request_raw(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        content: bytes,
        timeouts: dict[str, float],
    ) -> tuple[int, dict[str, str], bytes]:
        """Send without building httpx objects: the hot path `HTTPSession` takes when it owns us.

        Raises httpx's exceptions (without a request attached) so errors are mapped in one place.
        """
        session = self._session or self._open()
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=timeouts.get("pool"),
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
        )
        try:
            async with session.request(
                method,
                URL(url, encoded=True),
                headers=headers,
                data=_payload(content),
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                body = await response.read()
                return response.status, {k.lower(): v for k, v in response.headers.items()}, body
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc)) from exc
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "connect timeout") from exc
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc) or "read timeout") from exc
        except aiohttp.ServerDisconnectedError as exc:
            raise httpx.RemoteProtocolError(str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(f"{type(exc).__name__}: {exc}") from exc

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in request.headers.raw
            if k.lower() not in _SKIP_HEADERS
        ]
        timeouts: dict[str, float] = request.extensions.get("timeout") or {}
        try:
            status, response_headers, body = await self.request_raw(
                request.method, str(request.url), headers, request.content, timeouts
            )
        except httpx.TransportError as exc:
            exc.request = request
            raise
        return httpx.Response(status, headers=response_headers, content=body, request=request)

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
