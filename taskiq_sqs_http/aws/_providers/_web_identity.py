"""Web identity: ``AssumeRoleWithWebIdentity`` at STS, for EKS IRSA and any OIDC federation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import urlencode
from xml.etree import ElementTree

import httpx

from .._credentials import Credentials, parse_expiration
from .._endpoints import resolve_endpoint, resolve_region
from .._environ import environ_of
from .._errors import CredentialSourceError, NoCredentialsError, PartialCredentialsError
from .._profiles import Profile, load_profile
from .._refresh import RefreshableCredentialProvider, RefreshSettings
from ._common import client_for, transport_problem

__all__ = ["WebIdentityConfig", "WebIdentityCredentialProvider"]

_WEB_IDENTITY_LOOKED_IN = (
    "web identity (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, or profile web_identity_token_file)"
)
_STS_RETRYABLE_CODES = frozenset(
    {"IDPCommunicationError", "Throttling", "ThrottlingException", "RequestLimitExceeded"}
)


class WebIdentityConfig(NamedTuple):
    """What an AssumeRoleWithWebIdentity call needs, wherever each piece was configured."""

    role_arn: str
    token_file: str
    session_name: str


class _STSError(NamedTuple):
    code: str
    message: str


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(root: ElementTree.Element, name: str) -> ElementTree.Element | None:
    for element in root.iter():
        if _local(element.tag) == name:
            return element
    return None


def _child_text(parent: ElementTree.Element, name: str) -> str | None:
    for element in parent:
        if _local(element.tag) == name:
            return (element.text or "").strip() or None
    return None


class WebIdentityCredentialProvider(RefreshableCredentialProvider):
    """``AssumeRoleWithWebIdentity`` at STS, for EKS IRSA and other OIDC federations.

    The call is unsigned (the token is the proof), so no credentials are needed to get credentials.
    The token file is read on every fetch because Kubernetes rotates the projected token; reading it
    once works for an hour and then fails forever. Settings not passed in are taken, per key, from
    the environment first and then from the profile, as botocore does.
    """

    def __init__(
        self,
        *,
        role_arn: str | None = None,
        token_file: str | None = None,
        session_name: str | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        profile: str | None = None,
        environ: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        refresh: RefreshSettings | None = None,
        timeout: float = 5.0,
        attempts: int = 3,
        retry_delay: float = 0.5,
    ) -> None:
        self._role_arn = role_arn
        self._token_file = token_file
        self._session_name = session_name
        self._region = region
        self._endpoint_url = endpoint_url
        self._profile = profile
        self._environ = environ
        self._http_client = http_client
        self._timeout = timeout
        self._attempts = max(1, attempts)
        self._retry_delay = retry_delay
        super().__init__(description="credentials from web identity", settings=refresh)

    def configuration(self) -> WebIdentityConfig | None:
        """Role ARN, token file and session name; None when web identity is not configured."""
        env = environ_of(self._environ)
        profile: Profile | None = None

        def setting(explicit: str | None, env_var: str, key: str) -> str | None:
            nonlocal profile
            if explicit:
                return explicit
            value = env.get(env_var, "").strip()
            if value:
                return value
            if profile is None:
                profile = load_profile(self._profile, environ=self._environ)
            return (profile.get(key) or "").strip() or None

        token_file = setting(self._token_file, "AWS_WEB_IDENTITY_TOKEN_FILE", "web_identity_token_file")
        if not token_file:
            return None
        role_arn = setting(self._role_arn, "AWS_ROLE_ARN", "role_arn")
        if not role_arn:
            raise PartialCredentialsError(
                "a web identity token file is configured but no role ARN (AWS_ROLE_ARN or profile role_arn)",
                source="web identity",
            )
        session_name = (
            setting(self._session_name, "AWS_ROLE_SESSION_NAME", "role_session_name")
            or f"taskiq-sqs-http-{int(time.time())}"
        )
        return WebIdentityConfig(role_arn, token_file, session_name)

    def _sts_url(self) -> str:
        profile = load_profile(self._profile, environ=self._environ)
        region = resolve_region(self._region, self._environ, profile=profile)
        endpoint = resolve_endpoint("sts", region.value, self._endpoint_url, self._environ, profile=profile)
        if endpoint.source == "default" and region.source == "default":
            # No region anywhere: the global endpoint, like botocore, not a guessed us-east-1.
            return "https://sts.amazonaws.com/"
        return endpoint.value + "/"

    async def fetch(self) -> Credentials:
        """One uncached exchange with STS."""
        source = "web identity"
        configured = self.configuration()
        if configured is None:
            raise NoCredentialsError([_WEB_IDENTITY_LOOKED_IN])
        role_arn, token_file, session_name = configured
        token = self._read_token(token_file)
        url = self._sts_url()
        body = urlencode(
            {
                "Action": "AssumeRoleWithWebIdentity",
                "Version": "2011-06-15",
                "RoleArn": role_arn,
                "RoleSessionName": session_name,
                "WebIdentityToken": token,
            }
        )
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        problem = ""
        async with client_for(self._http_client, timeout=self._timeout, trust_env=True) as client:
            for attempt in range(self._attempts):
                if attempt:
                    await asyncio.sleep(self._retry_delay * 2 ** (attempt - 1))
                try:
                    response = await client.post(
                        url, content=body.encode(), headers=headers, timeout=self._timeout
                    )
                except httpx.HTTPError as exc:
                    problem = f"STS at {url} {transport_problem(exc)}"
                    continue
                if response.status_code == 200:
                    return _parse_sts_credentials(response.content, source=source)
                code, message = _parse_sts_error(response.content)
                message = message.replace(token, "<token>") if token else message
                problem = f"STS answered HTTP {response.status_code} {code}: {message}".rstrip(": ")
                if response.status_code < 500 and code not in _STS_RETRYABLE_CODES:
                    break
        raise CredentialSourceError(problem, source=f"{source} (role {role_arn})")

    @staticmethod
    def _read_token(path: str) -> str:
        try:
            with open(path, encoding="utf-8") as handle:
                token = handle.read().strip()
        except OSError as exc:
            raise CredentialSourceError(
                f"cannot read token file {path}: {exc.strerror or exc}", source="web identity"
            ) from None
        if not token:
            raise CredentialSourceError(f"token file {path} is empty", source="web identity")
        return token

    def __repr__(self) -> str:
        return f"WebIdentityCredentialProvider(role_arn={self._role_arn!r})"


def _parse_sts_credentials(body: bytes, *, source: str) -> Credentials:
    try:
        root = ElementTree.fromstring(body)  # noqa: S314 - STS response; etree does not expand entities
    except ElementTree.ParseError:
        raise CredentialSourceError("STS response is not XML", source=source) from None
    node = _find(root, "Credentials")
    if node is None:
        raise CredentialSourceError("STS response has no Credentials element", source=source)
    key = _child_text(node, "AccessKeyId")
    secret = _child_text(node, "SecretAccessKey")
    token = _child_text(node, "SessionToken")
    if not key or not secret or not token:
        raise CredentialSourceError("STS response lacks a key, secret or session token", source=source)
    expiration = parse_expiration(_child_text(node, "Expiration"), source=source)
    return Credentials(key, secret, token, expiration=expiration, source=source)


def _parse_sts_error(body: bytes) -> _STSError:
    try:
        root = ElementTree.fromstring(body)  # noqa: S314 - STS response; etree does not expand entities
    except ElementTree.ParseError:
        return _STSError("", "")
    error = _find(root, "Error")
    if error is None:
        return _STSError("", "")
    return _STSError(_child_text(error, "Code") or "", (_child_text(error, "Message") or "")[:300])
