"""The taskiq app of `make demo`: one broker on three SQS queues, results in S3.

The worker runs it (``taskiq worker demo_tasks:broker``) and ``demo.py`` imports it to send tasks, so both
sides share one definition. Endpoint, region and credentials are not in the code: the client reads
AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, ... like any AWS SDK, so the same module runs on AWS.
"""

from __future__ import annotations

import hashlib
import os

from taskiq_sqs_http import S3Backend, SQSBroker, SQSQueue

# A prefix lets several demos (or test runs) share one emulator without sharing queues.
PREFIX = os.environ.get("DEMO_PREFIX", "demo")
QUEUE = f"{PREFIX}-tasks"
FIFO_QUEUE = f"{PREFIX}-ordered.fifo"  # SQS only makes a queue FIFO if its name ends in .fifo
DEAD_LETTER_QUEUE = f"{PREFIX}-tasks-dlq"
BUCKET = f"{PREFIX}-results"

REDELIVERY_DELAY = 1  # seconds

broker = (
    SQSBroker(
        QUEUE,
        # Creates missing queues (and the dead-letter queue) at startup: handy locally, while on AWS
        # queues usually come from infrastructure code and the worker lacks sqs:CreateQueue.
        create_queues=True,
        # Kicks are buffered and sent 10 per SendMessageBatch: a tenth of the requests (SQS bills per
        # request) for at most `batch_timeout` seconds of extra latency per task.
        enable_batching=True,
        batch_timeout=0.2,
        # SQS refuses messages over 1 MiB: bigger ones go to this bucket and SQS carries a pointer.
        s3_extended_bucket_name=BUCKET,
        # A failed task is not acked (deleted) as taskiq would: SQS hands it out again after
        # REDELIVERY_DELAY s, and after max_receive_count runs moves it to the dead-letter queue.
        redeliver_failed=True,
        redelivery_delay=REDELIVERY_DELAY,
    )
    .with_default_queue(
        SQSQueue(
            name=QUEUE,
            # Short long-polls so that the worker notices new work (and shutdown) within a second; on
            # AWS, 20 s costs fewer empty receives.
            wait_time_seconds=1,
            max_number_of_messages=10,  # up to 10 tasks per ReceiveMessage: fewer requests per task
            # How long a task may run before SQS assumes its worker died and hands it out again.
            visibility_timeout=10,
            # A task that failed twice is parked in the DLQ for a human instead of retrying forever.
            dead_letter_queue=DEAD_LETTER_QUEUE,
            max_receive_count=2,
        )
    )
    .with_queues(
        SQSQueue(name=FIFO_QUEUE, wait_time_seconds=1, max_number_of_messages=10, visibility_timeout=10)
    )
    # Results under a prefix, so they never mix with the offloaded payloads in the same bucket.
    .with_result_backend(S3Backend(BUCKET, base_path="results"))
)


# Someone waits on this answer: it skips the batch buffer and is sent at once.
@broker.task(skip_batching=True)
async def add(a: int, b: int) -> int:
    return a + b


@broker.task
async def square(n: int) -> int:
    return n * n


@broker.task
async def remind(note: str) -> str:
    return note


# Per-worker-process memory, only so that the demo can show in which order the worker ran each group's
# steps; real tasks keep state in a database (and the demo runs a single worker process).
_ran: dict[str, list[str]] = {}


# On the FIFO queue: SQS hands out each message group (label `group_id`) in order, groups in parallel.
@broker.task(queue=FIFO_QUEUE)
async def ordered_step(group: str, step: int) -> list[str]:
    ran = _ran.setdefault(group, [])
    ran.append(f"{group}{step}")
    return list(ran)


@broker.task
async def checksum(blob: str) -> str:
    return f"{len(blob):,} chars, sha256 {hashlib.sha256(blob.encode()).hexdigest()[:12]}"


@broker.task
async def always_fails() -> None:
    raise RuntimeError("this task always fails")
