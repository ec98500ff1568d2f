"""The life of a sent task, in one place: route it, build its SQS message, and send or buffer it.

`Outbox.send` is what ``kick()`` does:

1. the ``queue`` label routes the task to a registered queue (the default one when it names none);
2. `_sending.build_entry` turns it into an SQS message: delay, group and deduplication ids, body, and an S3
   pointer when the payload is too large for SQS (the broker's ``build_entry`` may be overridden);
3. unbatched, SendMessage returns once SQS has it, and any failure is raised to the kicker. Batched, the
   message waits in the `SendBatcher` buffer for a SendMessageBatch; ``kiq()`` returns once it is buffered.
   The buffer is bounded: when SQS cannot keep up (or is down), ``kiq()`` waits for room and then raises
   `SendFailedError`, so a producer never piles up an unbounded backlog that a crash would lose;
4. from the buffer a message is sent, retried with backoff, or reported (``on_send_error``, ``flush()``,
   ``shutdown()``). Accepted always means sent, or an error the caller sees.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from taskiq import BrokerMessage

from ..aws import AWSError, ConfigurationError, SendMessageEntry, SQSClient
from ..batching import SendBatcher, SendBatchError, SendBufferFullError, SendFailure
from ..exceptions import BrokerNotStartedError, SendFailedError
from ..options import BatchingOptions
from . import _sending
from ._errors import broker_error
from ._queues import Target

__all__ = ["Outbox"]

logger = logging.getLogger("taskiq_sqs_http.broker")

BuildEntry = Callable[[BrokerMessage, Target], Awaitable[SendMessageEntry]]


class Outbox:
    """Owns sending: routing, the send batcher and its buffer bound, and unbatched sends."""

    def __init__(
        self,
        sqs: SQSClient,
        targets: Mapping[str, Target],
        default_queue: str,
        *,
        settings: BatchingOptions,
        build_entry: BuildEntry,
    ) -> None:
        self._sqs = sqs
        self._targets = targets
        self._default_queue = default_queue
        self._settings = settings
        self._build_entry = build_entry
        self._on_send_error = settings.on_send_error
        self._batcher: SendBatcher | None = None
        # Queues whose messages may wait in the batcher: the broker's setting, or the queue's own.
        self._batched = {
            t.name for t in targets.values() if _pick(t.queue.enable_batching, settings.enable_batching)
        }
        if self._batched:
            self._batcher = SendBatcher(
                sqs,
                batch_size=settings.batch_size,
                linger=settings.batch_timeout,
                on_failure=self._report,
                max_buffered_messages=settings.max_buffered_messages,
                max_buffered_bytes=settings.max_buffered_bytes,
            )
            for target in targets.values():
                queue = target.queue
                if queue.batch_size is not None or queue.batch_timeout is not None:
                    self._batcher.configure_queue(
                        target.url,
                        batch_size=_pick(queue.batch_size, settings.batch_size),
                        linger=_pick(queue.batch_timeout, settings.batch_timeout),
                    )
        self._closed = False

    @property
    def pending(self) -> int:
        """Messages buffered or on their way to SQS."""
        return 0 if self._batcher is None else self._batcher.pending

    def route(self, message: BrokerMessage) -> Target:
        return _sending.route(message, self._targets, self._default_queue, started=not self._closed)

    async def send(self, message: BrokerMessage) -> None:
        """Route, build and send (or buffer) one task; see the module docstring."""
        if self._closed:
            raise BrokerNotStartedError(operation="kick")
        target = self.route(message)
        entry = await self._build_entry(message, target)
        if (
            self._batcher is not None
            and target.name in self._batched
            and _sending.batchable(message, self._settings.skip_batch_tasks)
        ):
            try:
                await self._batcher.put(target.url, entry, timeout=self._settings.send_buffer_timeout)
            except SendBufferFullError as exc:
                raise SendFailedError(error=str(exc), failures=exc.failures) from exc
            except ConfigurationError as exc:  # closed by shutdown(): the caller must know it was not sent
                raise BrokerNotStartedError(operation="kick") from exc
            return
        try:
            await self._sqs.send_message(
                target.url,
                entry.body,
                delay_seconds=entry.delay_seconds,
                message_attributes=entry.message_attributes,
                message_group_id=entry.message_group_id,
                message_deduplication_id=entry.message_deduplication_id,
            )
        except AWSError as exc:
            raise broker_error(exc, target.name) from exc

    async def flush(self) -> None:
        """Send every buffered message now; `SendFailedError` names those that could not be sent."""
        if self._batcher is None:
            return
        try:
            await self._batcher.flush()
        except SendBatchError as exc:
            raise SendFailedError(error=str(exc), failures=exc.failures) from exc

    async def aclose(self, timeout: float) -> SendFailedError | None:
        """Flush within ``timeout`` seconds and stop; the error naming what could not be sent, if any.

        Returned, not raised: the broker closes everything else first and raises it last.
        """
        self._closed = True
        batcher, self._batcher = self._batcher, None
        if batcher is None:
            return None
        try:
            await batcher.aclose(timeout=timeout)
        except SendBatchError as exc:
            error = SendFailedError(error=str(exc), failures=exc.failures)
            error.__cause__ = exc
            return error
        return None

    def _report(self, failure: SendFailure) -> None:
        """Every message that could not be sent is logged (by the batcher) and handed to the user's hook."""
        if self._on_send_error is not None:
            self._on_send_error(failure)


_T = TypeVar("_T")


def _pick(own: _T | None, default: _T) -> _T:
    """A queue's own setting, or the broker's when it has none."""
    return default if own is None else own
