"""EC2 instance metadata (IMDSv2, with the v1 fallback)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import NamedTuple

import httpx

from .._credentials import Credentials
from .._environ import env_flag, env_float, env_int, environ_of
from .._errors import CredentialsError, CredentialSourceError, NoCredentialsError
from .._refresh import RefreshableCredentialProvider, RefreshSettings
from ._common import client_for, parse_credentials_json, transport_problem

__all__ = ["InstanceMetadataCredentialProvider"]

logger = logging.getLogger("taskiq_sqs_http.aws")

_IMDS_DEFAULT = "http://169.254.169.254"
_IMDS_IPV6 = "http://[fd00:ec2::254]"
_IMDS_TOKEN_PATH = "/latest/api/token"  # noqa: S105 - a URL path
_IMDS_ROLE_PATH = "/latest/meta-data/iam/security-credentials/"


class _NoMetadata(Exception):
    """IMDS is not there (connection refused, unreachable, no role): not an EC2 instance with a
    role."""


class _SessionToken(NamedTuple):
    value: str
    renew_at: datetime


class InstanceMetadataCredentialProvider(RefreshableCredentialProvider):
    """EC2 instance metadata, IMDSv2 (session token first), falling back to v1 when the PUT is
    refused.

    Timeouts are short (1 s, one attempt) because off EC2 this is the last stop of the chain and
    every developer machine without credentials would otherwise wait. The session token is cached
    for its TTL. Once credentials were obtained, a failing refresh reuses them with a pushed-out
    expiry (static stability), as the AWS SDKs do during IMDS outages.
    """

    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        refresh: RefreshSettings | None = None,
        timeout: float | None = None,
        attempts: int | None = None,
        token_ttl: int = 21600,
    ) -> None:
        self._environ = environ
        self._http_client = http_client
        self._timeout = timeout
        self._attempts = attempts
        self._token_ttl = token_ttl
        self._token: _SessionToken | None = None
        super().__init__(
            self._fetch_with_fallback,
            description="credentials from instance metadata",
            settings=refresh,
            extend_stale=True,
        )

    def disabled(self) -> bool:
        return env_flag(environ_of(self._environ), "AWS_EC2_METADATA_DISABLED")

    def base_url(self) -> str:
        env = environ_of(self._environ)
        explicit = env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", "").strip()
        if explicit:
            return explicit.rstrip("/")
        mode = env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "").strip().lower()
        return _IMDS_IPV6 if mode == "ipv6" else _IMDS_DEFAULT

    async def _fetch_with_fallback(self) -> Credentials:
        previous = self.current
        try:
            return await self.fetch()
        except CredentialsError as exc:
            if previous is None:
                raise
            logger.warning("instance metadata refresh failed (%s); reusing the current credentials", exc)
            return previous

    async def fetch(self) -> Credentials:
        """One uncached exchange; ``NoCredentialsError`` when no IMDS or no role answers."""
        source = "instance metadata"
        if self.disabled():
            raise NoCredentialsError(["instance metadata (disabled by AWS_EC2_METADATA_DISABLED)"])
        env = environ_of(self._environ)
        timeout = self._timeout or env_float(env, "AWS_METADATA_SERVICE_TIMEOUT", 1.0)
        attempts = self._attempts or env_int(env, "AWS_METADATA_SERVICE_NUM_ATTEMPTS", 1)
        base = self.base_url()
        last: Exception = _NoMetadata("no attempt made")
        async with client_for(self._http_client, timeout=timeout, trust_env=False) as client:
            for _ in range(attempts):
                try:
                    role = (await self._get(client, base, _IMDS_ROLE_PATH, timeout)).strip()
                    role = role.splitlines()[0].strip() if role else ""
                    if not role:
                        raise _NoMetadata("no IAM role attached to the instance")
                    body = await self._get(client, base, _IMDS_ROLE_PATH + role, timeout)
                    return parse_credentials_json(body.encode(), session_field="Token", source=source)
                except (_NoMetadata, CredentialSourceError) as exc:
                    last = exc
        if isinstance(last, _NoMetadata):
            raise NoCredentialsError([f"instance metadata at {base} ({last})"])
        raise last

    async def _session_token(self, client: httpx.AsyncClient, base: str, timeout: float) -> str | None:
        now = self._settings.now()
        if self._token is not None and self._token.renew_at > now:
            return self._token.value
        try:
            response = await client.put(
                base + _IMDS_TOKEN_PATH,
                headers={"x-aws-ec2-metadata-token-ttl-seconds": str(self._token_ttl)},
                timeout=timeout,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise _NoMetadata(transport_problem(exc)) from None
        except httpx.HTTPError:
            # A read timeout on the PUT is the classic "hop limit 1 inside a container" symptom; the
            # GET may still work with IMDSv1.
            return self._v1_or_fail("the token request timed out")
        if response.status_code == 200 and response.text.strip():
            # Renew a minute early so a token never expires between our check and IMDS's.
            lifetime = timedelta(seconds=max(self._token_ttl - 60, 1))
            self._token = _SessionToken(response.text.strip(), now + lifetime)
            return self._token.value
        if response.status_code in (403, 404, 405):
            return self._v1_or_fail(f"the token request got HTTP {response.status_code}")
        raise CredentialSourceError(
            f"IMDS token request got HTTP {response.status_code}", source="instance metadata"
        )

    def _v1_or_fail(self, why: str) -> None:
        if env_flag(environ_of(self._environ), "AWS_EC2_METADATA_V1_DISABLED"):
            raise CredentialSourceError(
                f"{why} and IMDSv1 is disabled (AWS_EC2_METADATA_V1_DISABLED)",
                source="instance metadata",
            )
        return None

    async def _get(self, client: httpx.AsyncClient, base: str, path: str, timeout: float) -> str:
        for retry_token in (True, False):
            token = await self._session_token(client, base, timeout)
            headers = {"x-aws-ec2-metadata-token": token} if token else {}
            try:
                response = await client.get(base + path, headers=headers, timeout=timeout)
            except httpx.HTTPError as exc:
                raise _NoMetadata(transport_problem(exc)) from None
            if response.status_code == 401 and retry_token and token:
                self._token = None  # IMDS restarted or the token aged out: get a new one once
                continue
            if response.status_code == 404 and path == _IMDS_ROLE_PATH:
                raise _NoMetadata("no IAM role attached to the instance")
            if response.status_code != 200:
                raise CredentialSourceError(
                    f"GET {path} got HTTP {response.status_code}", source="instance metadata"
                )
            return response.text
        raise CredentialSourceError("IMDS rejected a fresh session token", source="instance metadata")

    def __repr__(self) -> str:
        return "InstanceMetadataCredentialProvider()"
