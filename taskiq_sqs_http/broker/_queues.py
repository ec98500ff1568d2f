"""What the broker asks SQS about its queues: their URLs (creating missing ones when asked to) and the
visibility timeouts that heartbeats are timed by.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Collection, Coroutine, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from ..aws import AWSError, QueueDoesNotExistError, SQSClient
from ..exceptions import QueueNotFoundError
from ._config import SQSQueue
from ._errors import broker_error

__all__ = ["HeartbeatTiming", "Target", "create_queue", "heartbeat_timing", "resolve_targets", "resolve_url"]

logger = logging.getLogger("taskiq_sqs_http.broker")


@dataclass(frozen=True, slots=True)
class Target:
    """A registered queue together with its resolved URL."""

    queue: SQSQueue
    url: str

    @property
    def name(self) -> str:
        return self.queue.name


_T = TypeVar("_T")


async def first_error_gather(coros: Iterable[Coroutine[Any, Any, _T]]) -> list[_T]:
    """Run concurrently; on the first failure cancel the rest and raise it (startup fails fast)."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    if not tasks:
        return []
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return [task.result() for task in tasks]


class HeartbeatTiming(NamedTuple):
    """How a queue's heartbeats are timed: its visibility timeout, and the interval between extensions."""

    visibility_timeout: int
    interval: float


# The broker's ``handle_exceptions``: client errors become broker errors naming the queue.
HandleExceptions = Callable[[str], AbstractContextManager[None]]


async def resolve_targets(
    sqs: SQSClient, queues: Collection[SQSQueue], *, create: bool, handle_exceptions: HandleExceptions
) -> dict[str, Target]:
    """Every queue with its URL, resolved concurrently; the first failure cancels the rest."""
    urls = await first_error_gather(
        resolve_url(sqs, q, create=create, handle_exceptions=handle_exceptions) for q in queues
    )
    targets = {q.name: Target(q, url) for q, url in zip(queues, urls, strict=True)}
    for name, target in targets.items():
        logger.info("Resolved queue '%s' URL: %s", name, target.url)
    return targets


async def resolve_url(
    sqs: SQSClient, queue: SQSQueue, *, create: bool, handle_exceptions: HandleExceptions
) -> str:
    """The queue's URL: configured, looked up, or (``create``) the URL of the queue just created."""
    if queue.url is not None:
        return queue.url
    try:
        return await sqs.get_queue_url(queue.name, owner_account_id=queue.owner_account_id)
    except QueueDoesNotExistError as exc:
        if create and queue.creatable():
            return await create_queue(sqs, queue, handle_exceptions)
        raise QueueNotFoundError(queue_name=queue.name) from exc
    except AWSError as exc:
        raise broker_error(exc, queue.name) from exc


async def create_queue(sqs: SQSClient, queue: SQSQueue, handle_exceptions: HandleExceptions) -> str:
    """Create the queue with its options, and first its dead-letter queue when it names one."""
    attributes = {str(k): str(v) for k, v in queue.options.items()}
    fifo = {"FifoQueue": "true"} if queue.is_fifo else {}
    attributes.update(fifo)
    if queue.is_fifo:
        attributes.setdefault("ContentBasedDeduplication", "true")
    if queue.high_throughput:
        # FIFO high-throughput mode: deduplication and the throughput quota per message group.
        attributes.setdefault("DeduplicationScope", "messageGroup")
        attributes.setdefault("FifoThroughputLimit", "perMessageGroupId")
    if queue.visibility_timeout is not None:
        attributes.setdefault("VisibilityTimeout", str(queue.visibility_timeout))
    with handle_exceptions(queue.name):
        if queue.dead_letter_queue is not None:
            dlq_url = await sqs.create_queue(queue.dead_letter_queue, attributes=fifo)
            arn = (await sqs.get_queue_attributes(dlq_url, ["QueueArn"]))["QueueArn"]
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": arn, "maxReceiveCount": str(queue.max_receive_count)}
            )
            logger.info("Created dead-letter queue '%s': %s", queue.dead_letter_queue, dlq_url)
        url = await sqs.create_queue(queue.name, attributes=attributes)
    logger.info("Created queue '%s': %s", queue.name, url)
    return url


async def heartbeat_timing(
    sqs: SQSClient,
    targets: Iterable[Target],
    interval: float | None,
    handle_exceptions: HandleExceptions,
) -> dict[str, HeartbeatTiming]:
    """Heartbeat timing per queue name; fetched once, by consumers only.

    An interval that is not below a queue's timeout would let the message reappear between heartbeats,
    so it is lowered to half the timeout (with a warning); a timeout of 0 means no heartbeat.
    """

    async def one(target: Target) -> tuple[str, int]:
        if target.queue.visibility_timeout is not None:
            return target.name, target.queue.visibility_timeout
        with handle_exceptions(target.name):
            attributes = await sqs.get_queue_attributes(target.url, ["VisibilityTimeout"])
        return target.name, int(attributes.get("VisibilityTimeout", "30"))

    settings: dict[str, HeartbeatTiming] = {}
    for name, timeout in await first_error_gather(one(t) for t in targets):
        chosen = interval or max(1.0, timeout / 2)
        if timeout == 0:
            logger.warning("Queue %s has a visibility timeout of 0: no heartbeat for it", name)
        elif chosen >= timeout:
            logger.warning(
                "heartbeat_interval %.1f s is not below the %d s visibility timeout of queue %s; "
                "using %.1f s",
                chosen,
                timeout,
                name,
                timeout / 2,
            )
            chosen = timeout / 2
        settings[name] = HeartbeatTiming(timeout, chosen)
    return settings
