"""Lambda SQS events in the exact shape Lambda sends, a Lambda context, a broker on a scripted endpoint."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from typing import Any

import httpx
from taskiq.brokers.inmemory_broker import InmemoryResultBackend

from taskiq_sqs_http import SQSBroker
from taskiq_sqs_http.aws import RetryPolicy

from ..broker.fakes import ACCOUNT, ENDPOINT, FakeAWS

REGION = "us-east-1"
_ids = itertools.count(1)


def queue_arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


def queue_url(name: str) -> str:
    return f"{ENDPOINT}/{ACCOUNT}/{name}"


def task_body(task_name: str, *args: Any, task_id: str | None = None, **kwargs: Any) -> str:
    """A taskiq message as the default JSON formatter writes it."""
    return json.dumps(
        {
            "task_id": task_id or f"task-{next(_ids)}",
            "task_name": task_name,
            "labels": {},
            "labels_types": {},
            "args": list(args),
            "kwargs": kwargs,
        }
    )


def string_attribute(value: str, data_type: str = "String") -> dict[str, Any]:
    """A message attribute as Lambda writes it (camelCase keys, empty list fields)."""
    return {
        "stringValue": value,
        "binaryValue": None,
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": data_type,
    }


def binary_attribute(value: bytes) -> dict[str, Any]:
    return {
        "stringValue": None,
        "binaryValue": base64.b64encode(value).decode(),
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "Binary",
    }


def record(
    body: str,
    *,
    queue: str = "q",
    message_id: str | None = None,
    receive_count: int = 1,
    group_id: str | None = None,
    message_attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One SQS record of a Lambda event, every field Lambda sends included."""
    number = next(_ids)
    message_id = message_id or f"0000{number:04d}-1111-2222-3333-444455556666"
    attributes = {
        "ApproximateReceiveCount": str(receive_count),
        "SentTimestamp": "1764460800000",
        "SenderId": "AIDAEXAMPLE",
        "ApproximateFirstReceiveTimestamp": "1764460800100",
    }
    if group_id is not None:
        attributes["MessageGroupId"] = group_id
        attributes["MessageDeduplicationId"] = f"dedup-{number}"
        attributes["SequenceNumber"] = f"{18800000000000000000 + number}"
    return {
        "messageId": message_id,
        "receiptHandle": f"rh-{message_id}",
        "body": body,
        "attributes": attributes,
        "messageAttributes": message_attributes or {},
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn(queue),
        "awsRegion": REGION,
    }


def event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


class Context:
    """Lambda's context object: the remaining time counts down from ``millis`` on the wall clock."""

    def __init__(self, millis: int = 60_000) -> None:
        import time

        self._end = time.monotonic() + millis / 1000
        self.aws_request_id = "req-1"
        self.function_name = "fn"

    def get_remaining_time_in_millis(self) -> int:
        import time

        return max(0, int((self._end - time.monotonic()) * 1000))


def make_broker(aws: FakeAWS, name: str = "q", **kwargs: Any) -> SQSBroker:
    """A broker on the scripted endpoint with an in-memory result backend."""
    client = httpx.AsyncClient(transport=httpx.MockTransport(aws.router.async_handler))
    broker = SQSBroker(
        name,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        http_client=client,
        retry_policy=RetryPolicy.testing(),
        **kwargs,
    )
    return broker.with_result_backend(InmemoryResultBackend[Any]())


def deleted_handles(aws: FakeAWS) -> list[str]:
    handles = [p["ReceiptHandle"] for p in aws.payloads("DeleteMessage")]
    for payload in aws.payloads("DeleteMessageBatch"):
        handles.extend(e["ReceiptHandle"] for e in payload["Entries"])
    return handles


def visibility_changes(aws: FakeAWS) -> dict[str, int]:
    """Receipt handle -> the last visibility timeout set for it."""
    changes: dict[str, int] = {}
    for payload in aws.payloads("ChangeMessageVisibility"):
        changes[payload["ReceiptHandle"]] = payload["VisibilityTimeout"]
    for payload in aws.payloads("ChangeMessageVisibilityBatch"):
        for entry in payload["Entries"]:
            changes[entry["ReceiptHandle"]] = entry["VisibilityTimeout"]
    return changes
