"""Run taskiq tasks from an SQS-triggered AWS Lambda function.

Lambda's event source mapping does the polling, the long-running worker's job: it receives a batch,
invokes the function, and deletes what the function did not report as failed. What is left for us is what
the worker does with a message it received, and that is the broker's `Inbox`, the same code the worker
uses: decoding (both payload formats, trusted buckets, metadata labels, long delays), settling (delete,
redeliver a failed task, clean up the S3 payload). Tasks run through taskiq's own `Receiver.callback`, so
middlewares, dependencies, retries and the result backend behave as under ``taskiq worker``.

Why this shape:

* One event loop per execution environment, kept between invocations. The runtime calls the handler
  synchronously, one invocation at a time; a fresh loop per call would strand the pooled connections and
  the background tasks of the previous one. Warm invocations therefore also reuse the HTTP pool, the
  credentials and the started broker (started on the first invocation; no queue is ever polled).
* Successful records are deleted by the inbox as in the worker (with their S3 payloads), not left for
  Lambda to delete. So the batch response only has to name the failures, and ``on_failure="raise"``
  (failing the invocation) is just as safe for mappings without ``ReportBatchItemFailures``.
* FIFO: records of a group run one after the other; after the first failure the group's later records are
  reported without running, so the group's order holds when SQS delivers them again.
* A task is never started with less than ``time_margin`` seconds of the invocation left; records not
  started are failures and come back after the queue's visibility timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Mapping
from typing import Any, Literal, Protocol, cast

from taskiq.acks import AcknowledgeType
from taskiq.receiver import Receiver

from ..broker import SQSBroker
from ..broker._lifecycle import Delivery, Inbox, Outcome
from ..broker._queues import Target
from ..exceptions import SQSBrokerError
from ._records import Record, parse_event

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_TIME_MARGIN",
    "BatchItemFailuresError",
    "LambdaContext",
    "LambdaHandler",
    "lambda_handler",
]

logger = logging.getLogger("taskiq_sqs_http.serverless")

DEFAULT_MAX_CONCURRENCY = 10
"""Tasks of one invocation that run at once (standard queues; FIFO groups run in order)."""
DEFAULT_TIME_MARGIN = 2.0
"""Seconds of the invocation that must remain for another task to start."""
# Bound on handing records back when an invocation ends with deliveries taskiq never acked.
_HAND_BACK_TIMEOUT = 5.0
_MAX_CONCURRENCY_LIMIT = 10_000
_MAX_TIME_MARGIN = 900.0  # Lambda's longest timeout

BatchResponse = dict[str, list[dict[str, str]]]


class LambdaContext(Protocol):
    """The part of Lambda's context object the handler reads."""

    def get_remaining_time_in_millis(self) -> int: ...


class BatchItemFailuresError(SQSBrokerError):
    """``on_failure="raise"``: some records failed, so the invocation fails and Lambda retries the batch.

    Records that succeeded were already deleted from SQS, so only the failed ones come back.
    """

    __template__ = "{count} of {total} records failed: {ids}"
    count: int
    total: int
    ids: str


class LambdaHandler:
    """The function Lambda calls: ``handler(event, context) -> {"batchItemFailures": [...]}``.

    Build it with `lambda_handler`. ``close()`` shuts the broker down and closes the loop (tests, scripts);
    on Lambda the execution environment simply ends.
    """

    def __init__(
        self,
        broker: SQSBroker,
        *,
        max_concurrency: int,
        time_margin: float,
        ack_type: AcknowledgeType | None,
        on_failure: Literal["report", "raise"],
    ) -> None:
        self.broker = broker
        self.max_concurrency = max_concurrency
        self.time_margin = time_margin
        self.ack_type = ack_type
        self.on_failure = on_failure
        self._loop: asyncio.AbstractEventLoop | None = None
        self._receiver: Receiver | None = None
        self.invocations = 0
        # Unknown task names are then poison (left for redrive), and WORKER_STARTUP events fire.
        broker.is_worker_process = True

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop kept across warm invocations (created on first use)."""
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
            # Code that asks for "the" loop from synchronous context (at import, in a sync task) finds it.
            asyncio.set_event_loop(self._loop)
        return self._loop

    def __call__(self, event: Mapping[str, Any], context: LambdaContext | None = None) -> BatchResponse:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError("the Lambda handler is synchronous; in async code, `await handler.handle()`")
        return self.loop.run_until_complete(self.handle(event, context))

    async def handle(self, event: Mapping[str, Any], context: LambdaContext | None = None) -> BatchResponse:
        """One invocation, on the running loop (what ``__call__`` runs on the kept loop)."""
        records = parse_event(event)
        deadline = _deadline(context)
        self.invocations += 1
        try:
            failed = await self._run(records, deadline)
        except BaseException as exc:
            logger.error(
                "The invocation failed as a whole (%s: %s): the records of this batch (%d) not deleted yet "
                "come back after the queue's visibility timeout",
                type(exc).__name__,
                exc,
                len(records),
            )
            raise
        ids = list(dict.fromkeys(r.message_id for r in records if r.message_id in failed))
        if ids and len(ids) == len({r.message_id for r in records}):
            logger.warning(
                "All %d records of this batch failed. SQS delivers them again, and moves them to the "
                "dead-letter queue after maxReceiveCount receives. The event source mapping must have "
                "FunctionResponseTypes=['ReportBatchItemFailures']: without it Lambda deletes records this "
                "function reported as failed.",
                len(records),
            )
        if ids and self.on_failure == "raise":
            raise BatchItemFailuresError(count=len(ids), total=len(records), ids=", ".join(ids))
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in ids]}

    def close(self) -> None:
        """Shut the broker down (flushing sends, handing back what it holds) and close the loop."""
        loop, self._loop = self._loop, None
        self._receiver = None
        if loop is None or loop.is_closed():
            return
        try:
            loop.run_until_complete(self.broker.shutdown())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
            asyncio.set_event_loop(None)

    # -- one invocation -------------------------------------------------------------------------------
    async def _run(self, records: list[Record], deadline: float | None) -> set[str]:
        """The message ids that failed."""
        receiver = await self._start()
        run = _Run(self, receiver, self.broker.inbox, deadline)
        units: list[Coroutine[Any, Any, None]] = []
        groups: dict[tuple[str, str], list[Record]] = {}
        for record in records:
            group = record.group_id
            if group is None:
                units.append(run.single(record))
            else:
                key = (record.source_arn, group)
                if key not in groups:
                    groups[key] = []
                    units.append(run.group(groups[key]))
                groups[key].append(record)
        await asyncio.gather(*units)
        await run.hand_back()
        if run.out_of_time:
            logger.warning(
                "%d records were not started: less than time_margin=%.1f s of the invocation was left "
                "(raise the function timeout, lower the batch size, or lower time_margin)",
                run.out_of_time,
                self.time_margin,
            )
        # Tasks kicked by tasks may sit in the send buffer: the loop sleeps between invocations.
        await self.broker.flush()
        return run.failed

    async def _start(self) -> Receiver:
        """Start the broker once (no polling), and build taskiq's receiver for it."""
        await self.broker.startup()
        if self._receiver is None:
            self._receiver = Receiver(
                self.broker,
                max_async_tasks=self.max_concurrency,
                run_startup=False,
                ack_type=self.ack_type,
            )
        return self._receiver


class _Run:
    """The state of one invocation: what failed, what taskiq never settled, what never started."""

    def __init__(
        self, handler: LambdaHandler, receiver: Receiver, inbox: Inbox, deadline: float | None
    ) -> None:
        self._handler = handler
        self._receiver = receiver
        self._inbox = inbox
        self._deadline = deadline
        self._slots = asyncio.Semaphore(handler.max_concurrency)
        self.failed: set[str] = set()
        self.unsettled: list[Delivery] = []
        # Records never started (out of time, or behind a failure in their FIFO group).
        self.unstarted: list[Record] = []
        self.out_of_time = 0

    async def single(self, record: Record) -> None:
        if not await self._process(record):
            self.failed.add(record.message_id)

    async def group(self, records: list[Record]) -> None:
        """A FIFO group in order; after the first failure the rest are failures without running."""
        for index, record in enumerate(records):
            if not await self._process(record):
                rest = records[index:]
                self.failed.update(r.message_id for r in rest)
                self.unstarted.extend(rest[1:])
                if len(rest) > 1:
                    logger.info(
                        "FIFO group %s: message %s failed, so its %d later records in this batch are "
                        "reported as failures without running, to keep the group's order",
                        record.group_id,
                        record.message_id,
                        len(rest) - 1,
                    )
                return

    async def hand_back(self) -> None:
        """Make what never ran visible again at once, instead of after the queue's visibility timeout.

        For FIFO this keeps the order: SQS delivers none of a group's messages while an earlier one is
        in flight, so the failed record (hidden for ``redelivery_delay``, or with the poison backoff) still
        comes first. Deliveries taskiq never acked (the result could not be stored) go back the same way.
        """
        left = self._time_left()
        timeout = _HAND_BACK_TIMEOUT if left is None else max(min(_HAND_BACK_TIMEOUT, left - 0.2), 0.1)
        if self.unsettled:
            await self._inbox.hand_back(self.unsettled, timeout)
        handles: list[tuple[str, str]] = []
        for record in self.unstarted:
            try:
                target = self._handler.broker.target_for(record.source_arn)
            except SQSBrokerError:
                continue
            handles.append((target.url, record.message.receipt_handle))
        if handles:
            await self._inbox.make_visible(handles, timeout)

    def _time_left(self) -> float | None:
        return None if self._deadline is None else self._deadline - time.monotonic()

    async def _process(self, record: Record) -> bool:
        """True when the record's task ran and its message is deleted; every other end is a failure."""
        if record.problem is not None:
            logger.error(
                "Record %s from %s is malformed (%s); reported as a failure, never deleted",
                record.message_id,
                record.queue_name or "an unknown queue",
                record.problem,
            )
            return False
        async with self._slots:
            left = self._time_left()
            if left is not None and left < self._handler.time_margin:
                self.out_of_time += 1
                self.unstarted.append(record)
                return False
            try:
                target = self._handler.broker.target_for(record.source_arn)
            except SQSBrokerError as exc:
                logger.error(
                    "Record %s comes from queue %r, which the broker does not know (%s); register it with "
                    "broker.with_queues(...). Reported as a failure.",
                    record.message_id,
                    record.queue_name,
                    exc,
                )
                return False
            delivery = await self._admit(target, record, left)
            if delivery is None:
                return False
            return await self._execute(delivery)

    async def _admit(self, target: Target, record: Record, left: float | None) -> Delivery | None:
        """The inbox's verdict; None (a failure) for poison, not-yet-due and unreadable records."""
        admit = self._inbox.admit(target, record.message)
        try:
            if left is None:
                return await admit
            return await asyncio.wait_for(admit, max(left - self._handler.time_margin, 0.001))
        except asyncio.TimeoutError:
            logger.warning(
                "Record %s: reading its payload did not finish within the invocation's time; reported as a "
                "failure",
                record.message_id,
            )
        except Exception:
            logger.exception("Record %s could not be prepared; reported as a failure", record.message_id)
        return None

    async def _execute(self, delivery: Delivery) -> bool:
        self._inbox.dispatched(delivery)
        try:
            await self._receiver.callback(message=delivery.ackable, raise_err=True)
        except Exception:
            # The result could not be stored (after the backend's retries), or a middleware raised.
            logger.exception(
                "Task %s (message %s) did not complete its delivery",
                delivery.task_id,
                delivery.message.message_id,
            )
        outcome = delivery.outcome
        if outcome is None:
            self.unsettled.append(delivery)
            return False
        # REDELIVERED: the task raised and redeliver_failed is on; SQS delivers it again after
        # redelivery_delay, and past maxReceiveCount the redrive policy moves it to the DLQ.
        return outcome is Outcome.DELETED


def _deadline(context: object) -> float | None:
    """When the invocation ends, on the monotonic clock; None without a Lambda context."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    millis = remaining()
    if not isinstance(millis, int | float):
        return None
    return time.monotonic() + float(millis) / 1000.0


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    return value


def _check_seconds(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"{name} must be a number of seconds from {low:g} to {high:g}, got {value!r}")
    return float(value)


def lambda_handler(
    broker: SQSBroker,
    *,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    time_margin: float = DEFAULT_TIME_MARGIN,
    ack_type: AcknowledgeType | str | None = None,
    on_failure: Literal["report", "raise"] = "report",
) -> LambdaHandler:
    """The Lambda handler for ``broker``'s tasks: set the function's handler to ``module.handler``.

    ``max_concurrency`` (default 10): tasks of one invocation running at once; records of a FIFO message
    group always run one after the other.
    ``time_margin`` (default 2.0 s): a task is not started when less than this is left of the invocation
    (``context.get_remaining_time_in_millis()``); set it to your longest task's duration.
    ``ack_type`` (default taskiq's ``when_saved``): when the message is deleted, as ``taskiq worker
    --ack-type``; a task's ``ack_type`` label still wins.
    ``on_failure`` (default ``"report"``): return ``{"batchItemFailures": [...]}`` (the mapping must have
    ``FunctionResponseTypes=["ReportBatchItemFailures"]``), or ``"raise"`` to fail the invocation instead,
    for mappings without it (successful records are already deleted, so only failed ones come back).
    """
    if not isinstance(cast(object, broker), SQSBroker):  # untyped callers
        raise TypeError(f"broker must be a taskiq_sqs_http.SQSBroker, got {type(broker).__name__}")
    if on_failure not in ("report", "raise"):
        raise ValueError(f"on_failure must be 'report' or 'raise', got {on_failure!r}")
    parsed_ack: AcknowledgeType | None = None
    if ack_type is not None:
        try:
            parsed_ack = AcknowledgeType(ack_type)
        except ValueError:
            allowed = ", ".join(repr(a.value) for a in AcknowledgeType)
            raise ValueError(f"ack_type must be one of {allowed}, got {ack_type!r}") from None
    return LambdaHandler(
        broker,
        max_concurrency=_check_int("max_concurrency", max_concurrency, 1, _MAX_CONCURRENCY_LIMIT),
        time_margin=_check_seconds("time_margin", time_margin, 0.0, _MAX_TIME_MARGIN),
        ack_type=parsed_ack,
        on_failure=on_failure,
    )
