"""The container credentials endpoint: ECS task roles, EKS Pod Identity, Lambda SnapStart."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from .._credentials import Credentials
from .._environ import environ_of
from .._errors import CredentialSourceError, NoCredentialsError
from .._refresh import RefreshableCredentialProvider, RefreshSettings
from ._common import client_for, parse_credentials_json, transport_problem

__all__ = ["ContainerCredentialProvider", "container_full_uri_allowed"]

_ECS_HOST = "http://169.254.170.2"
_CONTAINER_ALLOWED_HOSTS = frozenset({"localhost", "169.254.170.2", "169.254.170.23", "fd00:ec2::23"})
_CONTAINER_LOOKED_IN = (
    "container endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, AWS_CONTAINER_CREDENTIALS_FULL_URI)"
)


def container_full_uri_allowed(url: str) -> bool:
    """HTTPS anywhere; plain HTTP only to loopback or the ECS / EKS link-local agents.

    The credentials travel in the response, so plain HTTP to an arbitrary host set through the
    environment would hand them to whoever controls that host or the network path to it.
    """
    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.hostname)
    if parts.scheme != "http" or not parts.hostname:
        return False
    host = parts.hostname.lower()
    if host in _CONTAINER_ALLOWED_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ContainerCredentialProvider(RefreshableCredentialProvider):
    """The container credentials endpoint: ECS task roles, EKS Pod Identity, Lambda SnapStart.

    The authorization token file is read on every fetch: EKS Pod Identity rotates it, and a token
    cached at startup stops working after a few hours.
    """

    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        refresh: RefreshSettings | None = None,
        timeout: float | None = None,
        attempts: int | None = None,
        retry_delay: float = 1.0,
    ) -> None:
        self._environ = environ
        self._http_client = http_client
        self._timeout = timeout
        self._attempts = attempts
        self._retry_delay = retry_delay
        super().__init__(description="credentials from container endpoint", settings=refresh)

    def url(self) -> str | None:
        """The endpoint URL, None when not configured; a refused FULL_URI is an error."""
        env = environ_of(self._environ)
        relative = env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "").strip()
        if relative:
            return _ECS_HOST + (relative if relative.startswith("/") else "/" + relative)
        full = env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI", "").strip()
        if not full:
            return None
        if not container_full_uri_allowed(full):
            raise CredentialSourceError(
                f"AWS_CONTAINER_CREDENTIALS_FULL_URI {full!r} is refused: it must be https, "
                "or http to a loopback address, 169.254.170.2, 169.254.170.23 or fd00:ec2::23",
                source="container endpoint",
            )
        return full

    def _authorization(self) -> str | None:
        env = environ_of(self._environ)
        token_file = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "").strip()
        if token_file:
            try:
                with open(token_file, encoding="utf-8") as handle:
                    token = handle.read().strip()
            except OSError as exc:
                raise CredentialSourceError(
                    f"cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {token_file}: {exc.strerror or exc}",
                    source="container endpoint",
                ) from None
            origin = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
        else:
            token = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN", "")
            origin = "AWS_CONTAINER_AUTHORIZATION_TOKEN"
        if not token:
            return None
        if "\r" in token or "\n" in token:
            # A newline in a header value would let the token inject extra headers.
            raise CredentialSourceError(
                f"the token from {origin} contains a CR or LF character",
                source="container endpoint",
            )
        return token

    async def fetch(self) -> Credentials:
        """One exchange with the endpoint, retried on failure (the agent may still be starting)."""
        source = "container endpoint"
        url = self.url()
        if url is None:
            raise NoCredentialsError([_CONTAINER_LOOKED_IN])
        timeout = self._timeout or 2.0
        attempts = self._attempts or 3
        problem = ""
        async with client_for(self._http_client, timeout=timeout, trust_env=False) as client:
            for attempt in range(attempts):
                if attempt:
                    await asyncio.sleep(self._retry_delay)
                headers = {"Accept": "application/json"}
                token = self._authorization()
                if token is not None:
                    headers["Authorization"] = token
                try:
                    response = await client.get(url, headers=headers, timeout=timeout)
                except httpx.HTTPError as exc:
                    problem = f"{transport_problem(exc)} at {_redact_url(url)}"
                    continue
                if response.status_code != 200:
                    problem = f"HTTP {response.status_code} from {_redact_url(url)}"
                    continue
                try:
                    return parse_credentials_json(response.content, session_field="Token", source=source)
                except CredentialSourceError as exc:
                    problem = exc.detail
                    continue
        raise CredentialSourceError(f"{problem} (after {attempts} attempts)", source=source)

    def __repr__(self) -> str:
        return "ContainerCredentialProvider()"


def _redact_url(url: str) -> str:
    # Relative URIs embed an opaque per-task id; it is not a secret, but keep messages short and
    # free of query strings, which could carry one.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
