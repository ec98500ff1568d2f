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
from typing import Any

import aiohttp
import httpx
from yarl import URL

__all__ = ["AiohttpTransport"]

# aiohttp computes these itself from the body; passing them through would duplicate them.
_SKIP_HEADERS = frozenset({b"content-length", b"transfer-encoding", b"connection"})


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

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        timeouts: dict[str, Any] = request.extensions.get("timeout") or {}
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=timeouts.get("pool"),
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
        )
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in request.headers.raw
            if k.lower() not in _SKIP_HEADERS
        ]
        url = URL(str(request.url), encoded=True)
        try:
            async with session.request(
                request.method,
                url,
                headers=headers,
                data=request.content or None,
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                body = await response.read()
                status = response.status
                raw_headers = list(response.raw_headers)
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "connect timeout", request=request) from exc
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc) or "read timeout", request=request) from exc
        except aiohttp.ServerDisconnectedError as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(f"{type(exc).__name__}: {exc}", request=request) from exc
        return httpx.Response(status, headers=raw_headers, content=body, request=request)

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
