"""Constructor argument checks: a wrong argument fails at construction, naming the parameter.

The messages and the order of the checks are 2.1.1's where 2.1.1 had the check.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import cast

from ..exceptions import BrokerConfigError
from ._config import SQSQueue

__all__ = [
    "as_positive_float",
    "check_bucket_name",
    "check_heartbeat_interval",
    "check_heartbeat_max_extensions",
    "check_queue",
    "check_range_float",
    "check_types",
    "parse_heartbeat_interval",
]


def check_types(
    *,
    flags: dict[str, object],
    names: dict[str, object],
    instances: dict[str, tuple[object, type]],
    callables: dict[str, object],
) -> None:
    """Wrong types fail at construction with the parameter's name, not later deep inside a request."""
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise BrokerConfigError(error=f"'{name}' must be True or False, got {value!r}")
    for name, value in names.items():
        if value is None:
            continue
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
            raise BrokerConfigError(error=f"'{name}' must be a list of names, got {value!r}")
        items = cast(Iterable[object], value)
        if not all(isinstance(item, str) and item for item in items):
            raise BrokerConfigError(error=f"'{name}' must contain only non-empty strings, got {value!r}")
    for name, (value, expected) in instances.items():
        if value is not None and not isinstance(value, expected):
            raise BrokerConfigError(
                error=f"'{name}' must be a {expected.__module__}.{expected.__qualname__}, got {value!r}"
            )
    for name, value in callables.items():
        if value is not None and not callable(value):
            raise BrokerConfigError(error=f"'{name}' must be callable, got {value!r}")


def parse_heartbeat_interval(value: float | None) -> float | None:
    """``heartbeat_interval`` as a float; None lets each queue's visibility timeout decide."""
    if value is None:
        return None
    interval = as_positive_float(value)
    if interval is None:
        raise BrokerConfigError(error=f"'heartbeat_interval' must be greater than 0, got {value}")
    return interval


def check_heartbeat_max_extensions(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:  # pyright: ignore[reportUnnecessaryIsInstance]
        raise BrokerConfigError(error=f"'heartbeat_max_extensions' must be at least 1, got {value}")
    return value


def check_heartbeat_interval(interval: float | None, visibility_timeout: int, where: str) -> None:
    """A heartbeat must come before the message reappears; with no visibility timeout it never can."""
    if visibility_timeout == 0:
        raise BrokerConfigError(
            error=f"enable_heartbeat needs a visibility_timeout above 0 for {where}, got 0"
        )
    if interval is not None and interval >= visibility_timeout:
        raise BrokerConfigError(
            error=f"'heartbeat_interval' must be below the visibility timeout of {where} "
            f"({visibility_timeout} s), got {interval}"
        )


def check_queue(
    queue: SQSQueue, *, delay_seconds: int, enable_heartbeat: bool, heartbeat_interval: float | None
) -> None:
    """A queue's settings against the broker's: checked when the queue is registered, not at send."""
    if queue.is_fifo and delay_seconds > 0:
        raise BrokerConfigError(
            error=f"delay_seconds is {delay_seconds} but queue {queue.name!r} is FIFO, "
            "which does not support per-message delays; use 0"
        )
    if enable_heartbeat and queue.visibility_timeout is not None:
        check_heartbeat_interval(heartbeat_interval, queue.visibility_timeout, f"queue {queue.name!r}")


def check_range_float(name: str, value: object, low: float, high: float) -> float:
    number = None if isinstance(value, bool) or not isinstance(value, (int, float)) else float(value)
    if number is None or not math.isfinite(number) or not low <= number <= high:
        raise BrokerConfigError(error=f"'{name}' is {value!r}; allowed range is {low}..{high}")
    return number


def as_positive_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number > 0 else None


# S3 bucket names: 3..63 lower-case letters, digits, dots and dashes; a letter or digit at each end.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def check_bucket_name(name: str, value: object) -> None:
    """A bucket name that S3 could accept, checked at construction rather than at the first large kick."""
    if value is None:
        return
    if not isinstance(value, str) or not _BUCKET.match(value):
        raise BrokerConfigError(
            error=f"'{name}' is {value!r}; a bucket name is 3 to 63 lower-case letters, digits, dots and "
            "dashes, starting and ending with a letter or digit"
        )
