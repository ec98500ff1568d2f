"""TaskIQ broker on AWS SQS and result backend on S3, on a lean async AWS client.

A drop-in for taskiq-aio-sqs 2.1.1: ``from taskiq_sqs_http import SQSBroker, S3Backend``.

Names are imported lazily (PEP 562), so ``import taskiq_sqs_http.aws`` uses the client layer without
importing taskiq at all.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .batching import SendFailure
    from .broker import (
        SQS_APPROXIMATE_RECEIVE_COUNT_LABEL,
        SQS_MESSAGE_ID_LABEL,
        SQS_QUEUE_URL_LABEL,
        SQS_RECEIPT_HANDLE_LABEL,
        SQSBroker,
        SQSMessageMetadata,
        SQSQueue,
    )
    from .exceptions import (
        BrokerConfigError,
        BrokerFloatConfigError,
        BrokerInputConfigError,
        BrokerNotStartedError,
        ConfigError,
        ExtendedBucketNameMissingError,
        IntTaskLabelConfigError,
        QueueNotFoundError,
        QueueNotRegisteredError,
        ResultAccessDeniedError,
        ResultIsMissingError,
        S3ResultBackendError,
        SendFailedError,
        SQSBrokerError,
        StrConfigError,
        StrTaskLabelConfigError,
        TaskIQSQSError,
    )
    from .options import ClientOptions
    from .result_backend import (
        ResultBackendUnavailableError,
        ResultBucketMissingError,
        ResultCredentialsError,
        S3Backend,
    )

__all__ = [
    "SQS_APPROXIMATE_RECEIVE_COUNT_LABEL",
    "SQS_MESSAGE_ID_LABEL",
    "SQS_QUEUE_URL_LABEL",
    "SQS_RECEIPT_HANDLE_LABEL",
    "BrokerConfigError",
    "BrokerFloatConfigError",
    "BrokerInputConfigError",
    "BrokerNotStartedError",
    "ClientOptions",
    "ConfigError",
    "ExtendedBucketNameMissingError",
    "IntTaskLabelConfigError",
    "QueueNotFoundError",
    "QueueNotRegisteredError",
    "ResultAccessDeniedError",
    "ResultBackendUnavailableError",
    "ResultBucketMissingError",
    "ResultCredentialsError",
    "ResultIsMissingError",
    "S3Backend",
    "S3ResultBackendError",
    "SQSBroker",
    "SQSBrokerError",
    "SQSMessageMetadata",
    "SQSQueue",
    "SendFailedError",
    "SendFailure",
    "StrConfigError",
    "StrTaskLabelConfigError",
    "TaskIQSQSError",
]

_BROKER = "taskiq_sqs_http.broker"
_EXCEPTIONS = "taskiq_sqs_http.exceptions"
_RESULTS = "taskiq_sqs_http.result_backend"
_RESULT_ERRORS = ("ResultBackendUnavailableError", "ResultBucketMissingError", "ResultCredentialsError")
_SOURCES: dict[str, str] = {
    "SQS_APPROXIMATE_RECEIVE_COUNT_LABEL": _BROKER,
    "SQS_MESSAGE_ID_LABEL": _BROKER,
    "SQS_QUEUE_URL_LABEL": _BROKER,
    "SQS_RECEIPT_HANDLE_LABEL": _BROKER,
    "SQSBroker": _BROKER,
    "SQSMessageMetadata": _BROKER,
    "SQSQueue": _BROKER,
    "SendFailure": "taskiq_sqs_http.batching",
    "ClientOptions": "taskiq_sqs_http.options",
    **{name: _EXCEPTIONS for name in __all__ if name.endswith("Error")},
    **{name: _RESULTS for name in ("S3Backend", *_RESULT_ERRORS)},
}


def __getattr__(name: str) -> Any:
    module = _SOURCES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
