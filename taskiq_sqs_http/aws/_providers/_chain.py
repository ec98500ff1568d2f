"""The chain that picks a credential source, in botocore's order, and the default provider built on it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

import httpx

from .._credentials import (
    CredentialProvider,
    Credentials,
    CredentialsLike,
    EnvironmentCredentialProvider,
    StaticCredentialProvider,
    as_provider,
)
from .._errors import ConfigurationError, NoCredentialsError, PartialCredentialsError
from .._refresh import RefreshSettings
from ._container import ContainerCredentialProvider
from ._imds import InstanceMetadataCredentialProvider
from ._profile import ProfileCredentialProvider
from ._web_identity import WebIdentityCredentialProvider

__all__ = ["ChainCredentialProvider", "default_credential_provider"]

logger = logging.getLogger("taskiq_sqs_http.aws")


class ChainCredentialProvider:
    """Tries providers in order; the first that yields credentials is kept for the life of the
    chain.

    A provider that raises ``NoCredentialsError`` is skipped; any other error stops the chain,
    because a configured source that fails should be fixed, not replaced by some other identity.
    Resolution is single-flight: concurrent first callers wait for one resolution.
    """

    def __init__(self, providers: Sequence[CredentialProvider]) -> None:
        if not providers:
            raise ValueError("a credential chain needs at least one provider")
        self._providers = tuple(providers)
        self._selected: CredentialProvider | None = None
        self._lock: asyncio.Lock | None = None

    @property
    def providers(self) -> tuple[CredentialProvider, ...]:
        return self._providers

    @property
    def selected(self) -> CredentialProvider | None:
        return self._selected

    async def get_credentials(self) -> Credentials:
        selected = self._selected
        if selected is not None:
            return await selected.get_credentials()
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            selected = self._selected
            if selected is not None:
                return await selected.get_credentials()
            looked_in: list[str] = []
            for provider in self._providers:
                try:
                    credentials = await provider.get_credentials()
                except NoCredentialsError as exc:
                    looked_in.extend(exc.looked_in)
                    continue
                self._selected = provider
                logger.debug("using %s", provider.describe())
                return credentials
            raise NoCredentialsError(looked_in)

    def invalidate(self) -> None:
        if self._selected is not None:
            self._selected.invalidate()

    def describe(self) -> str:
        if self._selected is not None:
            return self._selected.describe()
        return (
            "credentials not resolved yet (chain: "
            + ", ".join(p.describe().removeprefix("credentials from ") for p in self._providers)
            + ")"
        )

    async def aclose(self) -> None:
        for provider in self._providers:
            closer: Callable[[], Awaitable[None]] | None = getattr(provider, "aclose", None)
            if closer is not None:
                await closer()

    def __repr__(self) -> str:
        return f"ChainCredentialProvider({[type(p).__name__ for p in self._providers]!r})"


def default_credential_provider(
    *,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
    credentials: CredentialsLike | None = None,
    environ: Mapping[str, str] | None = None,
    http_client: httpx.AsyncClient | None = None,
    profile: str | None = None,
    refresh: RefreshSettings | None = None,
) -> CredentialProvider:
    """The provider a client should use: explicit keys or provider if given, else the default chain.

    Chain order (botocore's, minus the features we refuse loudly): environment, web identity
    (environment or profile), profile files (static keys, ``credential_process``), container
    endpoint, instance metadata. Nothing is fetched here; the first ``get_credentials()`` resolves
    the chain. Passing ``profile`` skips the environment keys, as
    ``boto3.Session(profile_name=...)`` does.
    """
    for name, value in (
        ("aws_access_key_id", access_key_id),
        ("aws_secret_access_key", secret_access_key),
        ("aws_session_token", session_token),
    ):
        if value is not None and not isinstance(value, str):  # pyright: ignore[reportUnnecessaryIsInstance]
            # Type and length only: the value may be a secret (or a secret passed in the wrong place).
            raise ConfigurationError(
                f"{name} must be a str or None; got {type(value).__name__} (length {len(str(value))})"
            )
    if credentials is not None:
        if access_key_id or secret_access_key or session_token:
            raise ConfigurationError(
                "pass credentials or aws_access_key_id/aws_secret_access_key/aws_session_token, not both"
            )
        try:
            return as_provider(credentials)
        except TypeError as exc:
            raise ConfigurationError(f"credentials: {exc}") from None
    if access_key_id or secret_access_key or session_token:
        if not access_key_id:
            given = "aws_secret_access_key" if secret_access_key else "aws_session_token"
            raise PartialCredentialsError(f"{given} is set but aws_access_key_id is not", source="arguments")
        if not secret_access_key:
            raise PartialCredentialsError(
                "aws_access_key_id is set but aws_secret_access_key is not", source="arguments"
            )
        return StaticCredentialProvider(access_key_id, secret_access_key, session_token, source="arguments")
    providers: list[CredentialProvider] = []
    if profile is None:
        # A half-set key pair raises PartialCredentialsError, which stops the chain (not a fall-
        # through).
        providers.append(EnvironmentCredentialProvider(environ))
    providers.extend(
        [
            WebIdentityCredentialProvider(
                profile=profile, environ=environ, http_client=http_client, refresh=refresh
            ),
            ProfileCredentialProvider(profile, environ=environ, http_client=http_client, refresh=refresh),
            ContainerCredentialProvider(environ=environ, http_client=http_client, refresh=refresh),
            InstanceMetadataCredentialProvider(environ=environ, http_client=http_client, refresh=refresh),
        ]
    )
    return ChainCredentialProvider(providers)
