"""Sending a task: which queue its labels route it to, whether it may be batched, and its SQS message
(delay, group and deduplication ids, body, S3 offload).

Long delays: SQS delays a message by at most 15 minutes, so a longer delay is sent with the broker's
``max_delay_seconds`` plus a not-before attribute, and the receiver hides the message until it is due.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager
from typing import Any

from taskiq import BrokerMessage

from ..aws import NoSuchBucketError, SendMessageEntry
from ..exceptions import (
    BrokerConfigError,
    BrokerNotStartedError,
    ExtendedBucketNameMissingError,
    QueueNotRegisteredError,
)
from ..extended import PayloadStore
from ._config import SQSQueue
from ._envelope import encode_body, expiry_attribute, not_before_attribute
from ._labels import (
    DEDUPLICATION_ID_LABEL,
    DELAY_LABEL,
    EXPIRY_LABEL,
    GROUP_ID_LABEL,
    QUEUE_LABEL,
    SKIP_BATCHING_LABEL,
    label_bool,
    parse_deduplication_id,
    parse_delay,
    parse_expiry,
    parse_group_id,
    retry_count,
    sqs_delay_seconds,
)
from ._queues import Target

__all__ = ["batchable", "build_entry", "dedup_id", "route"]

logger = logging.getLogger("taskiq_sqs_http.broker")
_MAX_DEDUPLICATION_ID = 128


def route(
    message: BrokerMessage, targets: Mapping[str, Target], default_queue: str, *, started: bool
) -> Target:
    """The queue the task's ``queue`` label names (the default queue when it names none)."""
    name = message.labels.get(QUEUE_LABEL)
    name = default_queue if name is None or name == "" else str(name)
    target = targets.get(name)
    if target is None:
        if not started:
            raise BrokerNotStartedError(operation="kick")
        raise QueueNotRegisteredError(queue_name=name, registered=str(sorted(targets)))
    return target


def batchable(message: BrokerMessage, skip_tasks: Collection[str]) -> bool:
    """Whether the task may wait in the send batcher: not when its name or its label opts out."""
    if message.task_name in skip_tasks:
        return False
    return not label_bool(message.labels.get(SKIP_BATCHING_LABEL))


def dedup_id(task_id: str, retries: int) -> str:
    """MessageDeduplicationId: the task id, plus the retry count so that a retry is not dropped."""
    value = task_id if retries == 0 else f"{task_id}-retry-{retries}"
    if len(value) > _MAX_DEDUPLICATION_ID:
        value = hashlib.sha256(value.encode()).hexdigest()
    return value


async def build_entry(
    message: BrokerMessage,
    queue: SQSQueue,
    *,
    delay_seconds: int,
    max_delay_seconds: int,
    fair_queue: bool,
    use_task_id_for_deduplication: bool,
    payloads: PayloadStore,
    s3_extended_bucket_name: str | None,
    handle_exceptions: Callable[[str], AbstractContextManager[None]],
) -> SendMessageEntry:
    """The SQS message for a task on ``queue``; ``delay_seconds`` applies when the task names no delay.

    The settings are passed per call because they are the broker's public attributes, which callers
    may change after construction; ``handle_exceptions`` is the broker's (2.1.1's overridable helper).
    """
    labels = message.labels
    retries = retry_count(labels)
    raw_delay = labels.get(DELAY_LABEL)
    delay = float(delay_seconds) if raw_delay is None else parse_delay(raw_delay)
    attributes: dict[str, Any] = {}
    sqs_delay: int | None = None
    if delay > 0:
        if queue.is_fifo:
            if retries == 0:
                raise BrokerConfigError(
                    error=f"DelaySeconds is not supported for FIFO queues: task "
                    f"{message.task_name!r} asks for delay={raw_delay!r} on queue {queue.name!r}"
                )
            logger.warning(
                "Dropping the %.1f s delay of retry %d of task %s: FIFO queue %s cannot delay "
                "single messages, so the retry is sent at once",
                delay,
                retries,
                message.task_id,
                queue.name,
            )
        elif delay <= max_delay_seconds:
            sqs_delay = sqs_delay_seconds(delay)
        else:
            sqs_delay = max_delay_seconds
            attributes.update(not_before_attribute(time.time() + delay))
    group_id: str | None = None
    if queue.is_fifo or fair_queue:
        group_id = parse_group_id(labels.get(GROUP_ID_LABEL, message.task_name))
    deduplication_id: str | None = None
    raw_deduplication_id = labels.get(DEDUPLICATION_ID_LABEL)
    if raw_deduplication_id is not None and raw_deduplication_id != "":
        if not queue.is_fifo:
            raise BrokerConfigError(
                error=f"the {DEDUPLICATION_ID_LABEL!r} label of task {message.task_name!r} needs a FIFO "
                f"queue; queue {queue.name!r} is a standard queue"
            )
        deduplication_id = parse_deduplication_id(raw_deduplication_id)
        if retries:
            deduplication_id = dedup_id(deduplication_id, retries)
    elif queue.is_fifo and use_task_id_for_deduplication:
        deduplication_id = dedup_id(message.task_id, retries)
    expiry = parse_expiry(labels.get(EXPIRY_LABEL))
    if expiry is not None:
        attributes.update(expiry_attribute(expiry))

    # Raw bytes at or above the threshold can only grow on the wire (text as is, else base64): such a
    # payload goes to S3 without first being checked, encoded and measured as an SQS body.
    oversize = len(message.message) >= payloads.threshold
    body, body_attributes = ("", {}) if oversize else encode_body(message.message)
    entry = SendMessageEntry(
        message.task_id,
        body,
        delay_seconds=sqs_delay,
        message_attributes={**body_attributes, **attributes} or None,
        message_group_id=group_id,
        message_deduplication_id=deduplication_id,
    )
    if oversize or payloads.needs_offload(entry):
        if not s3_extended_bucket_name:
            raise ExtendedBucketNameMissingError
        with handle_exceptions(queue.name):
            try:
                entry = await payloads.offload(entry, message.message, attributes, force=oversize)
            except NoSuchBucketError as exc:
                raise BrokerConfigError(
                    error=f"s3_extended_bucket_name {s3_extended_bucket_name!r} does not exist: create "
                    "it, or pass create_extended_bucket=True to create it at startup"
                ) from exc
    return entry
