"""Helpers every credential source shares: HTTP fetches and the JSON credential document.

Providers that speak HTTP accept an ``httpx.AsyncClient``; without one they open a short-lived
client per fetch. Fetches happen every few hours, so a pool would buy nothing and would need
closing.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import httpx
import orjson

from .._credentials import Credentials, parse_expiration
from .._errors import CredentialSourceError

__all__ = ["client_for", "parse_credentials_json", "require_str", "transport_problem"]


def require_str(data: Mapping[str, Any], key: str, *, source: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise CredentialSourceError(f"response has no {key}", source=source)
    return value


@contextlib.asynccontextmanager
async def client_for(
    injected: httpx.AsyncClient | None, *, timeout: float, trust_env: bool
) -> AsyncGenerator[httpx.AsyncClient, None]:
    """The caller's client, or a short-lived one closed on exit (no pool kept between fetches)."""
    if injected is not None:
        yield injected
        return
    async with httpx.AsyncClient(timeout=timeout, trust_env=trust_env) as client:
        yield client


def transport_problem(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def parse_credentials_json(body: bytes, *, session_field: str, source: str) -> Credentials:
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise CredentialSourceError("response is not JSON", source=source) from None
    if not isinstance(data, dict):
        raise CredentialSourceError("response is not a JSON object", source=source)
    fields: dict[str, Any] = data  # pyright: ignore[reportUnknownVariableType]
    code = fields.get("Code")
    if code is not None and code != "Success":
        raise CredentialSourceError(f"response Code is {str(code)[:60]!r}", source=source)
    key = require_str(fields, "AccessKeyId", source=source)
    secret = require_str(fields, "SecretAccessKey", source=source)
    token = fields.get(session_field)
    if token is not None and not isinstance(token, str):
        raise CredentialSourceError(f"{session_field} is not a string", source=source)
    expiration = None
    if fields.get("Expiration") is not None:
        expiration = parse_expiration(fields.get("Expiration"), source=source)
    return Credentials(key, secret, token or None, expiration=expiration, source=source)
