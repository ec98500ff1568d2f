"""A scripted SQS/S3 endpoint for unit tests: one respx route per SQS action, one for S3; every call recorded.

SQS actions are routed by their ``X-Amz-Target`` header (the JSON protocol sends them all as ``POST /``);
S3 requests are the path-style ones under a bucket. A test changes an answer by replacing
``responders[action]`` (sync or async, given the decoded JSON payload) or ``s3_responder``. A request for
an SQS action the fake does not know, or with no responder, fails the test rather than being answered.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import respx

ENDPOINT = "http://aws.test"
ACCOUNT = "123456789012"

# Every action the SQS client speaks.
SQS_ACTIONS = (
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
    "CreateQueue",
    "DeleteMessage",
    "DeleteMessageBatch",
    "DeleteQueue",
    "GetQueueAttributes",
    "GetQueueUrl",
    "ListQueues",
    "PurgeQueue",
    "ReceiveMessage",
    "SendMessage",
    "SendMessageBatch",
    "SetQueueAttributes",
)

Responder = Callable[[dict[str, Any]], "httpx.Response | Awaitable[httpx.Response]"]
S3Responder = Callable[[httpx.Request], httpx.Response]


def queue_url(name: str, account: str = ACCOUNT) -> str:
    return f"{ENDPOINT}/{account}/{name}"


def sqs_error(code: str, legacy: str | None = None, status: int = 400) -> httpx.Response:
    headers = {"x-amzn-query-error": f"{legacy or code};Sender"}
    return httpx.Response(
        status, json={"__type": f"com.amazonaws.sqs#{code}", "message": f"{code} says no"}, headers=headers
    )


def all_succeed(payload: dict[str, Any]) -> httpx.Response:
    """A batch answer in which every entry succeeded."""
    return httpx.Response(
        200, json={"Successful": [{"Id": e["Id"]} for e in payload["Entries"]], "Failed": []}
    )


def empty(payload: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={})


class FakeAWS:
    """Records SQS calls as (action, payload) and S3 calls as httpx requests."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.s3_requests: list[httpx.Request] = []
        self.responders: dict[str, Responder] = {
            "GetQueueUrl": lambda p: httpx.Response(200, json={"QueueUrl": queue_url(p["QueueName"])}),
            "SendMessage": lambda p: httpx.Response(200, json={"MessageId": "m-1"}),
            "ReceiveMessage": empty,
            "DeleteMessage": empty,
            "DeleteMessageBatch": all_succeed,
            "ChangeMessageVisibility": empty,
            "ChangeMessageVisibilityBatch": all_succeed,
            "GetQueueAttributes": lambda p: httpx.Response(
                200, json={"Attributes": {"VisibilityTimeout": "30", "QueueArn": "arn:aws:sqs:x"}}
            ),
        }
        self.s3_responder: S3Responder = lambda r: httpx.Response(200)
        self.router = respx.Router(base_url=ENDPOINT, assert_all_called=False)
        for action in SQS_ACTIONS:
            self.router.post("/", headers={"X-Amz-Target": f"AmazonSQS.{action}"}, name=action).mock(
                side_effect=self._sqs_route(action)
            )
        self.router.route(path__regex=r"^/[^/]+", name="s3").mock(side_effect=self._s3)

    def _sqs_route(self, action: str) -> Callable[[httpx.Request], Awaitable[httpx.Response]]:
        async def answer(request: httpx.Request) -> httpx.Response:
            payload: dict[str, Any] = json.loads(request.content)
            self.calls.append((action, payload))
            responder = self.responders.get(action)
            if responder is None:
                raise AssertionError(f"FakeAWS has no responder for {action}: set aws.responders[{action!r}]")
            response = responder(payload)
            return await response if inspect.isawaitable(response) else response

        return answer

    def _s3(self, request: httpx.Request) -> httpx.Response:
        self.s3_requests.append(request)
        return self.s3_responder(request)

    def actions(self) -> list[str]:
        return [action for action, _ in self.calls]

    def payloads(self, action: str) -> list[dict[str, Any]]:
        return [payload for a, payload in self.calls if a == action]

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.router.async_handler)

    @asynccontextmanager
    async def client(self) -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(transport=self.transport()) as client:
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
