"""The shared ``~/.aws/credentials`` and ``~/.aws/config`` files, read the way the AWS CLI reads
them.

Developers and CI machines configure AWS through these files far more often than through code, so a
client that ignored them would pick a different identity, region or endpoint than ``aws`` does on
the same machine. Only the standard library's ``configparser`` is used: the format is INI with one
twist, nested sub-sections written as an indented continuation of a key (``sqs =`` then ``
endpoint_url = ...``).

Files are read on demand and not cached: they are small, read only when a provider resolves or
refreshes, and a developer who edits them expects the next process (or the next refresh) to see the
change.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ._environ import environ_of
from ._errors import ConfigurationError

__all__ = [
    "DEFAULT_PROFILE",
    "Profile",
    "ProfileChoice",
    "config_file_path",
    "credentials_file_path",
    "load_profile",
    "parse_ini",
    "parse_subsection",
    "profile_name",
]

DEFAULT_PROFILE = "default"
# A section name nobody writes, so that configparser's special [DEFAULT] handling never leaks values
# from one profile into every other one (the AWS files have no such inheritance).
_NO_DEFAULT_SECTION = "\x00no-default-section"


class ProfileChoice(NamedTuple):
    """The active profile and what chose it (a variable name, or "default")."""

    name: str
    chosen_by: str


def profile_name(environ: Mapping[str, str] | None = None) -> ProfileChoice:
    """The active profile and the variable that chose it.

    ``AWS_DEFAULT_PROFILE`` is checked before ``AWS_PROFILE`` because botocore does so; diverging
    would make the same shell pick different profiles for ``aws`` and for this client.
    """
    env = environ_of(environ)
    for var in ("AWS_DEFAULT_PROFILE", "AWS_PROFILE"):
        value = env.get(var, "").strip()
        if value:
            return ProfileChoice(value, var)
    return ProfileChoice(DEFAULT_PROFILE, "default")


def _expand(path: str, environ: Mapping[str, str] | None) -> Path:
    # Expand ``~`` from the mapping we were given, so tests (and callers) that pass ``environ``
    # never touch the real home directory of the process.
    if environ is not None and path.startswith("~"):
        home = environ.get("HOME") or environ.get("USERPROFILE")
        if home:
            return Path(home + path[1:])
    return Path(os.path.expanduser(path))


def credentials_file_path(environ: Mapping[str, str] | None = None) -> Path:
    return _expand(environ_of(environ).get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials", environ)


def config_file_path(environ: Mapping[str, str] | None = None) -> Path:
    return _expand(environ_of(environ).get("AWS_CONFIG_FILE") or "~/.aws/config", environ)


def parse_ini(text: str, *, source: str = "<string>") -> dict[str, dict[str, str]]:
    """Sections of an AWS-style INI text: keys lower-cased, values raw (sub-sections as text)."""
    parser = configparser.RawConfigParser(
        default_section=_NO_DEFAULT_SECTION, strict=False, interpolation=None
    )
    try:
        parser.read_string(text, source=source)
    except configparser.Error as exc:
        # configparser's message names the file and line but never quotes more than the offending
        # line.
        raise ConfigurationError(f"cannot parse AWS configuration file {source}: {exc}") from None
    return {section: dict(parser.items(section)) for section in parser.sections()}


def parse_subsection(value: str) -> dict[str, str]:
    """``"\\n  endpoint_url = http://x"`` (an indented block under a key) as a mapping."""
    result: dict[str, str] = {}
    for raw in value.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, _, val = line.partition("=")
        result[key.strip().lower()] = val.strip()
    return result


def _read(path: Path) -> dict[str, dict[str, str]]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except IsADirectoryError:
        raise ConfigurationError(f"AWS configuration path {path} is a directory") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read AWS configuration file {path}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigurationError(f"AWS configuration file {path} is not UTF-8") from None
    return parse_ini(text, source=str(path))


@dataclass(frozen=True, slots=True)
class Profile:
    """One profile as seen through both files, each kept apart so precedence stays explicit.

    ``credentials`` is the ``[name]`` section of the credentials file, ``config`` the ``[profile
    name]`` (or ``[default]``) section of the config file, and ``services`` the ``[services x]``
    section the profile points to, already split into per-service sub-sections.
    """

    name: str
    chosen_by: str
    credentials_path: Path
    config_path: Path
    credentials: Mapping[str, str] = field(default_factory=dict[str, str])
    config: Mapping[str, str] = field(default_factory=dict[str, str])
    services: Mapping[str, Mapping[str, str]] = field(default_factory=dict[str, Mapping[str, str]])

    @property
    def exists(self) -> bool:
        return bool(self.credentials) or bool(self.config)

    def get(self, key: str) -> str | None:
        """A key from either file; the credentials file wins, as in botocore's merged view."""
        value = self.credentials.get(key)
        if value is None or value == "":
            value = self.config.get(key)
        return value if value else None

    def keys(self) -> set[str]:
        return set(self.credentials) | set(self.config)

    def service_setting(self, service: str, key: str) -> str | None:
        value = self.services.get(service.lower(), {}).get(key)
        return value or None

    def describe(self) -> str:
        return f"profile {self.name}"

    def __repr__(self) -> str:
        # Keys only: the values include secrets.
        return (
            f"Profile(name={self.name!r}, credentials_keys={sorted(self.credentials)!r}, "
            f"config_keys={sorted(self.config)!r})"
        )


def load_profile(name: str | None = None, *, environ: Mapping[str, str] | None = None) -> Profile:
    """The named profile (default: the one the environment selects); empty when absent, never an
    error.

    Whether a missing profile is an error depends on the caller: the credentials provider fails on
    an explicitly chosen profile that does not exist, region resolution just moves on.
    """
    if name is None:
        name, chosen_by = profile_name(environ)
    else:
        chosen_by = "argument"
    cred_path = credentials_file_path(environ)
    conf_path = config_file_path(environ)
    cred_sections = _read(cred_path)
    conf_sections = _read(conf_path)

    credentials = cred_sections.get(name, {})
    config: dict[str, str] = {}
    # ``[profile default]`` is accepted too and wins over ``[default]``, like the CLI.
    if name == DEFAULT_PROFILE:
        config.update(conf_sections.get(DEFAULT_PROFILE, {}))
    config.update(conf_sections.get(f"profile {name}", {}))

    services: dict[str, Mapping[str, str]] = {}
    services_name = config.get("services", "").strip()
    if services_name:
        section = conf_sections.get(f"services {services_name}", {})
        for service, block in section.items():
            services[service.lower()] = parse_subsection(block)

    return Profile(
        name=name,
        chosen_by=chosen_by,
        credentials_path=cred_path,
        config_path=conf_path,
        credentials=credentials,
        config=config,
        services=services,
    )
