"""SQSClient: one coroutine per SQS action, on the JSON 1.0 protocol.

Every action is ``POST /`` with ``X-Amz-Target: AmazonSQS.<Action>``; the queue is named by URL in the body.
Retries, signing and error mapping happen in `ServiceClient._request`, so each method here is only the
shape of its request and response.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import orjson

from .._errors import ConfigurationError, parse_sqs_error
from .._service import ServiceClient
from ._models import (
    BatchResult,
    ChangeVisibilityEntry,
    DeleteMessageEntry,
    Message,
    MessageAttributeValue,
    SendMessageBatchResult,
    SendMessageEntry,
    SendMessageResult,
)
from ._wire import (
    JSON,
    decode_batch,
    decode_messages,
    decode_send_batch,
    decode_send_result,
    encode_delete_entries,
    encode_send_entry,
    encode_visibility_entries,
    malformed,
)

__all__ = [
    "LONG_POLL_READ_MARGIN",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_ENTRIES",
    "MAX_DELAY_SECONDS",
    "MAX_MESSAGE_BYTES",
    "MAX_VISIBILITY_TIMEOUT",
    "MAX_WAIT_TIME_SECONDS",
    "SQSClient",
]

# SQS's limits, as the service enforces them.
MAX_BATCH_ENTRIES = 10
# One message: body plus message attributes (names, types and values).
MAX_MESSAGE_BYTES = 1_048_576
# One SendMessageBatch request: the sum of its messages' sizes, whatever their number.
MAX_BATCH_BYTES = 1_048_576
MAX_DELAY_SECONDS = 900
MAX_WAIT_TIME_SECONDS = 20
MAX_VISIBILITY_TIMEOUT = 43_200
# Seconds added to WaitTimeSeconds for the read timeout and the deadline of a long poll, so the server
# always answers first.
LONG_POLL_READ_MARGIN = 10.0

_CONTENT_TYPE = ("content-type", "application/x-amz-json-1.0")
_QUERY_MODE = ("x-amzn-query-mode", "true")


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:  # pyright: ignore[reportUnnecessaryIsInstance]
        raise ConfigurationError(f"{name} is {value!r}; allowed range is {low}..{high}")


def _check_batch(name: str, entries: Sequence[Any]) -> None:
    if not 1 <= len(entries) <= MAX_BATCH_ENTRIES:
        raise ConfigurationError(
            f"{name} has {len(entries)} entries; allowed range is 1..{MAX_BATCH_ENTRIES}"
        )


class SQSClient(ServiceClient):
    """Async SQS client. Use as ``async with SQSClient(...) as sqs:`` or call ``aclose()``."""

    service = "sqs"

    async def _call(
        self,
        action: str,
        payload: JSON,
        *,
        read_timeout: float | None = None,
        long_poll: bool = False,
        extra_deadline: float = 0.0,
    ) -> JSON:
        headers = [
            ("host", self._endpoint_netloc),
            _CONTENT_TYPE,
            ("x-amz-target", f"AmazonSQS.{action}"),
            _QUERY_MODE,
        ]
        response = await self._request(
            "POST",
            f"{self.endpoint_url}/",
            headers,
            orjson.dumps(payload),
            operation=action,
            parse_error=parse_sqs_error,
            read_timeout=read_timeout,
            long_poll=long_poll,
            extra_deadline=extra_deadline,
        )
        if not response.body:
            return {}
        try:
            data: Any = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            raise malformed(
                action,
                response.status,
                f"response is not JSON (first bytes: {response.body[:80]!r})",
            ) from None
        if not isinstance(data, dict):
            raise malformed(action, response.status, "response is not a JSON object")
        return cast(JSON, data)

    # -- queues -----------------------------------------------------------------------------------
    async def get_queue_url(self, queue_name: str, *, owner_account_id: str | None = None) -> str:
        payload: JSON = {"QueueName": queue_name}
        if owner_account_id:
            payload["QueueOwnerAWSAccountId"] = owner_account_id
        data = await self._call("GetQueueUrl", payload)
        return self._queue_url(data, "GetQueueUrl")

    async def create_queue(
        self,
        queue_name: str,
        *,
        attributes: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        payload: JSON = {"QueueName": queue_name}
        if attributes:
            payload["Attributes"] = dict(attributes)
        if tags:
            payload["tags"] = dict(tags)
        data = await self._call("CreateQueue", payload)
        return self._queue_url(data, "CreateQueue")

    @staticmethod
    def _queue_url(data: JSON, action: str) -> str:
        url = data.get("QueueUrl")
        if not isinstance(url, str):
            raise malformed(action, 200, "QueueUrl missing from response")
        return url

    async def delete_queue(self, queue_url: str) -> None:
        await self._call("DeleteQueue", {"QueueUrl": queue_url})

    async def purge_queue(self, queue_url: str) -> None:
        await self._call("PurgeQueue", {"QueueUrl": queue_url})

    async def get_queue_attributes(
        self, queue_url: str, attribute_names: Sequence[str] = ("All",)
    ) -> dict[str, str]:
        data = await self._call(
            "GetQueueAttributes", {"QueueUrl": queue_url, "AttributeNames": list(attribute_names)}
        )
        attributes: Any = data.get("Attributes") or {}
        if not isinstance(attributes, dict):
            raise malformed("GetQueueAttributes", 200, "Attributes is not an object")
        return {str(k): str(v) for k, v in cast(JSON, attributes).items()}

    async def set_queue_attributes(self, queue_url: str, attributes: Mapping[str, str]) -> None:
        await self._call("SetQueueAttributes", {"QueueUrl": queue_url, "Attributes": dict(attributes)})

    # -- messages ---------------------------------------------------------------------------------
    async def send_message(
        self,
        queue_url: str,
        body: str,
        *,
        delay_seconds: int | None = None,
        message_attributes: Mapping[str, MessageAttributeValue] | None = None,
        message_group_id: str | None = None,
        message_deduplication_id: str | None = None,
    ) -> SendMessageResult:
        if delay_seconds is not None:
            _check_range("delay_seconds", delay_seconds, 0, MAX_DELAY_SECONDS)
        entry = SendMessageEntry(
            "0",
            body,
            delay_seconds=delay_seconds,
            message_attributes=dict(message_attributes) if message_attributes else None,
            message_group_id=message_group_id,
            message_deduplication_id=message_deduplication_id,
        )
        payload = encode_send_entry(entry, with_id=False)
        payload["QueueUrl"] = queue_url
        data = await self._call("SendMessage", payload)
        return decode_send_result(data, "SendMessage", 200)

    async def send_message_batch(
        self, queue_url: str, entries: Sequence[SendMessageEntry]
    ) -> SendMessageBatchResult:
        """Send up to 10 messages. Check ``failed`` in the result: SQS reports per-entry failures there."""
        _check_batch("entries", entries)
        for entry in entries:
            if entry.delay_seconds is not None:
                _check_range("delay_seconds", entry.delay_seconds, 0, MAX_DELAY_SECONDS)
        payload: JSON = {
            "QueueUrl": queue_url,
            "Entries": [encode_send_entry(e, with_id=True) for e in entries],
        }
        data = await self._call("SendMessageBatch", payload)
        return decode_send_batch(data, "SendMessageBatch", 200)

    async def receive_message(
        self,
        queue_url: str,
        *,
        max_number_of_messages: int = 1,
        wait_time_seconds: int | None = None,
        visibility_timeout: int | None = None,
        attribute_names: Sequence[str] = ("All",),
        message_attribute_names: Sequence[str] = ("All",),
        receive_request_attempt_id: str | None = None,
    ) -> list[Message]:
        _check_range("max_number_of_messages", max_number_of_messages, 1, MAX_BATCH_ENTRIES)
        payload: JSON = {
            "QueueUrl": queue_url,
            "MaxNumberOfMessages": max_number_of_messages,
            "MessageSystemAttributeNames": list(attribute_names),
            "MessageAttributeNames": list(message_attribute_names),
        }
        read_timeout: float | None = None
        extra_deadline = 0.0
        if wait_time_seconds is not None:
            _check_range("wait_time_seconds", wait_time_seconds, 0, MAX_WAIT_TIME_SECONDS)
            payload["WaitTimeSeconds"] = wait_time_seconds
            extra_deadline = wait_time_seconds + LONG_POLL_READ_MARGIN
            read_timeout = max(self._session.timeouts.read, extra_deadline)
        if visibility_timeout is not None:
            _check_range("visibility_timeout", visibility_timeout, 0, MAX_VISIBILITY_TIMEOUT)
            payload["VisibilityTimeout"] = visibility_timeout
        if receive_request_attempt_id is not None:
            payload["ReceiveRequestAttemptId"] = receive_request_attempt_id
        data = await self._call(
            "ReceiveMessage",
            payload,
            read_timeout=read_timeout,
            long_poll=True,
            extra_deadline=extra_deadline,
        )
        return decode_messages(data, "ReceiveMessage", 200)

    async def delete_message(self, queue_url: str, receipt_handle: str) -> None:
        await self._call("DeleteMessage", {"QueueUrl": queue_url, "ReceiptHandle": receipt_handle})

    async def delete_message_batch(
        self, queue_url: str, entries: Sequence[DeleteMessageEntry]
    ) -> BatchResult:
        _check_batch("entries", entries)
        data = await self._call(
            "DeleteMessageBatch", {"QueueUrl": queue_url, "Entries": encode_delete_entries(entries)}
        )
        return decode_batch(data, "DeleteMessageBatch", 200)

    async def change_message_visibility(
        self, queue_url: str, receipt_handle: str, visibility_timeout: int
    ) -> None:
        _check_range("visibility_timeout", visibility_timeout, 0, MAX_VISIBILITY_TIMEOUT)
        await self._call(
            "ChangeMessageVisibility",
            {
                "QueueUrl": queue_url,
                "ReceiptHandle": receipt_handle,
                "VisibilityTimeout": visibility_timeout,
            },
        )

    async def change_message_visibility_batch(
        self, queue_url: str, entries: Sequence[ChangeVisibilityEntry]
    ) -> BatchResult:
        _check_batch("entries", entries)
        for entry in entries:
            _check_range("visibility_timeout", entry.visibility_timeout, 0, MAX_VISIBILITY_TIMEOUT)
        data = await self._call(
            "ChangeMessageVisibilityBatch",
            {"QueueUrl": queue_url, "Entries": encode_visibility_entries(entries)},
        )
        return decode_batch(data, "ChangeMessageVisibilityBatch", 200)
