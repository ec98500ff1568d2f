"""The shared ``~/.aws`` files: static keys in a profile, and ``credential_process``."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from .._credentials import Credentials, parse_expiration
from .._errors import (
    CredentialSourceError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFoundError,
    UnsupportedCredentialSourceError,
)
from .._profiles import Profile, load_profile
from .._refresh import RefreshableCredentialProvider, RefreshSettings
from ._common import require_str
from ._web_identity import WebIdentityCredentialProvider

__all__ = ["ProfileCredentialProvider", "run_credential_process"]


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


class ProfileCredentialProvider(RefreshableCredentialProvider):
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
        super().__init__(description="credentials from profile", settings=refresh)

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

    def describe(self) -> str:
        return f"credentials from {self._source}"

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
    key = require_str(fields, "AccessKeyId", source=source)
    secret = require_str(fields, "SecretAccessKey", source=source)
    token = fields.get("SessionToken")
    if token is not None and not isinstance(token, str):
        raise CredentialSourceError("SessionToken is not a string", source=source)
    expiration = None
    if fields.get("Expiration") is not None:
        expiration = parse_expiration(fields.get("Expiration"), source=source)
    return Credentials(key, secret, token or None, expiration=expiration, source=source)
