"""Credentials as values, and the provider interface every credential source implements.

A provider hands out immutable `Credentials` snapshots. Each request is signed from one snapshot, so key,
secret and token always come from the same generation even while a refresh replaces them. Providers that
fetch temporary credentials (container, instance metadata, web identity, credential_process) live in
`_providers/`; this module holds only what every caller needs: the value type, the protocol, the static and
environment sources, and the error raised when nothing is found.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol, runtime_checkable

from ._errors import CredentialsError, NoCredentialsError, PartialCredentialsError

__all__ = [
    "CredentialProvider",
    "Credentials",
    "EnvironmentCredentialProvider",
    "StaticCredentialProvider",
    "as_provider",
]


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
    """Fixed credentials given in code; they never refresh."""

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
        return cls(
            credentials.access_key_id,
            credentials.secret_access_key,
            credentials.session_token,
            source=credentials.source,
        )

    async def get_credentials(self) -> Credentials:
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
        env = os.environ if self._environ is None else self._environ
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
    try:
        when = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CredentialsError(
            f"AWS_CREDENTIAL_EXPIRATION is {raw[:40]!r}; "
            "expected an ISO 8601 time such as 2030-01-01T00:00:00Z"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    if when <= datetime.now(timezone.utc):
        raise CredentialsError(
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
        return credentials

    def invalidate(self) -> None:
        """The callable decides for itself when to refresh."""

    def describe(self) -> str:
        return f"credentials from callable {getattr(self._func, '__qualname__', '?')}"

    def __repr__(self) -> str:
        return f"_CallableProvider({getattr(self._func, '__qualname__', '?')})"


CredentialsLike = Credentials | CredentialProvider | Callable[[], Awaitable[Credentials]]


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
