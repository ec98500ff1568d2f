"""Opening and closing the HTTP session and the SQS and S3 clients that share it.

A client closes the shared session when it is the last client on it; a session that never got a client
(the SQS client could not be built) has no client to do that, so it is closed here.
"""

from __future__ import annotations

from typing import Any

import httpx

from ..aws import AWSError, HTTPSession, S3Client, SQSClient, Timeouts
from ._errors import broker_error

__all__ = ["close_clients", "open_sqs"]


async def open_sqs(
    http_client: httpx.AsyncClient | None, timeouts: Timeouts | None, client_options: dict[str, Any]
) -> tuple[HTTPSession, SQSClient]:
    """A new session and the SQS client on it; client-layer errors become broker errors."""
    session = HTTPSession(http_client=http_client, timeouts=timeouts)
    try:
        sqs = SQSClient(session=session, **client_options)
    except BaseException as exc:
        # The session is only closed by its last client; this one never got one.
        await session.aclose()
        if isinstance(exc, AWSError):
            raise broker_error(exc) from exc
        raise
    return session, sqs


async def close_clients(sqs: SQSClient | None, s3: S3Client | None, session: HTTPSession | None) -> None:
    """Close every client, each even when closing the one before failed, then a session left without one."""
    try:
        if s3 is not None:
            await s3.aclose()
    finally:
        try:
            if sqs is not None:
                await sqs.aclose()
        finally:
            if session is not None and not session.closed and sqs is None:
                await session.aclose()
