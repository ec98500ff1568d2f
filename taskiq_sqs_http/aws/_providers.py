"""Credential sources beyond static keys and the environment, and the chain that picks one.

Every platform the broker runs on hands out credentials differently: Lambda through the environment,
ECS and EKS Pod Identity through a container endpoint, EKS IRSA through a web identity token
exchanged at STS, EC2 through instance metadata, developers through ``~/.aws`` files and
``credential_process``. The chain tries them in botocore's order so that a machine resolves the same
identity here as with the AWS CLI.

Two rules hold throughout:

* a source that is *absent* raises ``NoCredentialsError`` (the chain moves on), a source that is
  *configured but broken* raises another ``CredentialsError`` (the chain stops): falling through to
  another identity after, say, a typo in a profile would run the worker with the wrong role;
* nothing secret is ever put in an exception message, a log line, a ``repr`` or ``describe()``.

Providers that speak HTTP accept an ``httpx.AsyncClient``; without one they open a short-lived
client per fetch. Fetches happen every few hours, so a pool would buy nothing and would need
closing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import re
import shlex
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode, urlsplit
from xml.etree import ElementTree

import httpx
import orjson

from ._credentials import (
    CredentialProvider,
    Credentials,
    CredentialsLike,
    EnvironmentCredentialProvider,
    StaticCredentialProvider,
    as_provider,
)
from ._endpoints import resolve_endpoint, resolve_region
from ._errors import (
    ConfigurationError,
    CredentialsError,
    CredentialSourceError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFoundError,
    UnsupportedCredentialSourceError,
)
from ._profiles import Profile, load_profile
from ._refresh import RefreshableCredentialProvider, RefreshSettings

__all__ = [
    "ChainCredentialProvider",
    "ContainerCredentialProvider",
    "InstanceMetadataCredentialProvider",
    "ProfileCredentialProvider",
    "WebIdentityCredentialProvider",
    "default_credential_provider",
    "parse_expiration",
]

logger = logging.getLogger("taskiq_sqs_http.aws.credentials")

_TRUE = ("true", "1", "yes", "on")


def _env(environ: Mapping[str, str] | None) -> Mapping[str, str]:
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


def _require_str(data: Mapping[str, Any], key: str, *, source: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise CredentialSourceError(f"response has no {key}", source=source)
    return value


@contextlib.asynccontextmanager
async def _client_for(
    injected: httpx.AsyncClient | None, *, timeout: float, trust_env: bool
) -> AsyncGenerator[httpx.AsyncClient, None]:
    """The caller's client, or a short-lived one closed on exit (no pool kept between fetches)."""
    if injected is not None:
        yield injected
        return
    async with httpx.AsyncClient(timeout=timeout, trust_env=trust_env) as client:
        yield client


def _transport_problem(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# --------------------------------------------------------------------------------------------------
# Web identity (EKS IRSA and any OIDC federation)
# --------------------------------------------------------------------------------------------------

_WEB_IDENTITY_LOOKED_IN = (
    "web identity (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, or profile web_identity_token_file)"
)
_STS_RETRYABLE_CODES = frozenset(
    {"IDPCommunicationError", "Throttling", "ThrottlingException", "RequestLimitExceeded"}
)


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


class WebIdentityCredentialProvider:
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
        self._refresher = RefreshableCredentialProvider(
            self.fetch, description="credentials from web identity", settings=refresh
        )

    def settings(self) -> tuple[str, str, str] | None:
        """(role ARN, token file, session name), or None when web identity is not configured."""
        env = _env(self._environ)
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
        return role_arn, token_file, session_name

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
        configured = self.settings()
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
        async with _client_for(self._http_client, timeout=self._timeout, trust_env=True) as client:
            for attempt in range(self._attempts):
                if attempt:
                    await asyncio.sleep(self._retry_delay * 2 ** (attempt - 1))
                try:
                    response = await client.post(
                        url, content=body.encode(), headers=headers, timeout=self._timeout
                    )
                except httpx.HTTPError as exc:
                    problem = f"STS at {url} {_transport_problem(exc)}"
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

    async def get_credentials(self) -> Credentials:
        return await self._refresher.get_credentials()

    def invalidate(self) -> None:
        self._refresher.invalidate()

    def describe(self) -> str:
        return "credentials from web identity"

    async def aclose(self) -> None:
        await self._refresher.aclose()

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


def _parse_sts_error(body: bytes) -> tuple[str, str]:
    try:
        root = ElementTree.fromstring(body)  # noqa: S314 - STS response; etree does not expand entities
    except ElementTree.ParseError:
        return "", ""
    error = _find(root, "Error")
    if error is None:
        return "", ""
    return _child_text(error, "Code") or "", (_child_text(error, "Message") or "")[:300]


# --------------------------------------------------------------------------------------------------
# Shared files: static keys and credential_process
# --------------------------------------------------------------------------------------------------


def _static_from_section(section: Mapping[str, str], *, source: str) -> Credentials | None:
    key = section.get("aws_access_key_id", "").strip()
    secret = section.get("aws_secret_access_key", "").strip()
    if not key and not secret:
        return None
    if not key:
        raise PartialCredentialsError("aws_secret_access_key without aws_access_key_id", source=source)
    if not secret:
        raise PartialCredentialsError("aws_access_key_id without aws_secret_access_key", source=source)
    token = (
        section.get("aws_session_token", "").strip() or section.get("aws_security_token", "").strip() or None
    )
    return Credentials(key, secret, token, source=source)


class ProfileCredentialProvider:
    """A profile of the shared files: static keys, or ``credential_process``.

    Order within the profile follows botocore: credentials file keys, then ``credential_process``,
    then config file keys. Profiles that need SSO or an assume-role chain raise
    ``UnsupportedCredentialSourceError``: silently skipping them would pick up some other identity.
    The files are re-read on every fetch, so ``invalidate()`` picks up keys rotated in the file.
    """

    def __init__(
        self,
        profile: str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        refresh: RefreshSettings | None = None,
        process_timeout: float = 60.0,
    ) -> None:
        self._profile = profile
        self._environ = environ
        self._http_client = http_client
        self._refresh_settings = refresh
        self._process_timeout = process_timeout
        self._source = "shared files"
        self._refresher = RefreshableCredentialProvider(
            self.fetch, description="credentials from profile", settings=refresh
        )

    def load_profile(self) -> Profile:
        return load_profile(self._profile, environ=self._environ)

    async def fetch(self) -> Credentials:
        """Read the profile and produce credentials once (may run ``credential_process``)."""
        profile = self.load_profile()
        name = profile.name
        looked_in = [
            f"shared credentials file {profile.credentials_path} (profile {name})",
            f"config file {profile.config_path} (profile {name})",
        ]
        if not profile.exists:
            if profile.chosen_by != "default":
                raise ProfileNotFoundError(name, chosen_by=profile.chosen_by, looked_in=looked_in)
            raise NoCredentialsError(looked_in)
        self._check_supported(profile)

        if profile.get("role_arn") and profile.get("web_identity_token_file"):
            provider = WebIdentityCredentialProvider(
                profile=name,
                environ=self._environ,
                http_client=self._http_client,
                refresh=self._refresh_settings,
            )
            self._source = f"web identity (profile {name})"
            credentials = await provider.fetch()
            return _with_source(credentials, self._source)

        source = f"shared credentials file (profile {name})"
        credentials = _static_from_section(profile.credentials, source=source)
        if credentials is not None:
            self._source = source
            return credentials
        command = (
            profile.config.get("credential_process", "").strip()
            or profile.credentials.get("credential_process", "").strip()
        )
        if command:
            self._source = f"credential_process (profile {name})"
            return await run_credential_process(command, source=self._source, timeout=self._process_timeout)
        source = f"config file (profile {name})"
        credentials = _static_from_section(profile.config, source=source)
        if credentials is not None:
            self._source = source
            return credentials
        raise NoCredentialsError(looked_in)

    @staticmethod
    def _check_supported(profile: Profile) -> None:
        keys = profile.keys()
        sso = sorted(k for k in keys if k.startswith("sso_"))
        if sso:
            raise UnsupportedCredentialSourceError(
                f"IAM Identity Center / SSO ({', '.join(sso)})",
                profile=profile.name,
                hint="use `aws configure export-credentials --format process` as "
                "credential_process, or export the keys into the environment",
            )
        if "login_session" in keys:
            raise UnsupportedCredentialSourceError(
                "console login credentials (login_session)", profile=profile.name
            )
        if profile.get("role_arn") and not profile.get("web_identity_token_file"):
            how = [k for k in ("source_profile", "credential_source") if profile.get(k)]
            raise UnsupportedCredentialSourceError(
                "assume role (role_arn" + (f" with {', '.join(how)})" if how else ")"),
                profile=profile.name,
                hint="assume the role outside the process (e.g. credential_process) or use web identity",
            )

    async def get_credentials(self) -> Credentials:
        return await self._refresher.get_credentials()

    def invalidate(self) -> None:
        self._refresher.invalidate()

    def describe(self) -> str:
        return f"credentials from {self._source}"

    async def aclose(self) -> None:
        await self._refresher.aclose()

    def __repr__(self) -> str:
        return f"ProfileCredentialProvider(profile={self._profile!r})"


def _with_source(credentials: Credentials, source: str) -> Credentials:
    return Credentials(
        credentials.access_key_id,
        credentials.secret_access_key,
        credentials.session_token,
        expiration=credentials.expiration,
        source=source,
    )


async def run_credential_process(command: str, *, source: str, timeout: float = 60.0) -> Credentials:
    """Run ``credential_process`` without a shell and parse its Version 1 JSON.

    The command line is split with ``shlex`` and executed directly, so a profile cannot smuggle
    shell syntax. Errors name only the program, never its arguments or its stdout, which may hold
    secrets.
    """
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise CredentialSourceError(f"cannot split the command line: {exc}", source=source) from None
    if not argv:
        raise CredentialSourceError("the command is empty", source=source)
    program = argv[0]
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise CredentialSourceError(
            f"cannot start {program!r}: {exc.strerror or exc}", source=source
        ) from None
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except BaseException as exc:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await asyncio.shield(process.wait())
        if isinstance(exc, asyncio.TimeoutError):
            raise CredentialSourceError(
                f"{program!r} did not finish within {timeout:g} s", source=source
            ) from None
        raise
    if process.returncode != 0:
        detail = stderr.decode("utf-8", "replace").strip()[:1000]
        raise CredentialSourceError(
            f"{program!r} exited with status {process.returncode}" + (f": {detail}" if detail else ""),
            source=source,
        )
    try:
        data: Any = orjson.loads(stdout)
    except orjson.JSONDecodeError:
        raise CredentialSourceError(f"{program!r} did not print a JSON object", source=source) from None
    if not isinstance(data, dict):
        raise CredentialSourceError(f"{program!r} did not print a JSON object", source=source)
    fields: dict[str, Any] = data  # pyright: ignore[reportUnknownVariableType]
    if fields.get("Version") != 1:
        raise CredentialSourceError(
            f"{program!r} printed Version {fields.get('Version')!r}; only Version 1 is supported",
            source=source,
        )
    key = _require_str(fields, "AccessKeyId", source=source)
    secret = _require_str(fields, "SecretAccessKey", source=source)
    token = fields.get("SessionToken")
    if token is not None and not isinstance(token, str):
        raise CredentialSourceError("SessionToken is not a string", source=source)
    expiration = None
    if fields.get("Expiration") is not None:
        expiration = parse_expiration(fields.get("Expiration"), source=source)
    return Credentials(key, secret, token or None, expiration=expiration, source=source)


# --------------------------------------------------------------------------------------------------
# Container endpoint (ECS task roles, EKS Pod Identity, Lambda SnapStart)
# --------------------------------------------------------------------------------------------------

_ECS_HOST = "http://169.254.170.2"
_CONTAINER_ALLOWED_HOSTS = frozenset({"localhost", "169.254.170.2", "169.254.170.23", "fd00:ec2::23"})
_CONTAINER_LOOKED_IN = (
    "container endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, AWS_CONTAINER_CREDENTIALS_FULL_URI)"
)


def _float_env(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} is {raw!r}; expected a number of seconds") from None
    if value <= 0:
        raise ConfigurationError(f"{name} is {raw!r}; expected a positive number")
    return value


def _int_env(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} is {raw!r}; expected a whole number") from None
    if value < 1:
        raise ConfigurationError(f"{name} is {raw!r}; expected at least 1")
    return value


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


class ContainerCredentialProvider:
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
        self._refresher = RefreshableCredentialProvider(
            self.fetch, description="credentials from container endpoint", settings=refresh
        )

    def url(self) -> str | None:
        """The endpoint URL, None when not configured; a refused FULL_URI is an error."""
        env = _env(self._environ)
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
        env = _env(self._environ)
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
        async with _client_for(self._http_client, timeout=timeout, trust_env=False) as client:
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
                    problem = f"{_transport_problem(exc)} at {_redact_url(url)}"
                    continue
                if response.status_code != 200:
                    problem = f"HTTP {response.status_code} from {_redact_url(url)}"
                    continue
                try:
                    return _parse_credentials_json(response.content, session_field="Token", source=source)
                except CredentialSourceError as exc:
                    problem = exc.detail
                    continue
        raise CredentialSourceError(f"{problem} (after {attempts} attempts)", source=source)

    async def get_credentials(self) -> Credentials:
        return await self._refresher.get_credentials()

    def invalidate(self) -> None:
        self._refresher.invalidate()

    def describe(self) -> str:
        return "credentials from container endpoint"

    async def aclose(self) -> None:
        await self._refresher.aclose()

    def __repr__(self) -> str:
        return "ContainerCredentialProvider()"


def _redact_url(url: str) -> str:
    # Relative URIs embed an opaque per-task id; it is not a secret, but keep messages short and
    # free of query strings, which could carry one.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _parse_credentials_json(body: bytes, *, session_field: str, source: str) -> Credentials:
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
    key = _require_str(fields, "AccessKeyId", source=source)
    secret = _require_str(fields, "SecretAccessKey", source=source)
    token = fields.get(session_field)
    if token is not None and not isinstance(token, str):
        raise CredentialSourceError(f"{session_field} is not a string", source=source)
    expiration = None
    if fields.get("Expiration") is not None:
        expiration = parse_expiration(fields.get("Expiration"), source=source)
    return Credentials(key, secret, token or None, expiration=expiration, source=source)


# --------------------------------------------------------------------------------------------------
# EC2 instance metadata (IMDSv2)
# --------------------------------------------------------------------------------------------------

_IMDS_DEFAULT = "http://169.254.169.254"
_IMDS_IPV6 = "http://[fd00:ec2::254]"
_IMDS_TOKEN_PATH = "/latest/api/token"  # noqa: S105 - a URL path
_IMDS_ROLE_PATH = "/latest/meta-data/iam/security-credentials/"


class _NoMetadata(Exception):
    """IMDS is not there (connection refused, unreachable, no role): not an EC2 instance with a
    role."""


class InstanceMetadataCredentialProvider:
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
        self._token: tuple[str, datetime] | None = None
        self._settings = refresh or RefreshSettings()
        self._refresher = RefreshableCredentialProvider(
            self._fetch_with_fallback,
            description="credentials from instance metadata",
            settings=self._settings,
            extend_stale=True,
        )

    def disabled(self) -> bool:
        return _env(self._environ).get("AWS_EC2_METADATA_DISABLED", "").strip().lower() in _TRUE

    def base_url(self) -> str:
        env = _env(self._environ)
        explicit = env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", "").strip()
        if explicit:
            return explicit.rstrip("/")
        mode = env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "").strip().lower()
        return _IMDS_IPV6 if mode == "ipv6" else _IMDS_DEFAULT

    async def _fetch_with_fallback(self) -> Credentials:
        previous = self._refresher.current
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
        env = _env(self._environ)
        timeout = self._timeout or _float_env(env, "AWS_METADATA_SERVICE_TIMEOUT", 1.0)
        attempts = self._attempts or _int_env(env, "AWS_METADATA_SERVICE_NUM_ATTEMPTS", 1)
        base = self.base_url()
        last: Exception = _NoMetadata("no attempt made")
        async with _client_for(self._http_client, timeout=timeout, trust_env=False) as client:
            for _ in range(attempts):
                try:
                    role = (await self._get(client, base, _IMDS_ROLE_PATH, timeout)).strip()
                    role = role.splitlines()[0].strip() if role else ""
                    if not role:
                        raise _NoMetadata("no IAM role attached to the instance")
                    body = await self._get(client, base, _IMDS_ROLE_PATH + role, timeout)
                    return _parse_credentials_json(body.encode(), session_field="Token", source=source)
                except (_NoMetadata, CredentialSourceError) as exc:
                    last = exc
        if isinstance(last, _NoMetadata):
            raise NoCredentialsError([f"instance metadata at {base} ({last})"])
        raise last

    async def _session_token(self, client: httpx.AsyncClient, base: str, timeout: float) -> str | None:
        now = self._settings.now()
        if self._token is not None and self._token[1] > now:
            return self._token[0]
        try:
            response = await client.put(
                base + _IMDS_TOKEN_PATH,
                headers={"x-aws-ec2-metadata-token-ttl-seconds": str(self._token_ttl)},
                timeout=timeout,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise _NoMetadata(_transport_problem(exc)) from None
        except httpx.HTTPError:
            # A read timeout on the PUT is the classic "hop limit 1 inside a container" symptom; the
            # GET may still work with IMDSv1.
            return self._v1_or_fail("the token request timed out")
        if response.status_code == 200 and response.text.strip():
            # Renew a minute early so a token never expires between our check and IMDS's.
            lifetime = timedelta(seconds=max(self._token_ttl - 60, 1))
            self._token = (response.text.strip(), now + lifetime)
            return self._token[0]
        if response.status_code in (403, 404, 405):
            return self._v1_or_fail(f"the token request got HTTP {response.status_code}")
        raise CredentialSourceError(
            f"IMDS token request got HTTP {response.status_code}", source="instance metadata"
        )

    def _v1_or_fail(self, why: str) -> None:
        if _env(self._environ).get("AWS_EC2_METADATA_V1_DISABLED", "").strip().lower() in _TRUE:
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
                raise _NoMetadata(_transport_problem(exc)) from None
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

    async def get_credentials(self) -> Credentials:
        return await self._refresher.get_credentials()

    def invalidate(self) -> None:
        self._refresher.invalidate()

    def describe(self) -> str:
        return "credentials from instance metadata"

    async def aclose(self) -> None:
        await self._refresher.aclose()

    def __repr__(self) -> str:
        return "InstanceMetadataCredentialProvider()"


# --------------------------------------------------------------------------------------------------
# The chain
# --------------------------------------------------------------------------------------------------


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
    if credentials is not None:
        if access_key_id or secret_access_key or session_token:
            raise ConfigurationError("pass credentials or access keys, not both")
        return as_provider(credentials)
    if access_key_id or secret_access_key or session_token:
        if not access_key_id:
            raise PartialCredentialsError(
                "a secret access key or session token without an access key id", source="arguments"
            )
        if not secret_access_key:
            raise PartialCredentialsError("an access key id without a secret access key", source="arguments")
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
