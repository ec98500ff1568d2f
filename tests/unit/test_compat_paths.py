"""Every public name of taskiq-aio-sqs 2.1.1, imported by its 2.1.1 module path under taskiq_sqs_http.

Migrating is replacing ``taskiq_aio_sqs`` with ``taskiq_sqs_http`` everywhere, submodule imports included.
The list of names is pinned here so the test runs anywhere; with TEST_AIOSQS_PYTHON pointing at a Python
that has taskiq-aio-sqs installed (``.venv-aiosqs/bin/python``), it is also generated from 2.1.1's own
modules, and the pinned list must cover it.

A module's public names are those it defines at top level (classes, functions, assignments) or imports
from the package itself, without a leading underscore; names it imports from other libraries
(``BrokerMessage``, ``ClientError``...) are not part of its API.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
from typing import Any

import pytest

PINNED: dict[str, list[str]] = {
    "taskiq_aio_sqs": [
        "S3Backend",
        "SQSBroker",
        "SQSMessageMetadata",
        "SQSQueue",
        "SQS_APPROXIMATE_RECEIVE_COUNT_LABEL",
        "SQS_MESSAGE_ID_LABEL",
        "SQS_QUEUE_URL_LABEL",
        "SQS_RECEIPT_HANDLE_LABEL",
    ],
    "taskiq_aio_sqs.constants": ["DEFAULT_REGION", "MAX_NUMBER_OF_MESSAGES", "MAX_SQS_MESSAGE_SIZE"],
    "taskiq_aio_sqs.exceptions": [
        "BrokerConfigError",
        "BrokerFloatConfigError",
        "BrokerInputConfigError",
        "ConfigError",
        "ExtendedBucketNameMissingError",
        "IntTaskLabelConfigError",
        "QueueNotFoundError",
        "ResultIsMissingError",
        "S3ResultBackendError",
        "SQSBrokerError",
        "StrConfigError",
        "StrTaskLabelConfigError",
        "TaskIQSQSError",
    ],
    "taskiq_aio_sqs.message_metadata": [
        "MetadataUnwrappingFormatter",
        "SQSMessageMetadata",
        "SQS_APPROXIMATE_RECEIVE_COUNT_LABEL",
        "SQS_MESSAGE_ID_LABEL",
        "SQS_QUEUE_URL_LABEL",
        "SQS_RECEIPT_HANDLE_LABEL",
        "encode_envelope",
        "try_decode_envelope",
    ],
    "taskiq_aio_sqs.queue": ["MAX_NUMBER_OF_MESSAGES", "SQSQueue", "WAIT_TIME_SECONDS"],
    "taskiq_aio_sqs.s3_backend": ["S3Backend", "constants", "exceptions"],
    "taskiq_aio_sqs.sqs_broker": [
        "BatchSize",
        "BatchTimeout",
        "DelaySeconds",
        "MaxNumberOfMessages",
        "MessageGroupId",
        "MetadataUnwrappingFormatter",
        "SQSBroker",
        "SQSMessageMetadata",
        "SQSQueue",
        "constants",
        "encode_envelope",
        "exceptions",
        "logger",
    ],
}

# 2.1.1's plain values (str/int), which must be equal here.
PINNED_VALUES: dict[str, Any] = {
    "taskiq_aio_sqs.SQS_APPROXIMATE_RECEIVE_COUNT_LABEL": "sqs_approximate_receive_count",
    "taskiq_aio_sqs.SQS_MESSAGE_ID_LABEL": "sqs_message_id",
    "taskiq_aio_sqs.SQS_QUEUE_URL_LABEL": "sqs_queue_url",
    "taskiq_aio_sqs.SQS_RECEIPT_HANDLE_LABEL": "sqs_receipt_handle",
    "taskiq_aio_sqs.constants.DEFAULT_REGION": "us-east-1",
    "taskiq_aio_sqs.constants.MAX_NUMBER_OF_MESSAGES": 10,
    "taskiq_aio_sqs.constants.MAX_SQS_MESSAGE_SIZE": 1048576,
    "taskiq_aio_sqs.message_metadata.SQS_APPROXIMATE_RECEIVE_COUNT_LABEL": "sqs_approximate_receive_count",
    "taskiq_aio_sqs.message_metadata.SQS_MESSAGE_ID_LABEL": "sqs_message_id",
    "taskiq_aio_sqs.message_metadata.SQS_QUEUE_URL_LABEL": "sqs_queue_url",
    "taskiq_aio_sqs.message_metadata.SQS_RECEIPT_HANDLE_LABEL": "sqs_receipt_handle",
    "taskiq_aio_sqs.queue.MAX_NUMBER_OF_MESSAGES": 10,
    "taskiq_aio_sqs.queue.WAIT_TIME_SECONDS": 20,
}

# Run by the taskiq-aio-sqs Python: prints {"names": {module: [...]}, "values": {module.name: value}}.
_GENERATOR = r"""
import ast, importlib, importlib.util, json, pathlib
root = pathlib.Path(importlib.util.find_spec("taskiq_aio_sqs").origin).parent
names, values = {}, {}
for path in sorted(root.glob("*.py")):
    mod = "taskiq_aio_sqs" + ("" if path.stem == "__init__" else "." + path.stem)
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, ast.Assign):
            found.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            found.add(node.target.id)
        elif isinstance(node, ast.ImportFrom) and (
            node.level or (node.module or "").startswith("taskiq_aio_sqs")
        ):
            found.update(a.asname or a.name for a in node.names)
    found = sorted(n for n in found if not n.startswith("_"))
    names[mod] = found
    module = importlib.import_module(mod)
    for name in found:
        value = getattr(module, name)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            values[mod + "." + name] = value
print(json.dumps({"names": names, "values": values}))
"""


def _ours(module: str) -> str:
    return module.replace("taskiq_aio_sqs", "taskiq_sqs_http", 1)


def _pairs(names: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(module, name) for module, found in sorted(names.items()) for name in found]


@pytest.mark.parametrize(("module", "name"), _pairs(PINNED))
def test_name_imports_from_its_aiosqs_path(module: str, name: str) -> None:
    ours = importlib.import_module(_ours(module))
    assert getattr(ours, name) is not None
    namespace: dict[str, Any] = {}
    exec(f"from {_ours(module)} import {name}", namespace)  # noqa: S102 - the statement a user writes
    assert name in namespace


@pytest.mark.parametrize("dotted", sorted(PINNED_VALUES))
def test_plain_values_equal_aiosqs(dotted: str) -> None:
    module, name = dotted.rsplit(".", 1)
    assert getattr(importlib.import_module(_ours(module)), name) == PINNED_VALUES[dotted]


def test_pinned_list_covers_aiosqs_when_available() -> None:
    python = os.environ.get("TEST_AIOSQS_PYTHON")
    if not python:
        pytest.skip("TEST_AIOSQS_PYTHON is not set (e.g. .venv-aiosqs/bin/python)")
    done = subprocess.run(
        [python, "-c", _GENERATOR], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    generated = json.loads(done.stdout)
    missing = sorted(set(_pairs(generated["names"])) - set(_pairs(PINNED)))
    assert missing == [], "2.1.1 names missing from the pinned list"
    for module, name in _pairs(generated["names"]):
        assert hasattr(importlib.import_module(_ours(module)), name), f"{_ours(module)}.{name}"
    assert generated["values"] == PINNED_VALUES


def test_same_objects_as_the_package_root() -> None:
    import taskiq_sqs_http
    from taskiq_sqs_http import message_metadata, queue, s3_backend, sqs_broker

    assert sqs_broker.SQSBroker is taskiq_sqs_http.SQSBroker
    assert queue.SQSQueue is sqs_broker.SQSQueue is taskiq_sqs_http.SQSQueue
    assert s3_backend.S3Backend is taskiq_sqs_http.S3Backend
    assert message_metadata.SQSMessageMetadata is taskiq_sqs_http.SQSMessageMetadata
    assert sqs_broker.exceptions.QueueNotFoundError is taskiq_sqs_http.QueueNotFoundError


def test_constants_match_what_the_broker_uses() -> None:
    from taskiq_sqs_http import broker, constants

    assert constants.MAX_SQS_MESSAGE_SIZE == broker.MAX_SQS_MESSAGE_SIZE


def test_envelope_helpers_round_trip() -> None:
    from taskiq_sqs_http.message_metadata import SQSMessageMetadata, encode_envelope, try_decode_envelope

    metadata = SQSMessageMetadata(
        receipt_handle="rh", queue_url="u", message_id="m", approximate_receive_count=2
    )
    labels, body = try_decode_envelope(encode_envelope(metadata, b"\x00payload")) or ({}, b"")
    assert body == b"\x00payload"
    assert labels == {
        "sqs_receipt_handle": "rh",
        "sqs_queue_url": "u",
        "sqs_message_id": "m",
        "sqs_approximate_receive_count": "2",
    }
    assert try_decode_envelope(b"not json") is None


@pytest.mark.parametrize(
    ("validator", "good", "bad"),
    [
        ("DelaySeconds", ["0", 900], [-1, 901]),
        ("MaxNumberOfMessages", [1, "10"], [0, 11]),
        ("BatchSize", [1, 10], [0, 11]),
        ("BatchTimeout", [0.1, "2"], [0.05]),
        ("MessageGroupId", ["g-1", "a" * 128, "!#~"], ["", "a b", "a" * 129]),
    ],
)
def test_validators_have_aiosqs_bounds(validator: str, good: list[object], bad: list[object]) -> None:
    from pydantic import ValidationError

    from taskiq_sqs_http import sqs_broker

    adapter = getattr(sqs_broker, validator)
    for value in good:
        adapter.validate_python(value)
    for value in bad:
        with pytest.raises(ValidationError):
            adapter.validate_python(value)


def test_logger_is_the_parent_of_the_broker_loggers() -> None:
    import logging

    from taskiq_sqs_http import sqs_broker

    assert sqs_broker.logger is logging.getLogger("taskiq_sqs_http.broker")


def test_client_layer_stays_taskiq_free() -> None:
    """The compat modules live at the root; importing the client layer still never imports taskiq."""
    import sys

    code = "import sys, taskiq_sqs_http.aws, taskiq_sqs_http.constants; print('taskiq' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
