"""S3 object keys and encryption settings shared by the result backend and the broker's S3 payloads.

Keys are built from strings, never ``pathlib``, so they are the same on every OS. A task id is used
verbatim when it only holds S3's "safe" characters and is not ``.`` or ``..`` (so results written by
taskiq-aio-sqs 2.1.1 under ``<base_path>/<task_id>`` are found); any other id is encoded as ``~`` plus its
URL-safe base64, which cannot contain ``/`` and so can never leave ``base_path``. ``~`` is not a safe
character, so an encoded id never equals a verbatim one.
"""

from __future__ import annotations

import base64
import re

from ..aws import ConfigurationError

__all__ = ["join_key", "normalise_base_path", "object_key_segment"]

_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9!\-_.*'()]+$")


def object_key_segment(value: str) -> str:
    """One key segment for an arbitrary id: verbatim when safe, otherwise ``~`` + base64url."""
    if _SAFE_SEGMENT.match(value) and value not in (".", ".."):
        return value
    return "~" + base64.urlsafe_b64encode(value.encode("utf-8")).decode("ascii").rstrip("=")


def normalise_base_path(base_path: str) -> str:
    """``base_path`` without leading/trailing slashes; refuses ``.``/``..`` and empty segments."""
    path = base_path.replace("\\", "/").strip("/")
    if not path:
        return ""
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise ConfigurationError(
                f"base_path is {base_path!r}; segments must be non-empty and not '.' or '..'"
            )
    return path


def join_key(base_path: str, segment: str) -> str:
    return f"{base_path}/{segment}" if base_path else segment
