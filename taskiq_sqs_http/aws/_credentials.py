"""Credentials as values, and the provider interface every credential source implements.

A provider hands out immutable `Credentials` snapshots. Each request is signed from one snapshot, so key,
secret and token always come from the same generation even while a refresh replaces them. Providers that
fetch temporary credentials (container, instance metadata, web identity, credential_process) live in
`_providers/`; this module holds only what every caller needs: the value type, the protocol, the static and
environment sources, and the parser of the timestamps every source writes expirations in.

Expirations are honoured everywhere: credentials whose expiration has passed are refused with
`CredentialsExpiredError` rather than used to sign a request AWS would reject.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Protocol, runtime_checkable

from ._environ import environ_of
from ._errors import (
    ConfigurationError,
    CredentialsError,
    CredentialsExpiredError,
    CredentialSourceError,
    NoCredentialsError,
    PartialCredentialsError,
)

__all__ = [
    "CredentialProvider",
    "Credentials",
    "CredentialsLike",
    "EnvironmentCredentialProvider",
    "StaticCredentialProvider",
    "as_provider",
    "parse_expiration",
]

_ISO_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$")


def parse_expiration(value: object, *, source: str, name: str = "Expiration") -> datetime:
    """An ISO 8601 timestamp as AWS writes it (``2024-01-01T00:00:00Z``, fractions, offsets), in UTC.

    Parsed by hand because ``datetime.fromisoformat`` on Python 3.10 rejects ``Z`` and fractions that
    are not 3 or 6 digits, both of which AWS endpoints and tools produce. ``name`` is the field or
    variable the value came from, for the error message.
    """
    if not isinstance(value, str):
        raise CredentialSourceError(f"{name} is missing or not a string", source=source)
    match = _ISO_RE.match(value.strip())
    if match is None:
        raise CredentialSourceError(
            f"{name} is {value[:40]!r}; expected an ISO 8601 time such as 2030-01-01T00:00:00Z",
            source=source,
        )
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        when = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, timezone.utc
        )
    except ValueError:
        raise CredentialSourceError(
            f"{name} is {value[:40]!r}, which is not a valid time", source=source
        ) from None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        when = when - sign * offset
    return when


def _check_field(name: str, value: object, *, optional: bool = False) -> None:
    # Only the type and length are shown: the value may be a secret.
    if (value is None and optional) or isinstance(value, str):
        return
    shown = f"length {len(str(value))}" if value is not None else "None"
    raise ConfigurationError(f"Credentials {name} must be a str; got {type(value).__name__} ({shown})")


@dataclass(frozen=True, slots=True)
class Credentials:
    """One consistent generation of AWS credentials.

    The secret and the token are excluded from ``repr`` so that a credentials object can be logged or shown
    in a traceback without leaking them.
    """

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    expiration: datetime | None = None
    source: str = "explicit"

    def __post_init__(self) -> None:
        _check_field("access_key_id", self.access_key_id)
        _check_field("secret_access_key", self.secret_access_key)
        _check_field("session_token", self.session_token, optional=True)
        if self.expiration is not None and not isinstance(self.expiration, datetime):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ConfigurationError(
                f"Credentials expiration must be a datetime or None; got {type(self.expiration).__name__}"
            )
        # Keys, secrets and tokens never contain surrounding whitespace; a newline copied from a file
        # would otherwise reach a header, which HTTP refuses.
        for name in ("access_key_id", "secret_access_key", "session_token"):
            value: str | None = getattr(self, name)
            if value is not None and value != value.strip():
                object.__setattr__(self, name, value.strip() or None)
        if not self.access_key_id:
            raise PartialCredentialsError("access_key_id is empty", source=self.source)
        if not self.secret_access_key:
            raise PartialCredentialsError("secret_access_key is empty", source=self.source)
        if self.expiration is not None and self.expiration.tzinfo is None:
            object.__setattr__(self, "expiration", self.expiration.replace(tzinfo=timezone.utc))

    def seconds_left(self, now: datetime) -> float | None:
        """Seconds until expiry, or None for credentials that never expire."""
        if self.expiration is None:
            return None
        return (self.expiration - now).total_seconds()

    def check_not_expired(self, now: datetime | None = None) -> None:
        """Raise `CredentialsExpiredError` once the expiration has passed (never without an expiration)."""
        if self.expiration is not None and self.expiration <= (now or datetime.now(timezone.utc)):
            raise CredentialsExpiredError(
                f"the credentials from {self.source} expired at {self.expiration.isoformat()}; "
                "refresh them (or pass a provider that does) instead of signing with them"
            )


@runtime_checkable
class CredentialProvider(Protocol):
    """Anything that can produce credentials on demand.

    ``get_credentials`` may be called for every request, so implementations cache and only go to the
    network when their credentials are missing or near expiry. ``invalidate`` is called after an
    ``ExpiredToken`` error so that the next call fetches fresh credentials.
    """

    async def get_credentials(self) -> Credentials: ...

    def invalidate(self) -> None: ...

    def describe(self) -> str: ...


class StaticCredentialProvider:
    """Fixed credentials given in code; they never refresh, and an expiration they carry is honoured."""

    __slots__ = ("_credentials",)

    def __init__(
        self,
        access_key_id: str,
        secret_access_key: str,
        session_token: str | None = None,
        *,
        source: str = "explicit",
    ) -> None:
        self._credentials = Credentials(
            access_key_id, secret_access_key, session_token or None, source=source
        )

    @classmethod
    def from_credentials(cls, credentials: Credentials) -> StaticCredentialProvider:
        provider = cls.__new__(cls)
        provider._credentials = credentials
        return provider

    async def get_credentials(self) -> Credentials:
        self._credentials.check_not_expired()
        return self._credentials

    def invalidate(self) -> None:
        """Static credentials cannot be renewed; an expired static token stays expired."""

    def describe(self) -> str:
        return f"credentials from {self._credentials.source}"

    def __repr__(self) -> str:
        return f"StaticCredentialProvider(access_key_id={self._credentials.access_key_id!r})"


class EnvironmentCredentialProvider:
    """``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``.

    The environment is read on every call rather than once at construction, because Lambda and tests
    change it in-process; reading a dict is cheap next to a network request.
    """

    __slots__ = ("_environ",)

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    def load(self) -> Credentials | None:
        """Credentials from the environment, None when absent, an error when half present."""
        env = environ_of(self._environ)
        key = env.get("AWS_ACCESS_KEY_ID", "")
        secret = env.get("AWS_SECRET_ACCESS_KEY", "")
        token = env.get("AWS_SESSION_TOKEN") or env.get("AWS_SECURITY_TOKEN") or None
        if not key and not secret:
            return None
        if not key:
            raise PartialCredentialsError(
                "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not", source="environment"
            )
        if not secret:
            raise PartialCredentialsError(
                "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not", source="environment"
            )
        expiration = _env_expiration(env.get("AWS_CREDENTIAL_EXPIRATION"))
        return Credentials(key, secret, token, expiration=expiration, source="environment")

    async def get_credentials(self) -> Credentials:
        credentials = self.load()
        if credentials is None:
            raise NoCredentialsError(["environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"])
        return credentials

    def invalidate(self) -> None:
        """Nothing is cached; the next call re-reads the environment."""

    def describe(self) -> str:
        return "credentials from environment"

    def __repr__(self) -> str:
        return "EnvironmentCredentialProvider()"


def _env_expiration(raw: str | None) -> datetime | None:
    """``AWS_CREDENTIAL_EXPIRATION``: the environment's credentials are re-read on every call, so an
    expiry only needs checking, never refreshing; signing with credentials known to be dead would only
    produce a confusing ExpiredToken from AWS."""
    if not raw:
        return None
    when = parse_expiration(raw, source="environment", name="AWS_CREDENTIAL_EXPIRATION")
    if when <= datetime.now(timezone.utc):
        raise CredentialsExpiredError(
            f"the environment's credentials expired at {when.isoformat()} (AWS_CREDENTIAL_EXPIRATION); "
            "refresh AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN"
        )
    return when


class _CallableProvider:
    """Adapts a user's ``async def () -> Credentials`` to the provider protocol."""

    __slots__ = ("_func",)

    def __init__(self, func: Callable[[], Awaitable[Credentials]]) -> None:
        self._func = func

    async def get_credentials(self) -> Credentials:
        credentials = await self._func()
        if not isinstance(credentials, Credentials):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise CredentialsError(
                f"credentials callable returned {type(credentials).__name__}, expected Credentials"
            )
        credentials.check_not_expired()
        return credentials

    def invalidate(self) -> None:
        """The callable decides for itself when to refresh."""

    def describe(self) -> str:
        return f"credentials from callable {getattr(self._func, '__qualname__', '?')}"

    def __repr__(self) -> str:
        return f"_CallableProvider({getattr(self._func, '__qualname__', '?')})"


CredentialsLike = Credentials | CredentialProvider | Callable[[], Awaitable[Credentials]]
"""What ``credentials=`` accepts: a snapshot, a provider, or an ``async def () -> Credentials``."""


def as_provider(value: CredentialsLike) -> CredentialProvider:
    """Accept the three forms users hand us: a snapshot, a provider, or an async callable."""
    if isinstance(value, Credentials):
        return StaticCredentialProvider.from_credentials(value)
    if isinstance(value, CredentialProvider):
        return value
    if callable(value):
        return _CallableProvider(value)
    raise TypeError(  # pyright: ignore[reportUnreachable]
        "credentials must be Credentials, a CredentialProvider or an async callable, "
        f"got {type(value).__name__}"
    )
