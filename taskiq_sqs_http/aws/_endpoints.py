"""Region and endpoint resolution, in the order the AWS SDKs document.

Region: explicit argument, ``AWS_REGION``, ``AWS_DEFAULT_REGION``, the profile's ``region`` in
``AWS_CONFIG_FILE``, then ``us-east-1``. botocore itself reads only ``AWS_DEFAULT_REGION`` and the
profile, but Lambda, ECS and EKS set ``AWS_REGION`` and every other SDK reads it first, so it goes
first here.

Endpoint: explicit argument, then (unless ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`` or the
profile's ``ignore_configured_endpoint_urls = true``) ``AWS_ENDPOINT_URL_<SERVICE>``,
``AWS_ENDPOINT_URL``, the profile's ``[services x]`` sub-section, the profile's ``endpoint_url``,
and finally the AWS endpoint for the region. Each resolver also says where its answer came from, so
startup can log it without secrets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ._environ import TRUE_VALUES, env_flag, environ_of
from ._errors import ConfigurationError
from ._profiles import Profile, load_profile

__all__ = ["DEFAULT_REGION", "Resolved", "resolve_endpoint", "resolve_region"]

DEFAULT_REGION = "us-east-1"
_REGION_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class Resolved:
    """A configuration value and the place it came from (for ``describe()`` and startup logs)."""

    value: str
    source: str


def _profile_or_none(
    profile: Profile | None, use_profile: bool, environ: Mapping[str, str] | None
) -> Profile | None:
    if profile is not None:
        return profile
    if not use_profile:
        return None
    return load_profile(environ=environ)


def _profile_source(profile: Profile, what: str) -> str:
    return f"{what} of profile {profile.name} in {profile.config_path}"


def resolve_region(
    explicit: str | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    profile: Profile | None = None,
    use_profile: bool = True,
) -> Resolved:
    """The region to sign for, and where it came from.

    The config file is only read when neither argument nor environment names a region, so containers
    that set ``AWS_REGION`` never touch the filesystem. Pass ``profile`` to reuse an already loaded
    profile, or ``use_profile=False`` to ignore the files altogether.
    """
    env = environ_of(environ)
    candidates = (
        (explicit, "argument"),
        (env.get("AWS_REGION"), "AWS_REGION"),
        (env.get("AWS_DEFAULT_REGION"), "AWS_DEFAULT_REGION"),
    )
    for value, source in candidates:
        if value and value.strip():
            return Resolved(_check_region(value, source), source)
    loaded = _profile_or_none(profile, use_profile, environ)
    if loaded is not None:
        value = loaded.config.get("region", "")
        if value.strip():
            source = _profile_source(loaded, "region")
            return Resolved(_check_region(value, source), source)
    return Resolved(DEFAULT_REGION, "default")


def _check_region(value: str, source: str) -> str:
    value = value.strip()
    if not _REGION_RE.match(value):
        label = "region_name" if source == "argument" else f"region from {source}"
        raise ConfigurationError(
            f"{label} is {value!r}; expected an AWS region name such as 'eu-west-1' "
            "(lower-case letters, digits and '-')"
        )
    return value


def _aws_endpoint(service: str, region: str) -> str:
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    if service == "s3" and region == "us-east-1":
        return f"https://s3.{suffix}"
    return f"https://{service}.{region}.{suffix}"


def _service_id(service: str) -> str:
    # Service ids as used in ``AWS_ENDPOINT_URL_<ID>`` and ``[services]`` keys: spaces become '_'.
    return service.strip().replace(" ", "_").replace("-", "_")


def resolve_endpoint(
    service: str,
    region: str,
    explicit: str | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    profile: Profile | None = None,
    use_profile: bool = True,
) -> Resolved:
    """The base URL for ``service`` ('sqs', 's3' or 'sts'), without a trailing slash."""
    if explicit and explicit.strip():
        return Resolved(_check_endpoint(explicit, "argument"), "argument")
    env = environ_of(environ)
    if env_flag(env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"):
        return Resolved(_aws_endpoint(service, region), "default")
    service_id = _service_id(service)
    service_var = f"AWS_ENDPOINT_URL_{service_id.upper()}"
    for value, source in (
        (env.get(service_var), service_var),
        (env.get("AWS_ENDPOINT_URL"), "AWS_ENDPOINT_URL"),
    ):
        if value and value.strip():
            return Resolved(_check_endpoint(value, source), source)
    loaded = _profile_or_none(profile, use_profile, environ)
    if loaded is not None:
        ignore = loaded.config.get("ignore_configured_endpoint_urls", "").strip().lower()
        if ignore in TRUE_VALUES:
            return Resolved(_aws_endpoint(service, region), "default")
        service_url = loaded.service_setting(service_id.lower(), "endpoint_url")
        if service_url:
            source = (
                f"services {loaded.config.get('services', '').strip()} ({service_id.lower()}) "
                f"of profile {loaded.name} in {loaded.config_path}"
            )
            return Resolved(_check_endpoint(service_url, source), source)
        url = loaded.config.get("endpoint_url", "")
        if url.strip():
            source = _profile_source(loaded, "endpoint_url")
            return Resolved(_check_endpoint(url, source), source)
    return Resolved(_aws_endpoint(service, region), "default")


def _check_endpoint(value: str, source: str) -> str:
    value = value.strip()
    label = "endpoint_url" if source == "argument" else f"endpoint URL from {source}"
    problem = ""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        problem = "it is not a valid URL"
    else:
        if parts.scheme not in ("http", "https") or "://" not in value:
            problem = "it must start with http:// or https://"
        elif not parts.hostname:
            problem = "it has no host"
        elif any(c.isspace() for c in value):
            problem = "it contains whitespace"
        elif parts.query or parts.fragment:
            problem = "it must not have a query string or fragment"
    if problem:
        raise ConfigurationError(
            f"{label} is {value!r}; {problem} (expected a URL such as https://sqs.eu-west-1.amazonaws.com "
            "or http://localhost:4566)"
        )
    return value.rstrip("/")
