"""The public surface: every name in __all__ exists, __all__ is sorted, and aws stays taskiq-free."""

from __future__ import annotations

import subprocess
import sys

import taskiq_sqs_http
import taskiq_sqs_http.exceptions

AIOSQS_NAMES = {
    "SQS_APPROXIMATE_RECEIVE_COUNT_LABEL",
    "SQS_MESSAGE_ID_LABEL",
    "SQS_QUEUE_URL_LABEL",
    "SQS_RECEIPT_HANDLE_LABEL",
    "S3Backend",
    "SQSBroker",
    "SQSMessageMetadata",
    "SQSQueue",
}
AIOSQS_EXCEPTIONS = {
    "TaskIQSQSError",
    "SQSBrokerError",
    "BrokerConfigError",
    "ExtendedBucketNameMissingError",
    "ConfigError",
    "StrConfigError",
    "IntTaskLabelConfigError",
    "StrTaskLabelConfigError",
    "BrokerInputConfigError",
    "BrokerFloatConfigError",
    "QueueNotFoundError",
    "S3ResultBackendError",
    "ResultIsMissingError",
}


def test_all_is_sorted_and_complete() -> None:
    exported = taskiq_sqs_http.__all__
    assert exported == sorted(exported, key=lambda n: (not n.isupper(), n))
    for name in exported:
        assert getattr(taskiq_sqs_http, name) is not None
    assert set(dir(taskiq_sqs_http)) >= set(exported)


def test_aiosqs_names_are_all_exported() -> None:
    assert set(taskiq_sqs_http.__all__) >= AIOSQS_NAMES
    assert set(taskiq_sqs_http.exceptions.__all__) >= AIOSQS_EXCEPTIONS
    assert taskiq_sqs_http.SQS_RECEIPT_HANDLE_LABEL == "sqs_receipt_handle"
    assert taskiq_sqs_http.SQS_APPROXIMATE_RECEIVE_COUNT_LABEL == "sqs_approximate_receive_count"


def test_exception_templates_match_aiosqs() -> None:
    from taskiq_sqs_http import exceptions as e

    assert str(e.SQSBrokerError(error="x")) == "Unexpected error occured: x"
    assert str(e.QueueNotFoundError(queue_name="q")) == "Queue 'q' not found"
    assert str(e.ResultIsMissingError(task_id="t")) == "Result for task t is missing in the result backend"
    assert str(e.ExtendedBucketNameMissingError()) == (
        "Message size is too large for SQS but no S3 bucket is configured!"
    )
    assert issubclass(e.ResultIsMissingError, e.S3ResultBackendError)


def test_unknown_attribute_raises() -> None:
    try:
        taskiq_sqs_http.NotAThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NotAThing" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_importing_aws_does_not_import_taskiq() -> None:
    code = "import sys, taskiq_sqs_http.aws; print('taskiq' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
