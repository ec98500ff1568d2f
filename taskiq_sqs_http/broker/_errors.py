"""Which broker error a client-layer failure becomes: the exception types 2.1.1's callers catch."""

from __future__ import annotations

from ..aws import (
    ConfigurationError,
    CredentialsError,
    CredentialsRejectedError,
    QueueDoesNotExistError,
    ServiceError,
)
from ..exceptions import BrokerConfigError, QueueNotFoundError, SQSBrokerError

__all__ = ["CONFIG_CODES", "broker_error"]

# AWS error codes that mean "your request is invalid" (2.1.1 raised BrokerConfigError for these).
CONFIG_CODES = frozenset(
    {
        "InvalidParameterValue",
        "InvalidParameterValueException",
        "MissingParameter",
        "NoSuchBucket",
        "InvalidAttributeValue",
        "InvalidAttributeName",
        "InvalidMessageContents",
        "UnsupportedOperation",
        "QueueAlreadyExists",
        "QueueNameExists",
        "AccessDenied",
        "AccessDeniedException",
    }
)


def broker_error(exc: BaseException, queue_name: str | None = None) -> SQSBrokerError:
    """The taskiq-layer error for a client-layer failure (the caller raises it ``from exc``)."""
    if isinstance(exc, QueueDoesNotExistError):
        return QueueNotFoundError(queue_name=queue_name or "?")
    if isinstance(exc, CredentialsRejectedError):
        # Wrong, expired or mistyped keys: a configuration problem, not a permission or a transient one.
        return BrokerConfigError(error=str(exc))
    if isinstance(exc, ServiceError):
        codes = {exc.code, exc.query_error_code}
        if any(code in CONFIG_CODES or (code or "").endswith("InvalidParameterValue") for code in codes):
            return BrokerConfigError(error=f"{exc.code}: {exc.message}")
        return SQSBrokerError(error=str(exc))
    if isinstance(exc, (ConfigurationError, CredentialsError)):
        return BrokerConfigError(error=str(exc))
    return SQSBrokerError(error=str(exc))
