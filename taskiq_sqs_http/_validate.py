"""Every argument check of the taskiq layers, in one place: a wrong value fails at construction, naming the
parameter, the value and the allowed range.

The messages and exception classes are taskiq-aio-sqs 2.1.1's where 2.1.1 had the check, so code that
catches them keeps working; numbers are parsed as leniently as 2.1.1's pydantic models did (``"5"`` and
``5.0`` are 5, ``True`` is not a number).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import cast

from .exceptions import BrokerConfigError, BrokerFloatConfigError, BrokerInputConfigError

__all__ = [
    "as_int",
    "as_positive_float",
    "check_bool",
    "check_bucket_name",
    "check_callable",
    "check_float_at_least",
    "check_heartbeat_interval",
    "check_heartbeat_max_extensions",
    "check_int",
    "check_names",
    "check_range_float",
    "check_strict_int",
    "parse_heartbeat_interval",
]

# S3 bucket names: 3..63 lower-case letters, digits, dots and dashes; a letter or digit at each end.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def as_int(value: object) -> int | None:
    """Lax integer parsing: ints, integral floats and numeric strings; never bools."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def check_int(
    attribute: str,
    value: object,
    low: int,
    high: int,
    error: type[BrokerInputConfigError] = BrokerInputConfigError,
) -> int:
    """``value`` as an int in ``low..high``, or ``error`` naming the attribute, value and range."""
    number = as_int(value)
    if number is None or not low <= number <= high:
        raise error(attribute=attribute, min_number=low, max_number=high, value=value)
    return number


def check_float_at_least(attribute: str, value: object, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BrokerFloatConfigError(attribute=attribute, min_value=minimum, value=value)
    try:
        number = float(value)
    except ValueError:
        raise BrokerFloatConfigError(attribute=attribute, min_value=minimum, value=value) from None
    if not math.isfinite(number) or number < minimum:
        raise BrokerFloatConfigError(attribute=attribute, min_value=minimum, value=value)
    return number


def check_strict_int(name: str, value: object, low: int, high: int, unit: str = "") -> int:
    """An int (not a bool, not a float) in ``low..high``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BrokerConfigError(
            error=f"{name} is {value!r}; allowed range is {low}..{high}{' ' + unit if unit else ''}"
        )
    return value


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


def check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise BrokerConfigError(error=f"'{name}' must be True or False, got {value!r}")
    return value


def check_names(name: str, value: object) -> frozenset[str]:
    """A list of non-empty names (task names, bucket names); None is the empty set."""
    if value is None:
        return frozenset()
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
        raise BrokerConfigError(error=f"'{name}' must be a list of names, got {value!r}")
    items = cast(Iterable[object], value)
    if not all(isinstance(item, str) and item for item in items):
        raise BrokerConfigError(error=f"'{name}' must contain only non-empty strings, got {value!r}")
    return frozenset(cast(Iterable[str], items))


def check_callable(name: str, value: object) -> None:
    if value is not None and not callable(value):
        raise BrokerConfigError(error=f"'{name}' must be callable, got {value!r}")


def check_bucket_name(name: str, value: object) -> None:
    """A bucket name S3 could accept, checked at construction rather than at the first large kick."""
    if value is None:
        return
    if not isinstance(value, str) or not _BUCKET.match(value):
        raise BrokerConfigError(
            error=f"'{name}' is {value!r}; a bucket name is 3 to 63 lower-case letters, digits, dots and "
            "dashes, starting and ending with a letter or digit"
        )


def parse_heartbeat_interval(value: object) -> float | None:
    """``heartbeat_interval`` as a float; None lets each queue's visibility timeout decide."""
    if value is None:
        return None
    interval = as_positive_float(value)
    if interval is None:
        raise BrokerConfigError(error=f"'heartbeat_interval' must be greater than 0, got {value}")
    return interval


def check_heartbeat_max_extensions(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
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
