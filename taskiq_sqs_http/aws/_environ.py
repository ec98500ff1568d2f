"""Reading the process environment: one helper for every module that honours an ``AWS_*`` variable.

Every reader takes an optional mapping so that tests (and callers who configure a client from something
other than ``os.environ``) never touch the real environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ._errors import ConfigurationError

__all__ = ["TRUE_VALUES", "env_flag", "env_float", "env_int", "environ_of"]

# Spellings of "on" the AWS SDKs accept for boolean variables such as AWS_EC2_METADATA_DISABLED.
TRUE_VALUES = frozenset({"true", "1", "yes", "on"})


def environ_of(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    """The mapping to read: the one given, else ``os.environ`` (read live, never copied)."""
    return os.environ if environ is None else environ


def env_flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in TRUE_VALUES


def env_float(env: Mapping[str, str], name: str, default: float) -> float:
    """A positive number of seconds, ``default`` when unset; a clear error naming the variable otherwise."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} is {raw!r}; expected a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise ConfigurationError(f"{name} is {raw!r}; expected a positive number")
    return value


def env_int(env: Mapping[str, str], name: str, default: int) -> int:
    """A whole number of at least 1, ``default`` when unset."""
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
