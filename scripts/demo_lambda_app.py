"""The app `make demo-lambda` deploys to (MiniStack's) Lambda: the same task code a worker would run.

Lambda's handler setting is ``demo_lambda_app.handler``. Queue and bucket names come from the function's
environment, so the demo can pick unique ones; the endpoint comes from AWS_ENDPOINT_URL (MiniStack sets it
for the functions it runs; on AWS there is none and the regional endpoints are used).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time

from taskiq_sqs_http import S3Backend, SQSBroker, SQSQueue
from taskiq_sqs_http.serverless import lambda_handler

if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):  # in the function (the demo imports this module too)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

QUEUE = os.environ.get("DEMO_QUEUE", "demo-lambda-tasks")
FIFO_QUEUE = os.environ.get("DEMO_FIFO_QUEUE", "demo-lambda-tasks.fifo")
BUCKET = os.environ.get("DEMO_BUCKET", "demo-lambda-results")
REDELIVERY_DELAY = 1

broker = (
    SQSBroker(
        QUEUE,
        s3_extended_bucket_name=BUCKET,
        redeliver_failed=True,
        redelivery_delay=REDELIVERY_DELAY,
    )
    .with_queues(SQSQueue(name=FIFO_QUEUE))
    .with_result_backend(S3Backend(BUCKET))
)


@broker.task(task_name="demo_lambda:add")
async def add(a: int, b: int) -> int:
    return a + b


@broker.task(task_name="demo_lambda:checksum")
async def checksum(blob: str) -> str:
    """Its argument is over SQS's 1 MiB limit: the message carries a pointer to S3."""
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


@broker.task(task_name="demo_lambda:step")
async def step(group: str, n: int) -> int:
    """FIFO: returns when it ran, so the demo can check each group ran in order."""
    return time.time_ns()


@broker.task(task_name="demo_lambda:always_fails")
async def always_fails() -> None:
    raise RuntimeError("this task always fails; SQS redrives it to the dead-letter queue")


handler = lambda_handler(broker, max_concurrency=10, time_margin=2.0)
