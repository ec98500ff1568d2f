"""Errors raised by the broker and the result backend.

The class names, bases and message templates are those of taskiq-aio-sqs 2.1.1, so code that catches them
keeps working after the import is changed. Every class is also a taskiq error (``BrokerError`` or
``ResultBackendError``), which is what taskiq itself catches.

Tree::

    TaskIQSQSError (TaskiqError)
    ├── SQSBrokerError (BrokerError)           "Unexpected error occured: {error}"
    │   ├── BrokerConfigError                  bad configuration, or a request AWS refused as invalid
    │   │   ├── ExtendedBucketNameMissingError a message too large for SQS and no S3 bucket to put it in
    │   │   ├── ConfigError                    a number outside its range
    │   │   │   ├── StrConfigError             a string of the wrong length / characters
    │   │   │   │   └── StrTaskLabelConfigError  (group_id label)
    │   │   │   ├── IntTaskLabelConfigError    (delay label)
    │   │   │   └── BrokerInputConfigError     (constructor and SQSQueue arguments; also a ValueError)
    │   │   ├── BrokerFloatConfigError         a float below its minimum
    │   │   └── QueueNotRegisteredError        the ``queue`` label names no registered queue (ValueError)
    │   ├── BrokerNotStartedError              kick()/listen() before startup()
    │   ├── SendFailedError                    messages that could not be sent (flush/shutdown), or a kiq()
    │   │                                      that found the send buffer full for send_buffer_timeout
    │   └── QueueNotFoundError                 SQS says the queue does not exist
    └── S3ResultBackendError (ResultBackendError)
        ├── ResultIsMissingError (ResultGetError)
        ├── ResultAccessDeniedError            S3 answered 403: says which permission is missing
        ├── ResultBucketMissingError           the result bucket does not exist (NoSuchBucket)
        ├── ResultCredentialsError             S3 rejected the credentials, or none were found
        └── ResultBackendUnavailableError      still transient (5xx, throttling, timeout) after retries

The last three live in `taskiq_sqs_http.result_backend` and are importable from the package root.

2.1.1 raised a plain ``ValueError`` for `SQSQueue` validation and for unknown queues; the classes used for
those cases here are also ``ValueError`` subclasses, so ``except ValueError`` keeps catching them.
"""

from __future__ import annotations

from typing import Any

from taskiq.exceptions import BrokerError, ResultBackendError, ResultGetError, TaskiqError

__all__ = [
    "BrokerConfigError",
    "BrokerFloatConfigError",
    "BrokerInputConfigError",
    "BrokerNotStartedError",
    "ConfigError",
    "ExtendedBucketNameMissingError",
    "IntTaskLabelConfigError",
    "QueueNotFoundError",
    "QueueNotRegisteredError",
    "ResultAccessDeniedError",
    "ResultIsMissingError",
    "S3ResultBackendError",
    "SQSBrokerError",
    "SendFailedError",
    "StrConfigError",
    "StrTaskLabelConfigError",
    "TaskIQSQSError",
]


class TaskIQSQSError(TaskiqError):
    """Base of every error this package raises above the AWS client layer."""


class SQSBrokerError(TaskIQSQSError, BrokerError):
    """An SQS or broker failure the caller must see (the spelling of the template is 2.1.1's)."""

    __template__ = "Unexpected error occured: {error}"
    error: str | None = None


class BrokerConfigError(SQSBrokerError):
    """The configuration is invalid, or AWS refused a request as invalid."""

    __template__ = "SQS Broker configuration error: {error}"
    error: str | None = None


class ExtendedBucketNameMissingError(BrokerConfigError):
    """A message is too large for SQS and no ``s3_extended_bucket_name`` is configured."""

    __template__ = "Message size is too large for SQS but no S3 bucket is configured!"


class ConfigError(BrokerConfigError):
    """A numeric setting outside its allowed range."""

    __template__ = "'{attribute}' must be between {min_number} and {max_number}, got {value}"
    attribute: str
    min_number: int | float = 1
    max_number: int | float = 10
    value: Any


class StrConfigError(ConfigError):
    """A string setting of the wrong length or with characters SQS does not allow."""

    __template__ = "'{attribute}' must be {min_number}-{max_number} characters long, got {value}"
    attribute: str
    min_number: int | float = 1
    max_number: int | float = 10
    value: Any


class IntTaskLabelConfigError(ConfigError):
    """A task label (``delay``) that is not a number in the allowed range."""


class StrTaskLabelConfigError(StrConfigError):
    """A task label (``group_id``) that is not a valid MessageGroupId."""


class BrokerInputConfigError(ConfigError, ValueError):
    """A constructor or `SQSQueue` argument outside its allowed range."""


class BrokerFloatConfigError(BrokerConfigError):
    """A float setting below its minimum."""

    __template__ = "'{attribute}' must be at least {min_value}, got {value}"
    attribute: str
    min_value: float
    value: Any


class QueueNotRegisteredError(BrokerConfigError, ValueError):
    """The ``queue`` label names a queue that was never registered with ``with_queues``."""

    __template__ = (
        "Queue {queue_name!r} is not registered; registered queues are {registered}. "
        "Register it with with_queues() before startup()."
    )
    queue_name: str
    registered: str


class BrokerNotStartedError(SQSBrokerError):
    """``kick()`` or ``listen()`` was called before ``startup()`` (or after ``shutdown()``)."""

    __template__ = "The broker is not started: call 'await broker.startup()' before {operation}()"
    operation: str


class SendFailedError(SQSBrokerError):
    """Buffered (batched) messages could not be sent; ``failures`` lists each with task id and reason.

    Raised by ``flush()`` and ``shutdown()``; every failure has also gone to ``on_send_error``.
    """

    __template__ = "Unexpected error occured: {error}"
    error: str | None = None
    failures: Any = None


class QueueNotFoundError(SQSBrokerError):
    """SQS says the queue does not exist (or is not visible to these credentials)."""

    __template__ = "Queue '{queue_name}' not found"
    queue_name: str


class S3ResultBackendError(TaskIQSQSError, ResultBackendError):
    """An S3 failure in the result backend."""

    __template__ = "Unexpected error occured: {code}"
    code: str | None = None


class ResultIsMissingError(S3ResultBackendError, ResultGetError):
    """No result is stored for this task id (yet, or any more)."""

    __template__ = "Result for task {task_id} is missing in the result backend"
    task_id: str


class ResultAccessDeniedError(S3ResultBackendError):
    """S3 answered 403. Without ``s3:ListBucket`` S3 reports a missing key as 403, not 404."""

    __template__ = (
        "S3 denied {operation} on s3://{bucket}/{key} (403). If the result may not exist yet, grant "
        "s3:ListBucket on arn:aws:s3:::{bucket}: without it S3 answers 403 instead of 404 for a missing "
        "key. Otherwise grant {permission} on arn:aws:s3:::{bucket}/*."
    )
    code: str | None = "AccessDenied"
    operation: str
    bucket: str
    key: str
    permission: str
