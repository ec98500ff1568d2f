"""A taskiq app run by a real ``taskiq worker`` subprocess in the integration tests.

Configured from the environment (set by the test): TEST_AWS_ENDPOINT_URL, TASKS_QUEUE, TASKS_BUCKET.
"""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

from taskiq import Context, SimpleRetryMiddleware, TaskiqDepends

from taskiq_sqs_http import S3Backend, SQSBroker

_endpoint = os.environ.get("TEST_AWS_ENDPOINT_URL", "http://127.0.0.1:4566")

broker = (
    SQSBroker(
        os.environ.get("TASKS_QUEUE", "tasks"),
        endpoint_url=_endpoint,
        wait_time_seconds=1,
        max_number_of_messages=5,
        expose_message_metadata=True,
    )
    .with_result_backend(S3Backend(os.environ.get("TASKS_BUCKET", "tasks"), endpoint_url=_endpoint))
    .with_middlewares(SimpleRetryMiddleware(default_retry_count=3))
)

Ctx = Annotated[Context, TaskiqDepends()]


@broker.task(task_name="add")
async def add(a: int, b: int) -> int:
    return a + b


@broker.task(task_name="binary_echo")
async def binary_echo(value: str) -> str:
    return value[::-1]


@broker.task(task_name="metadata")
async def metadata(context: Ctx) -> dict[str, str]:
    return {k: str(v) for k, v in context.message.labels.items() if k.startswith("sqs_")}


@broker.task(task_name="flaky", retry_on_error=True, max_retries=3)
async def flaky(context: Ctx) -> int:
    retries = int(context.message.labels.get("_retries", 0))
    if retries < 1:
        raise RuntimeError("first attempt fails")
    return retries


@broker.task(task_name="ack_when_received", ack_type="when_received")
async def ack_when_received() -> str:
    return "when_received"


@broker.task(task_name="ack_when_executed", ack_type="when_executed")
async def ack_when_executed() -> str:
    return "when_executed"


@broker.task(task_name="ack_when_saved", ack_type="when_saved")
async def ack_when_saved() -> str:
    return "when_saved"


@broker.task(task_name="ack_manual", ack_type="manual")
async def ack_manual(context: Ctx) -> str:
    await context.ack()
    return "manual"


@broker.task(task_name="sleepy")
async def sleepy(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds
