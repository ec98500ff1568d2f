"""Fakes for the broker's unit tests: a scripted SQS/S3 endpoint, an in-memory SQS and a virtual clock.

`FakeAWS` is the HTTP-level fake: one respx route per SQS action, one for S3; every call recorded.

SQS actions are routed by their ``X-Amz-Target`` header (the JSON protocol sends them all as ``POST /``);
S3 requests are the path-style ones under a bucket. A test changes an answer by replacing
``responders[action]`` (sync or async, given the decoded JSON payload) or ``s3_responder``. A request for
an SQS action the fake does not know, or with no responder, fails the test rather than being answered.

`MemorySQS` stands in for `SQSClient` below the HTTP layer (the receive loop, the inbox), and
`VirtualClock` replaces ``asyncio.sleep`` and ``time.monotonic`` in one module under test
(`use_clock`), so timing rules are checked exactly and at once instead of by sleeping.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

import httpx
import pytest
import respx

from taskiq_sqs_http.aws import Message
from taskiq_sqs_http.aws.sqs import BatchResult, BatchResultError, ChangeVisibilityEntry, DeleteMessageEntry

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


# -- below HTTP ------------------------------------------------------------------------------------------
_real_sleep = asyncio.sleep


class VirtualClock:
    """Time for one module under test. Its sleeps are recorded and end when the test says time has passed.

    With ``autoadvance`` every sleep ends at once and moves the clock forward by its length (a loop that
    sleeps between requests runs at full speed, and the test reads the spacing off the clock); otherwise
    sleepers wait for `advance`.
    """

    def __init__(self, *, autoadvance: bool = False) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._autoadvance = autoadvance
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, delay: float, result: Any = None) -> Any:
        self.sleeps.append(delay)
        if self._autoadvance:
            self.now += max(delay, 0.0)
            await _real_sleep(0)
            return result
        wake = asyncio.get_running_loop().create_future()
        entry = (self.now + delay, wake)
        self._sleepers.append(entry)
        try:
            await wake
        finally:
            if entry in self._sleepers:
                self._sleepers.remove(entry)
        return result

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking sleepers in deadline order and letting each run to its next wait."""
        until = self.now + seconds
        await settle()  # tasks started just now reach their first sleep
        while True:
            due = sorted((e for e in self._sleepers if e[0] <= until), key=lambda e: e[0])
            if not due:
                break
            deadline, wake = due[0]
            self._sleepers.remove(due[0])
            self.now = max(self.now, deadline)
            wake.set_result(None)
            await settle()
        self.now = until


async def settle(rounds: int = 10) -> None:
    """Let every ready task run until it waits on something (a few event-loop turns)."""
    for _ in range(rounds):
        await _real_sleep(0)


async def until(condition: Callable[[], bool], rounds: int = 10_000) -> None:
    """Let other tasks run until ``condition`` holds; fail (never hang) if it does not."""
    for _ in range(rounds):
        if condition():
            return
        await _real_sleep(0)
    raise AssertionError("condition not met")


class _ModuleWithClock:
    def __init__(self, real: ModuleType, **replacements: Any) -> None:
        self._real = real
        self.__dict__.update(replacements)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def use_clock(monkeypatch: pytest.MonkeyPatch, module: ModuleType, clock: VirtualClock) -> None:
    """Make ``module`` see ``clock`` as ``asyncio.sleep`` and ``time.monotonic``; nothing else changes."""
    monkeypatch.setattr(module, "asyncio", _ModuleWithClock(asyncio, sleep=clock.sleep), raising=False)
    monkeypatch.setattr(module, "time", _ModuleWithClock(time, monotonic=clock.monotonic), raising=False)


class MemorySQS:
    """The part of `SQSClient` the receive loop and the inbox use, in memory.

    Batch calls are recorded and succeed, except for receipt handles in ``stale``. ``receives`` holds the
    answers of the coming ReceiveMessage calls. Without a clock a receive waits for the next answer
    (``receiving`` is set meanwhile); with one, it takes a scripted answer at once or, if there is none,
    answers empty after the long-poll wait (``long_polls``) or at once (a server that does not long-poll).
    """

    def __init__(self, clock: VirtualClock | None = None, *, long_polls: bool = True) -> None:
        self.deletes: list[list[str]] = []
        self.visibility: list[list[tuple[str, int]]] = []
        self.stale: set[str] = set()
        self.receives: asyncio.Queue[list[Message]] = asyncio.Queue()
        self.receiving = asyncio.Event()
        self.receive_calls = 0
        self.receive_times: list[float] = []
        self.receive_requests: list[dict[str, Any]] = []
        # Raised by the coming receives, before any answer is given.
        self.receive_failures: list[Exception] = []
        self._clock = clock
        self._long_polls = long_polls

    def _answer(self, ids_handles: Sequence[tuple[str, str]]) -> BatchResult:
        ok = [i for i, h in ids_handles if h not in self.stale]
        failed = [
            BatchResultError(i, "ReceiptHandleIsInvalid", "stale", True)
            for i, h in ids_handles
            if h in self.stale
        ]
        return BatchResult(ok, failed)

    async def delete_message_batch(self, url: str, entries: Sequence[DeleteMessageEntry]) -> BatchResult:
        self.deletes.append([e.receipt_handle for e in entries])
        return self._answer([(e.id, e.receipt_handle) for e in entries])

    async def change_message_visibility_batch(
        self, url: str, entries: Sequence[ChangeVisibilityEntry]
    ) -> BatchResult:
        self.visibility.append([(e.receipt_handle, e.visibility_timeout) for e in entries])
        return self._answer([(e.id, e.receipt_handle) for e in entries])

    async def receive_message(self, url: str, **request: Any) -> list[Message]:
        self.receive_calls += 1
        self.receive_requests.append(request)
        if self.receive_failures:
            raise self.receive_failures.pop(0)
        if self._clock is None:
            self.receiving.set()
            try:
                return await self.receives.get()
            finally:
                self.receiving.clear()
        self.receive_times.append(self._clock.now)
        await _real_sleep(0)
        if not self.receives.empty():
            return self.receives.get_nowait()
        if self._long_polls:
            self._clock.now += request.get("wait_time_seconds") or 0
        return []

    def changed(self) -> list[tuple[str, int]]:
        return [change for batch in self.visibility for change in batch]
