"""Task labels the broker reads at kick time.

taskiq turns every label value into a string before the broker sees it (``5`` → ``"5"``, ``False`` →
``"False"``), so truthiness of the raw value is wrong: 2.1.1 treated ``skip_batching=False`` and
``delay=0`` as set. Here ``"False"``, ``"false"``, ``"0"`` and ``""`` are false.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from ..exceptions import IntTaskLabelConfigError, StrTaskLabelConfigError

__all__ = [
    "DEDUPLICATION_ID_LABEL",
    "DELAY_LABEL",
    "EXPIRY_LABEL",
    "GROUP_ID_LABEL",
    "QUEUE_LABEL",
    "RETRIES_LABEL",
    "SKIP_BATCHING_LABEL",
    "label_bool",
    "parse_deduplication_id",
    "parse_delay",
    "parse_expiry",
    "parse_group_id",
    "retry_count",
]

QUEUE_LABEL = "queue"
DELAY_LABEL = "delay"
GROUP_ID_LABEL = "group_id"
SKIP_BATCHING_LABEL = "skip_batching"
# A FIFO message's MessageDeduplicationId (taskiq-sqs's label; ours otherwise uses the task id or the body).
DEDUPLICATION_ID_LABEL = "deduplication_id"
# A Unix time after which the task must not run (taskiq-sqs's label): received later, it is deleted unrun.
EXPIRY_LABEL = "sqs_expiry"
# Set by taskiq's SimpleRetryMiddleware and SmartRetryMiddleware on every re-kick.
RETRIES_LABEL = "_retries"

# SQS keeps a message for at most 14 days; a longer delay could never be delivered.
MAX_LONG_DELAY_SECONDS = 14 * 24 * 3600

_FALSE_STRINGS = frozenset({"", "0", "false", "no", "off", "none"})
# MessageGroupId: 1..128 characters, alphanumerics and ASCII punctuation (2.1.1's pattern).
_GROUP_ID = re.compile(r"^[a-zA-Z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1,128}$")


def label_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE_STRINGS
    return bool(value)


def parse_delay(raw: Any, *, maximum: float = MAX_LONG_DELAY_SECONDS) -> float:
    """Seconds of delay asked for by a ``delay`` label (0 when absent or zero).

    Negative, non-numeric, non-finite and too long values raise `IntTaskLabelConfigError` naming the
    label and the range that is really accepted (0 to 14 days: longer than 15 minutes is "hide until due").
    """
    if raw is None or raw is False or (isinstance(raw, str) and raw.strip().lower() in _FALSE_STRINGS):
        return 0.0
    number: float | None
    if isinstance(raw, bool):
        number = None
    elif isinstance(raw, (int, float)):
        number = float(raw)
    elif isinstance(raw, str):
        try:
            number = float(raw.strip())
        except ValueError:
            number = None
    else:
        number = None
    if number is None or not math.isfinite(number) or number < 0 or number > maximum:
        raise IntTaskLabelConfigError(attribute="delay", min_number=0, max_number=int(maximum), value=raw)
    return number


def sqs_delay_seconds(delay: float) -> int:
    """Whole seconds for DelaySeconds, rounded as 2.1.1 did (``round``: "2.5" → 2, "1.5" → 2)."""
    return round(delay)


def parse_group_id(raw: Any) -> str:
    value = raw if isinstance(raw, str) else str(raw)
    if not _GROUP_ID.match(value):
        raise StrTaskLabelConfigError(attribute="MessageGroupId", min_number=1, max_number=128, value=raw)
    return value


def parse_deduplication_id(raw: Any) -> str:
    """MessageDeduplicationId: 1..128 alphanumerics and punctuation, like a group id."""
    value = raw if isinstance(raw, str) else str(raw)
    if not _GROUP_ID.match(value):
        raise StrTaskLabelConfigError(
            attribute="MessageDeduplicationId", min_number=1, max_number=128, value=raw
        )
    return value


def parse_expiry(raw: Any) -> float | None:
    """The Unix time of an ``sqs_expiry`` label; None when absent or empty."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    number: float | None = None
    if not isinstance(raw, bool):
        try:
            number = float(raw.strip() if isinstance(raw, str) else raw)
        except (TypeError, ValueError):
            number = None
    if number is None or not math.isfinite(number) or number <= 0:
        raise IntTaskLabelConfigError(attribute=EXPIRY_LABEL, min_number=1, max_number=2**53, value=raw)
    return number


def retry_count(labels: Mapping[str, Any]) -> int:
    """How many times taskiq's retry middlewares have re-kicked this task (0 for a first kick)."""
    raw = labels.get(RETRIES_LABEL)
    if raw is None:
        return 0
    try:
        return max(int(str(raw).strip()), 0)
    except ValueError:
        return 0
