"""Retry policy as a value: which failures to retry, and how long to wait between attempts.

Modelled on the AWS SDKs' "standard" mode: 3 attempts, capped exponential backoff with full jitter, a
longer base for throttling, and a retry quota (token bucket) so that a failing service is not hammered by
every caller at once. Classification lives here, not in the clients, so that one policy object decides for
SQS, S3 and the credential endpoints alike.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ._errors import AWSError, ConfigurationError, ServiceError, TransportError

__all__ = [
    "CLOCK_SKEW_CODES",
    "EXPIRED_TOKEN_CODES",
    "THROTTLING_CODES",
    "TRANSIENT_CODES",
    "RetryPolicy",
    "RetryQuota",
]

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "AWS.SimpleQueueService.RequestThrottled",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "IDPCommunicationError",
    }
)
TRANSIENT_STATUS = frozenset({500, 502, 503, 504})
CLOCK_SKEW_CODES = frozenset(
    {
        "RequestTimeTooSkewed",
        "RequestExpired",
        "RequestInTheFuture",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "AuthFailure",
    }
)
EXPIRED_TOKEN_CODES = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "RequestExpiredException", "TokenRefreshRequired"}
)


def is_throttling(error: BaseException) -> bool:
    if isinstance(error, ServiceError):
        return error.code in THROTTLING_CODES or error.query_error_code in THROTTLING_CODES
    return False


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
        if isinstance(error, ServiceError):
            if is_throttling(error) or error.code in TRANSIENT_CODES:
                return True
            if error.status in TRANSIENT_STATUS:
                return True
            return error.status == 429
        return False

    def delay(self, attempt: int, error: AWSError | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based): full jitter."""
        base = self.throttling_base_delay if error is not None and is_throttling(error) else self.base_delay
        ceiling = min(base * (2 ** (attempt - 1)), self.max_delay)
        return self.random() * ceiling
