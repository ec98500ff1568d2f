"""Configuration values and their validation, done once at construction.

Ranges and defaults are taskiq-aio-sqs 2.1.1's; the error classes are too, with messages that name the
parameter, the value and the allowed range. Numbers are validated in pydantic's lax style (``"5"`` is 5),
because 2.1.1 validated with pydantic and users may pass values read from the environment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .._validate import check_float_at_least, check_int
from ..aws.sqs import MAX_DELAY_SECONDS, MAX_VISIBILITY_TIMEOUT, MAX_WAIT_TIME_SECONDS
from ..exceptions import BrokerConfigError

__all__ = [
    "MAX_DELAY_SECONDS",
    "MAX_NUMBER_OF_MESSAGES",
    "MAX_VISIBILITY_TIMEOUT",
    "MAX_WAIT_TIME_SECONDS",
    "SQSQueue",
]

MAX_NUMBER_OF_MESSAGES = 10
MAX_RECEIVE_COUNT = 1000

_FIFO_SUFFIX = ".fifo"
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_ACCOUNT_ID = re.compile(r"^[0-9]{12}$")


def split_queue_url(url: str) -> str:
    """The queue name in a queue URL (its last path segment)."""
    parts = urlsplit(url)
    name = parts.path.rstrip("/").rsplit("/", 1)[-1]
    if parts.scheme not in ("http", "https") or not parts.netloc or not name:
        raise BrokerConfigError(
            error=f"queue URL {url!r} is not of the form https://<host>/<account id>/<queue name>"
        )
    return name


@dataclass(slots=True, kw_only=True, frozen=True)
class SQSQueue:
    """One SQS queue the broker sends to and consumes from.

    ``name`` may also be a queue URL: the broker then uses it as is (no GetQueueUrl call, which also works
    for queues in other accounts), and ``name`` becomes the URL's last path segment, which is what the
    ``queue`` label refers to. ``owner_account_id`` resolves a queue of another account by name.

    A name ending in ``.fifo`` is a FIFO queue whatever ``is_fifo`` says (2.1.1 required both; SQS only
    accepts FIFO queues with that suffix). ``options`` are extra queue attributes, applied only when the
    broker creates the queue (``create_queues=True``), as are ``dead_letter_queue`` and
    ``max_receive_count`` (the RedrivePolicy) and ``high_throughput`` (FIFO high-throughput mode:
    ``DeduplicationScope=messageGroup``, ``FifoThroughputLimit=perMessageGroupId``).

    ``wait_time_seconds`` None (the default) takes the broker's ``wait_time_seconds`` when the queue is
    registered, so an extra queue long-polls like the default one; 2.1.1 polled an extra queue once a
    second (``0``), which an idle queue pays for with 3,600 requests an hour. ``enable_batching``,
    ``batch_size`` and ``batch_timeout`` None take the broker's settings.
    """

    name: str
    is_fifo: bool = False
    max_number_of_messages: int = 1
    wait_time_seconds: int | None = None
    visibility_timeout: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict[str, Any])
    url: str | None = None
    owner_account_id: str | None = None
    dead_letter_queue: str | None = None
    max_receive_count: int = 5
    enable_batching: bool | None = None
    batch_size: int | None = None
    batch_timeout: float | None = None
    high_throughput: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise BrokerConfigError(
                error=f"queue name is {self.name!r}; it must be a string of 1 to 80 letters, digits, '-' "
                "and '_' (ending in '.fifo' for a FIFO queue), or a queue URL"
            )
        if self.name.startswith(("http://", "https://")):
            if self.url is not None and self.url != self.name:
                raise BrokerConfigError(
                    error=f"SQSQueue name is the URL {self.name!r} but url is {self.url!r}"
                )
            object.__setattr__(self, "url", self.name)
            object.__setattr__(self, "name", split_queue_url(self.name))
        elif self.url is not None:
            url_name = split_queue_url(self.url)
            if url_name != self.name:
                raise BrokerConfigError(
                    error=f"SQSQueue name {self.name!r} does not match the queue in url {self.url!r}"
                )
        if self.name.endswith(_FIFO_SUFFIX):
            object.__setattr__(self, "is_fifo", True)
        elif self.is_fifo:
            raise BrokerConfigError(
                error=f"queue {self.name!r} has is_fifo=True but SQS FIFO queue names end in '.fifo'"
            )
        object.__setattr__(
            self,
            "max_number_of_messages",
            check_int("max_number_of_messages", self.max_number_of_messages, 1, MAX_NUMBER_OF_MESSAGES),
        )
        if self.wait_time_seconds is not None:
            object.__setattr__(
                self,
                "wait_time_seconds",
                check_int("wait_time_seconds", self.wait_time_seconds, 0, MAX_WAIT_TIME_SECONDS),
            )
        if self.enable_batching is not None and not isinstance(self.enable_batching, bool):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise BrokerConfigError(
                error=f"'enable_batching' must be True, False or None, got {self.enable_batching!r}"
            )
        if self.batch_size is not None:
            object.__setattr__(self, "batch_size", check_int("batch_size", self.batch_size, 1, 10))
        if self.batch_timeout is not None:
            object.__setattr__(
                self, "batch_timeout", check_float_at_least("batch_timeout", self.batch_timeout, 0.1)
            )
        if self.high_throughput and not self.is_fifo:
            raise BrokerConfigError(
                error=f"high_throughput is for FIFO queues; queue {self.name!r} is a standard queue"
            )
        if self.visibility_timeout is not None:
            object.__setattr__(
                self,
                "visibility_timeout",
                check_int("visibility_timeout", self.visibility_timeout, 0, MAX_VISIBILITY_TIMEOUT),
            )
        if self.owner_account_id is not None and not _ACCOUNT_ID.match(self.owner_account_id):
            raise BrokerConfigError(
                error=f"owner_account_id is {self.owner_account_id!r}; it must be 12 digits"
            )
        object.__setattr__(
            self,
            "max_receive_count",
            check_int("max_receive_count", self.max_receive_count, 1, MAX_RECEIVE_COUNT),
        )
        if self.dead_letter_queue is not None:
            dlq = self.dead_letter_queue
            if dlq.endswith(_FIFO_SUFFIX) != self.is_fifo:
                raise BrokerConfigError(
                    error=f"dead_letter_queue {dlq!r} must be a "
                    f"{'FIFO' if self.is_fifo else 'standard'} queue like {self.name!r}"
                )

    def __str__(self) -> str:
        return self.name

    @property
    def wait_seconds(self) -> int:
        """The long-poll wait: ``wait_time_seconds``, or the broker's once registered (0 standing alone)."""
        return self.wait_time_seconds or 0

    def __hash__(self) -> int:
        return hash(self.name)

    def creatable(self) -> bool:
        """Whether the broker may create this queue: a name it can pass to CreateQueue."""
        return (
            self.url is None
            and self.owner_account_id is None
            and bool(_QUEUE_NAME.match(self.name.removesuffix(_FIFO_SUFFIX)))
        )
