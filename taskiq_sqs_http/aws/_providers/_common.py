"""Helpers every credential source shares: AWS timestamps, HTTP fetches, the JSON credential document.

Providers that speak HTTP accept an ``httpx.AsyncClient``; without one they open a short-lived
client per fetch. Fetches happen every few hours, so a pool would buy nothing and would need
closing.

The helpers carry no leading underscore because the sibling modules import them; the package
itself is private, and its ``__init__`` still offers them under their former underscored names.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import AsyncGenerator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import orjson

from .._credentials import Credentials
from .._errors import CredentialSourceError

# One logger for every source (and the chain), named as before the split so log filters keep working.
logger = logging.getLogger("taskiq_sqs_http.aws.credentials")


def effective_environ(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


_ISO_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$")


def parse_expiration(value: object, *, source: str) -> datetime:
    """An ISO 8601 timestamp as AWS writes it (``2024-01-01T00:00:00Z``, fractions, offsets).

    Parsed by hand because ``datetime.fromisoformat`` on Python 3.10 rejects ``Z`` and fractions
    that are not 3 or 6 digits, both of which AWS endpoints produce.
    """
    if not isinstance(value, str):
        raise CredentialSourceError("Expiration is missing or not a string", source=source)
    match = _ISO_RE.match(value.strip())
    if match is None:
        raise CredentialSourceError(f"Expiration {value[:40]!r} is not an ISO 8601 time", source=source)
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        when = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            micro,
            timezone.utc,
        )
    except ValueError:
        raise CredentialSourceError(f"Expiration {value[:40]!r} is not a valid time", source=source) from None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        when = when - sign * offset
    return when


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
