"""A scripted SQS/S3 endpoint for unit tests: respx routes on X-Amz-Target, recording every call."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import respx

ENDPOINT = "http://aws.test"
ACCOUNT = "123456789012"

Responder = Callable[[dict[str, Any]], httpx.Response]


def sqs_error(code: str, legacy: str | None = None, status: int = 400) -> httpx.Response:
    headers = {"x-amzn-query-error": f"{legacy or code};Sender"}
    return httpx.Response(
        status, json={"__type": f"com.amazonaws.sqs#{code}", "message": f"{code} says no"}, headers=headers
    )


class FakeAWS:
    """Records SQS calls as (action, payload) and S3 calls as httpx requests."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.s3_requests: list[httpx.Request] = []
        self.responders: dict[str, Responder] = {
            "GetQueueUrl": lambda p: httpx.Response(
                200, json={"QueueUrl": f"{ENDPOINT}/{ACCOUNT}/{p['QueueName']}"}
            ),
            "SendMessage": lambda p: httpx.Response(200, json={"MessageId": "m-1"}),
            "ReceiveMessage": lambda p: httpx.Response(200, json={}),
            "DeleteMessage": lambda p: httpx.Response(200, json={}),
            "DeleteMessageBatch": lambda p: httpx.Response(
                200, json={"Successful": [{"Id": e["Id"]} for e in p["Entries"]], "Failed": []}
            ),
            "ChangeMessageVisibility": lambda p: httpx.Response(200, json={}),
            "ChangeMessageVisibilityBatch": lambda p: httpx.Response(
                200, json={"Successful": [{"Id": e["Id"]} for e in p["Entries"]], "Failed": []}
            ),
            "GetQueueAttributes": lambda p: httpx.Response(
                200, json={"Attributes": {"VisibilityTimeout": "30", "QueueArn": "arn:aws:sqs:x"}}
            ),
        }
        self.s3_responder: Callable[[httpx.Request], httpx.Response] = lambda r: httpx.Response(200)
        self.router = respx.Router(base_url=ENDPOINT, assert_all_called=False)
        self.router.route().mock(side_effect=self._dispatch)

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        if "x-amz-target" in request.headers:
            return self._sqs(request)
        return self._s3(request)

    def _sqs(self, request: httpx.Request) -> httpx.Response:
        action = request.headers["x-amz-target"].split(".", 1)[1]
        payload: dict[str, Any] = json.loads(request.content)
        self.calls.append((action, payload))
        return self.responders[action](payload)

    def _s3(self, request: httpx.Request) -> httpx.Response:
        self.s3_requests.append(request)
        return self.s3_responder(request)

    def actions(self) -> list[str]:
        return [action for action, _ in self.calls]

    def payloads(self, action: str) -> list[dict[str, Any]]:
        return [payload for a, payload in self.calls if a == action]

    @asynccontextmanager
    async def client(self) -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(self.router.async_handler)) as client:
            yield client


def received(body: str, receipt_handle: str = "rh-1", **attributes: Any) -> dict[str, Any]:
    """A ReceiveMessage answer holding one message."""
    message: dict[str, Any] = {
        "MessageId": f"id-{receipt_handle}",
        "ReceiptHandle": receipt_handle,
        "Body": body,
        "Attributes": {"ApproximateReceiveCount": "1"},
    }
    if attributes:
        message["MessageAttributes"] = {
            name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
        }
    return {"Messages": [message]}
