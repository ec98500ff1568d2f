"""What the broker asks SQS about its queues: their URLs (creating missing ones when asked to) and the
visibility timeouts that heartbeats are timed by.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Iterable
from contextlib import AbstractContextManager

from ..aws import AWSError, QueueDoesNotExistError, SQSClient
from ..exceptions import QueueNotFoundError
from ._aio import first_error_gather
from ._config import SQSQueue
from ._consumer import Target
from ._errors import broker_error

__all__ = ["create_queue", "heartbeat_settings", "resolve_targets", "resolve_url"]

# The broker's records keep the logger name they had before the broker was split into modules.
logger = logging.getLogger("taskiq_sqs_http.broker._broker")
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


async def heartbeat_settings(
    sqs: SQSClient,
    targets: Iterable[Target],
    interval: float | None,
    handle_exceptions: HandleExceptions,
) -> dict[str, tuple[int, float]]:
    """(visibility timeout, heartbeat interval) per queue name; fetched once, by consumers only.

    An interval that is not below a queue's timeout would let the message reappear between heartbeats,
    so it is lowered to half the timeout (with a warning); a timeout of 0 means no heartbeat.
    """

    async def one(target: Target) -> tuple[str, int]:
        if target.queue.visibility_timeout is not None:
            return target.name, target.queue.visibility_timeout
        with handle_exceptions(target.name):
            attributes = await sqs.get_queue_attributes(target.url, ["VisibilityTimeout"])
        return target.name, int(attributes.get("VisibilityTimeout", "30"))

    settings: dict[str, tuple[int, float]] = {}
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
        settings[name] = (timeout, chosen)
    return settings
