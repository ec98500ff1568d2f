"""Retry policy as a value: which failures to retry, and how long to wait between attempts.

Modelled on the AWS SDKs' "standard" mode: 3 attempts, capped exponential backoff with full jitter, a
longer base for throttling, and a retry quota (token bucket) so that a failing service is not hammered by
every caller at once. Which failures are transient is decided in `_classify`, for this policy and for the
layers above alike.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ._classify import is_throttling, is_transient
from ._errors import AWSError, ConfigurationError, ServiceError, TransportError

__all__ = ["RetryPolicy", "RetryQuota"]


@dataclass(slots=True)
class RetryQuota:
    """A token bucket shared by the clients of one process: retries spend, successes refill.

    When the bucket is empty, further retries are refused, so an outage produces errors quickly instead of
    multiplying the load on the service by the number of attempts.
    """

    capacity: int = 500
    retry_cost: int = 5
    timeout_cost: int = 10
    available: int = field(init=False)

    def __post_init__(self) -> None:
        self.available = self.capacity

    def acquire(self, error: BaseException) -> int:
        """Tokens taken for one retry, or 0 when the quota is exhausted (do not retry)."""
        cost = self.timeout_cost if isinstance(error, TransportError) else self.retry_cost
        if cost > self.available:
            return 0
        self.available -= cost
        return cost

    def release(self, amount: int) -> None:
        self.available = min(self.capacity, self.available + max(amount, 1))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many attempts a request gets and how long to wait between them.

    ``random`` and the zero-delay ``testing()`` variant exist so that tests never sleep for real.
    """

    max_attempts: int = 3
    base_delay: float = 0.05
    throttling_base_delay: float = 1.0
    max_delay: float = 20.0
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= 20:
            raise ConfigurationError(f"max_attempts is {self.max_attempts!r}; allowed range is 1..20")
        for name in ("base_delay", "throttling_base_delay", "max_delay"):
            value = getattr(self, name)
            if not 0 <= value <= 300:
                raise ConfigurationError(f"{name} is {value!r}; allowed range is 0..300 seconds")

    @classmethod
    def testing(cls, max_attempts: int = 3) -> RetryPolicy:
        """Same classification, no waiting."""
        return cls(max_attempts=max_attempts, base_delay=0, throttling_base_delay=0, max_delay=0)

    def is_retryable(self, error: BaseException) -> bool:
        if isinstance(error, TransportError):
            return True
        return isinstance(error, ServiceError) and is_transient(error)

    def delay(self, attempt: int, error: AWSError | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based): full jitter."""
        base = self.throttling_base_delay if error is not None and is_throttling(error) else self.base_delay
        ceiling = min(base * (2 ** (attempt - 1)), self.max_delay)
        return self.random() * ceiling
