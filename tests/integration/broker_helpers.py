"""Plain helpers shared by the broker, result-backend and interop integration tests (fixtures: conftest)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, cast

from taskiq import AckableMessage, BrokerMessage

from taskiq_sqs_http import SQSBroker
from taskiq_sqs_http.aws import Message, SQSClient

__all__ = ["Delivery", "MakeBroker", "eventually", "next_message", "receive_all", "task_message"]

# The conftest's ``make_broker`` fixture: ``await make_broker(queue_name, start=True, **broker_kwargs)``.
MakeBroker = Callable[..., Awaitable[SQSBroker]]


def task_message(task_name: str = "tests:task", body: bytes | None = None, **labels: Any) -> BrokerMessage:
    task_id = uuid.uuid4().hex
    if body is None:
        body = (
            b'{"task_id":"' + task_id.encode() + b'","task_name":"' + task_name.encode() + b'",'
            b'"labels":{},"labels_types":{},"args":[],"kwargs":{}}'
        )
    return BrokerMessage(
        task_id=task_id,
        task_name=task_name,
        message=body,
        labels={k: str(v) for k, v in labels.items()},
    )


async def receive_all(sqs: SQSClient, url: str, count: int, timeout: float = 10.0) -> list[Message]:
    """Receive ``count`` messages directly (bounded by ``timeout``)."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got.extend(await sqs.receive_message(url, max_number_of_messages=10, wait_time_seconds=1))
    return got


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 10.0, interval: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


class Delivery(Protocol):
    """What ``SQSBroker.listen()`` yields, as these tests use it.

    taskiq types ``ack`` as returning ``None`` or an awaitable; SQSBroker's is always a coroutine.
    """

    @property
    def data(self) -> bytes: ...

    @property
    def ack(self) -> Callable[[], Awaitable[None]]: ...


async def next_message(gen: AsyncIterator[bytes | AckableMessage], timeout: float = 10.0) -> Delivery:
    """The next delivery from ``listen()``, within ``timeout`` seconds."""
    delivery = await asyncio.wait_for(gen.__anext__(), timeout)
    assert isinstance(delivery, AckableMessage), "SQSBroker.listen() yields AckableMessage"
    return cast(Delivery, delivery)
