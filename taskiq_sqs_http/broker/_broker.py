"""SQSBroker: taskiq's broker interface on SQS, through our own async client.

The broker is wiring: routing and label handling (`_labels`), the wire format (`_envelope`), the receive
loop (`_consumer`), heartbeats (`_heartbeat`), send and ack coalescing (`..batching`) and S3-offloaded
payloads (`..extended`); building a task's SQS message (`_sending`), preparing, acking and handing back
received ones (`_delivery`), queue lookup and creation (`_queues`), argument checks (`_validation`) and
the mapping of client errors (`_errors`) live beside it. Every send goes through `_send(target, entry)`
and every ack through `_ack(queue_url, receipt_handle)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Generator, Iterable
from typing import Any

import httpx
from taskiq import AsyncBroker, BrokerMessage
from taskiq.abc.formatter import TaskiqFormatter
from taskiq.acks import AckableMessage

from ..aws import (
    AWSError,
    ConfigurationError,
    HTTPSession,
    Message,
    RetryPolicy,
    S3Client,
    SendMessageEntry,
    ServerSideEncryption,
    SQSClient,
    Timeouts,
    resolve_region,
)
from ..aws._credentials import CredentialsLike
from ..batching import DeleteBatcher, SendBatcher, SendBatchError, SendFailure, VisibilityBatcher
from ..exceptions import BrokerConfigError, BrokerNotStartedError, SendFailedError
from ..extended import PayloadStore
from ..result_backend._keys import server_side_encryption as _sse
from ..result_backend._s3 import S3Backend
from . import _aio, _clients, _delivery, _queues, _sending, _validation
from ._config import (
    MAX_DELAY_SECONDS,
    MAX_NUMBER_OF_MESSAGES,
    MAX_VISIBILITY_TIMEOUT,
    MAX_WAIT_TIME_SECONDS,
    SQSQueue,
    check_float_at_least,
    check_int,
)
from ._consumer import Consumer, Target
from ._delivery import Ack as _Ack
from ._delivery import FailureTracker as _FailureTracker
from ._delivery import RecentSet as _RecentSet
from ._envelope import MetadataUnwrappingFormatter
from ._errors import broker_error
from ._heartbeat import Heartbeats

__all__ = ["MAX_SQS_MESSAGE_SIZE", "SQSBroker"]

logger = logging.getLogger(__name__)

# SQS's limit on body plus attributes; at or above it the payload goes to S3 (2.1.1's threshold).
MAX_SQS_MESSAGE_SIZE = 1_048_576
_DEFAULT_HEARTBEAT_MAX_EXTENSIONS = 100
# Bound on handing un-acked messages back at shutdown.
_SHUTDOWN_RETURN_TIMEOUT = 10.0
# Default linger of batched deletes and visibility changes: long enough to coalesce the acks of one
# receive, short enough not to matter to a task's latency.
_ACK_LINGER = 0.02


class SQSBroker(AsyncBroker):
    """AWS SQS broker for taskiq; a drop-in for ``taskiq_aio_sqs.SQSBroker``.

    Beyond 2.1.1: ``region_name`` defaults to the resolved region (AWS_REGION, AWS_DEFAULT_REGION,
    profile); ``aws_session_token``, ``credentials`` (a provider or callable) and ``http_client`` (an
    ``httpx.AsyncClient`` to share) configure the client; ``create_queues`` creates missing queues at
    startup; ``max_delay_seconds`` is the longest DelaySeconds used before longer delays switch to
    "hide until due"; ``server_side_encryption`` / ``sse_kms_key_id`` encrypt the S3 objects we write.
    """

    def __init__(
        self,
        sqs_queue_name: str,
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        use_task_id_for_deduplication: bool = False,
        wait_time_seconds: int = 10,
        max_number_of_messages: int = 1,
        visibility_timeout: int | None = None,
        delay_seconds: int = 0,
        s3_extended_bucket_name: str | None = None,
        is_fair_queue: bool = False,
        enable_batching: bool = False,
        batch_size: int = 10,
        batch_timeout: float = 1.0,
        skip_batch_tasks: list[str] | None = None,
        expose_message_metadata: bool = False,
        enable_heartbeat: bool = False,
        heartbeat_interval: float | None = None,
        heartbeat_max_extensions: int = _DEFAULT_HEARTBEAT_MAX_EXTENSIONS,
        aws_session_token: str | None = None,
        credentials: CredentialsLike | None = None,
        http_client: httpx.AsyncClient | None = None,
        retry_policy: RetryPolicy | None = None,
        create_queues: bool = False,
        max_delay_seconds: int = MAX_DELAY_SECONDS,
        server_side_encryption: str | ServerSideEncryption | None = None,
        sse_kms_key_id: str | None = None,
        extended_payload_format: str = "aio-sqs",
        extended_payload_threshold: int = MAX_SQS_MESSAGE_SIZE,
        trusted_payload_buckets: Iterable[str] | None = None,
        delete_payloads_after_ack: bool = True,
        redeliver_failed: bool = False,
        redelivery_delay: int = 30,
        ack_batch_linger: float = _ACK_LINGER,
        on_send_error: Callable[[SendFailure], object] | None = None,
        shutdown_timeout: float = 30.0,
        timeouts: Timeouts | None = None,
    ) -> None:
        super().__init__()
        _validation.check_types(
            flags={
                "use_task_id_for_deduplication": use_task_id_for_deduplication,
                "is_fair_queue": is_fair_queue,
                "enable_batching": enable_batching,
                "expose_message_metadata": expose_message_metadata,
                "enable_heartbeat": enable_heartbeat,
                "create_queues": create_queues,
                "delete_payloads_after_ack": delete_payloads_after_ack,
                "redeliver_failed": redeliver_failed,
            },
            names={"skip_batch_tasks": skip_batch_tasks, "trusted_payload_buckets": trusted_payload_buckets},
            instances={
                "http_client": (http_client, httpx.AsyncClient),
                "retry_policy": (retry_policy, RetryPolicy),
                "timeouts": (timeouts, Timeouts),
            },
            callables={"on_send_error": on_send_error},
        )
        # -- validation, in 2.1.1's order: heartbeat, messages, delay, wait, then batching ------------
        heartbeat_interval = _validation.parse_heartbeat_interval(heartbeat_interval)
        extensions = _validation.check_heartbeat_max_extensions(heartbeat_max_extensions)
        self.max_number_of_messages = check_int(
            "MaxNumberOfMessages", max_number_of_messages, 1, MAX_NUMBER_OF_MESSAGES
        )
        self.delay_seconds = check_int("DelaySeconds", delay_seconds, 0, MAX_DELAY_SECONDS)
        self.wait_time_seconds = check_int("WaitTimeSeconds", wait_time_seconds, 0, MAX_WAIT_TIME_SECONDS)
        self.visibility_timeout: int | None = None
        if visibility_timeout is not None:
            self.visibility_timeout = check_int(
                "VisibilityTimeout", visibility_timeout, 0, MAX_VISIBILITY_TIMEOUT
            )
        if enable_heartbeat and self.visibility_timeout is not None:
            _validation.check_heartbeat_interval(heartbeat_interval, self.visibility_timeout, "the broker")
        self._batch_size = check_int("BatchSize", batch_size, 1, 10)
        self._batch_timeout = check_float_at_least("BatchTimeout", batch_timeout, 0.1)
        self._enable_batching = bool(enable_batching)
        self._skip_batch_tasks = set(skip_batch_tasks or [])
        self.max_delay_seconds = check_int("max_delay_seconds", max_delay_seconds, 0, MAX_DELAY_SECONDS)
        self._redelivery_delay = check_int("redelivery_delay", redelivery_delay, 0, MAX_VISIBILITY_TIMEOUT)
        self._ack_linger = _validation.check_range_float("ack_batch_linger", ack_batch_linger, 0.0, 0.05)
        self._shutdown_timeout = _validation.check_range_float(
            "shutdown_timeout", shutdown_timeout, 0.1, 3600.0
        )
        try:
            self._encryption = _sse(server_side_encryption, sse_kms_key_id)
            self._payloads = PayloadStore(
                self._get_s3,
                s3_extended_bucket_name,
                threshold=extended_payload_threshold,
                payload_format=extended_payload_format,
                trusted_buckets=trusted_payload_buckets or (),
                encryption=self._encryption,
            )
        except ConfigurationError as exc:
            raise BrokerConfigError(error=str(exc)) from None
        self._delete_payloads = delete_payloads_after_ack
        self._on_send_error = on_send_error
        # Task ids whose last run raised; consulted (and cleared) by their ack when redeliver_failed.
        self._failed_tasks = _RecentSet()
        self._redeliver_failed = redeliver_failed
        if redeliver_failed:
            self.add_middlewares(_FailureTracker(self._failed_tasks))

        self.use_task_id_for_deduplication = use_task_id_for_deduplication
        self.s3_extended_bucket_name = s3_extended_bucket_name
        self._is_fair_queue = is_fair_queue
        self._enable_heartbeat = enable_heartbeat
        self._heartbeat_interval = heartbeat_interval
        self._heartbeat_max_extensions = extensions
        self._expose_message_metadata = expose_message_metadata
        self.formatter = self._wrap_formatter(self.formatter)
        self._create_queues = create_queues

        self._region_name = region_name
        self._client_options: dict[str, Any] = {
            "region_name": region_name,
            "endpoint_url": endpoint_url,
            "aws_access_key_id": aws_access_key_id,
            "aws_secret_access_key": aws_secret_access_key,
            "aws_session_token": aws_session_token,
            "credentials": credentials,
            "retry_policy": retry_policy,
        }
        self._http_client = http_client
        self._timeouts = timeouts

        default_queue = SQSQueue(
            name=sqs_queue_name,
            max_number_of_messages=self.max_number_of_messages,
            wait_time_seconds=self.wait_time_seconds,
            visibility_timeout=self.visibility_timeout,
        )
        self._check_queue(default_queue)
        self._default_queue = default_queue
        self._queues: dict[str, SQSQueue] = {default_queue.name: default_queue}

        # -- runtime state, set by startup() ------------------------------------------------------
        self._started = False
        self._session: HTTPSession | None = None
        self._sqs: SQSClient | None = None
        self._s3: S3Client | None = None
        self._s3_lock = asyncio.Lock()
        self._targets: dict[str, Target] = {}
        self._heartbeats: Heartbeats | None = None
        self._heartbeat_settings: dict[str, tuple[int, float]] = {}
        # Handed to taskiq and not yet acked: receipt handle -> queue URL (handed back at shutdown).
        self._in_flight: dict[str, str] = {}
        self._sender: SendBatcher | None = None
        self._deleter: DeleteBatcher | None = None
        self._visibility: VisibilityBatcher | None = None

    # -- configuration --------------------------------------------------------------------------------
    def _check_queue(self, queue: SQSQueue) -> None:
        _validation.check_queue(
            queue,
            delay_seconds=self.delay_seconds,
            enable_heartbeat=self._enable_heartbeat,
            heartbeat_interval=self._heartbeat_interval,
        )

    def _require_not_started(self, what: str) -> None:
        if self._started:
            raise _StateError(error=f"Cannot {what} after startup() has been invoked.")

    def with_queues(self, *queues: SQSQueue) -> SQSBroker:
        """Register more queues: kick routes to them by the ``queue`` label, listen() polls them all."""
        self._require_not_started("register queues")
        for queue in queues:
            self._check_queue(queue)
            self._queues[queue.name] = queue
        return self

    def with_default_queue(self, queue: SQSQueue) -> SQSBroker:
        """Replace the default queue: the previous one is no longer resolved, polled or sent to."""
        self._require_not_started("change default queue")
        self._check_queue(queue)
        previous = self._default_queue
        if self._queues.get(previous.name) is previous:
            del self._queues[previous.name]
        self._default_queue = queue
        self._queues[queue.name] = queue
        self.max_number_of_messages = queue.max_number_of_messages
        self.wait_time_seconds = queue.wait_time_seconds
        self.visibility_timeout = queue.visibility_timeout
        return self

    def with_formatter(self, formatter: TaskiqFormatter) -> SQSBroker:
        """Set the formatter, keeping metadata unwrapping when ``expose_message_metadata`` is on."""
        return super().with_formatter(self._wrap_formatter(formatter))

    def _wrap_formatter(self, formatter: TaskiqFormatter) -> TaskiqFormatter:
        if self._expose_message_metadata and not isinstance(formatter, MetadataUnwrappingFormatter):
            return MetadataUnwrappingFormatter(formatter)
        return formatter

    @property
    def queues(self) -> dict[str, SQSQueue]:
        """Registered queues by name (the default queue included)."""
        return dict(self._queues)

    @property
    def default_queue(self) -> SQSQueue:
        return self._default_queue

    @property
    def region_name(self) -> str:
        if self._sqs is not None:
            return self._sqs.region
        return resolve_region(self._region_name).value

    @property
    def queue_urls(self) -> dict[str, str]:
        """Resolved queue URLs by name (empty before startup)."""
        return {name: target.url for name, target in self._targets.items()}

    @contextlib.contextmanager
    def handle_exceptions(self, queue_name: str | None = None) -> Generator[None, None, None]:
        """Turn client-layer errors into this package's broker errors (2.1.1's helper, same meaning)."""
        try:
            yield
        except AWSError as exc:
            raise broker_error(exc, queue_name or self._default_queue.name) from exc

    # -- lifecycle ------------------------------------------------------------------------------------
    async def startup(self) -> None:
        """Open the SQS client, resolve (or create) every queue concurrently, then start taskiq's side."""
        if self._started:
            return
        try:
            await self._open_clients()
            self._targets = await _queues.resolve_targets(
                self._require_sqs("startup"),
                self._queues.values(),
                create=self._create_queues,
                handle_exceptions=self.handle_exceptions,
            )
            self._started = True
            if isinstance(self.result_backend, S3Backend) and self._session is not None:
                self.result_backend.use_session(self._session)
            await super().startup()
        except BaseException:
            self._started = False
            self._targets = {}
            await self._close_clients()
            raise

    async def _open_clients(self) -> None:
        self._session, self._sqs = await _clients.open_sqs(
            self._http_client, self._timeouts, self._client_options
        )
        logger.info("SQS broker: %s", self._sqs.describe())
        self._deleter = DeleteBatcher(self._sqs, linger=self._ack_linger)
        self._visibility = VisibilityBatcher(self._sqs, linger=self._ack_linger)
        if self._enable_batching:
            self._sender = SendBatcher(
                self._sqs,
                batch_size=self._batch_size,
                linger=self._batch_timeout,
                on_failure=self._report_send_failure,
            )
        if self._enable_heartbeat:
            self._heartbeats = Heartbeats(
                self._visibility.change, max_extensions=self._heartbeat_max_extensions
            )

    async def flush(self) -> None:
        """Send every buffered message now; raise `SendFailedError` naming those that could not be sent."""
        if self._sender is None:
            return
        try:
            await self._sender.flush()
        except SendBatchError as exc:
            raise SendFailedError(error=str(exc), failures=exc.failures) from exc

    async def shutdown(self) -> None:
        """Flush buffered sends (bounded), hand back un-acked messages, stop heartbeats, close everything.

        Never hangs: the flush gets ``shutdown_timeout`` seconds. Messages that could not be sent by then
        are reported through ``on_send_error`` and raised as `SendFailedError` once everything is closed.
        """
        unsent: SendBatchError | None = None
        try:
            if self._sender is not None:
                sender, self._sender = self._sender, None
                try:
                    await sender.aclose(timeout=self._shutdown_timeout)
                except SendBatchError as exc:
                    unsent = exc
            if self._sqs is not None and self._in_flight:
                await self._hand_back_in_flight(self._sqs)
            if self._heartbeats is not None:
                await self._heartbeats.aclose()
            for batcher in (self._deleter, self._visibility):
                if batcher is not None:
                    await _aio.bounded(batcher.aclose(), _SHUTDOWN_RETURN_TIMEOUT, "pending acks")
        finally:
            try:
                await super().shutdown()
            finally:
                self._started = False
                self._targets = {}
                await self._close_clients()
        if unsent is not None:
            raise SendFailedError(error=str(unsent), failures=unsent.failures) from unsent

    def _report_send_failure(self, failure: SendFailure) -> None:
        """Every message that could not be sent is logged (by the batcher) and handed to the user's hook."""
        if self._on_send_error is not None:
            self._on_send_error(failure)

    async def _hand_back_in_flight(self, sqs: SQSClient) -> None:
        await _delivery.hand_back(sqs, self._in_flight, _SHUTDOWN_RETURN_TIMEOUT)

    async def _close_clients(self) -> None:
        sqs, s3, session = self._sqs, self._s3, self._session
        self._sqs = self._s3 = self._session = None
        self._heartbeats = None
        self._sender = self._deleter = self._visibility = None
        self._heartbeat_settings = {}
        self._in_flight.clear()
        await _clients.close_clients(sqs, s3, session)

    def _require_sqs(self, operation: str) -> SQSClient:
        if self._sqs is None:
            raise BrokerNotStartedError(operation=operation)
        return self._sqs

    async def _get_s3(self) -> S3Client:
        """The S3 client, created on first use: a broker that never offloads never opens one."""
        if self._s3 is None:
            async with self._s3_lock:
                if self._s3 is None:
                    if self._session is None:
                        raise BrokerNotStartedError(operation="S3 access")
                    self._s3 = S3Client(session=self._session, **self._client_options)
        return self._s3

    # -- sending --------------------------------------------------------------------------------------
    async def kick(self, message: BrokerMessage) -> None:
        """Send one task.

        Unbatched, returns once SQS has accepted it. Batched, returns once it is buffered: from then on it
        is sent, retried with backoff, or reported (``on_send_error``, ``flush()``, ``shutdown()``).
        Either way, a task that cannot be built (bad labels, oversize without a bucket) raises here.
        """
        self._require_sqs("kick")
        target = _sending.route(message, self._targets, self._default_queue.name, started=self._started)
        entry = await self.build_entry(message, target)
        if self._sender is not None and _sending.batchable(message, self._skip_batch_tasks):
            try:
                self._sender.submit(target.url, entry)
            except ConfigurationError as exc:  # closed by shutdown(): the caller must know it was not sent
                raise BrokerNotStartedError(operation="kick") from exc
            return
        await self._send(target, entry)

    async def build_entry(self, message: BrokerMessage, target: Target) -> SendMessageEntry:
        """The SQS message for a task: delay, group and deduplication ids, body, S3 offload.

        An extension point since 2.1.1: override it to change what is sent for a task.
        """
        return await _sending.build_entry(
            message,
            target.queue,
            delay_seconds=self.delay_seconds,
            max_delay_seconds=self.max_delay_seconds,
            fair_queue=self._is_fair_queue,
            use_task_id_for_deduplication=self.use_task_id_for_deduplication,
            payloads=self._payloads,
            s3_extended_bucket_name=self.s3_extended_bucket_name,
            handle_exceptions=self.handle_exceptions,
        )

    async def _send(self, target: Target, entry: SendMessageEntry) -> None:
        """An unbatched send: one SendMessage, any failure raised to the kicker (batched sends go to the
        SendBatcher instead)."""
        sqs = self._require_sqs("kick")
        with self.handle_exceptions(target.name):
            await sqs.send_message(
                target.url,
                entry.body,
                delay_seconds=entry.delay_seconds,
                message_attributes=entry.message_attributes,
                message_group_id=entry.message_group_id,
                message_deduplication_id=entry.message_deduplication_id,
            )

    # -- receiving ------------------------------------------------------------------------------------
    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """Yield tasks from every registered queue; closing the generator stops polling at once."""
        sqs = self._require_sqs("listen")
        if self._enable_heartbeat:
            await self._resolve_heartbeat_settings(sqs)
        consumer = Consumer(
            sqs,
            list(self._targets.values()),
            prepare=self._prepare,
            on_received=self._on_received,
            on_released=self._on_released,
        )
        consumer.start()
        try:
            while True:
                target, message, ackable = await consumer.get()
                self._in_flight[message.receipt_handle] = target.url
                yield ackable
        finally:
            await consumer.aclose()

    async def _resolve_heartbeat_settings(self, sqs: SQSClient) -> None:
        """Visibility timeout and interval per queue; fetched once, by consumers only."""
        missing = [t for t in self._targets.values() if t.name not in self._heartbeat_settings]
        self._heartbeat_settings.update(
            await _queues.heartbeat_settings(sqs, missing, self._heartbeat_interval, self.handle_exceptions)
        )

    async def _on_received(self, target: Target, message: Message) -> None:
        settings = self._heartbeat_settings.get(target.name)
        if self._heartbeats is not None and settings is not None and settings[0] > 0:
            timeout, interval = settings
            self._heartbeats.start(target.name, target.url, message.receipt_handle, timeout, interval)

    async def _on_released(self, target: Target, message: Message) -> None:
        if self._heartbeats is not None:
            await self._heartbeats.stop(message.receipt_handle)

    async def _prepare(self, target: Target, message: Message) -> AckableMessage | None:
        """Task bytes and ack for a received message, or None to leave it in SQS (logged)."""
        return await _delivery.prepare(
            target,
            message,
            payloads=self._payloads,
            hide_until=self._hide_until,
            task_problem=self._task_problem,
            acknowledge=self._acknowledge,
            expose_metadata=self._expose_message_metadata,
            delete_payloads=self._delete_payloads,
        )

    def _task_problem(self, payload: bytes) -> tuple[str, str | None]:
        """The task id, and why taskiq could not run this payload (None when it can)."""
        find_task = self.find_task if self.is_worker_process else None
        return _delivery.task_problem(payload, self.formatter, find_task)

    async def _hide_until(self, target: Target, message: Message, due: float) -> None:
        """A long-delayed message arrived early: stop its heartbeat, hide it again until it is due."""
        await self._on_released(target, message)
        await _delivery.hide_until(self._require_sqs("listen"), target, message, due)

    # -- acknowledging --------------------------------------------------------------------------------
    async def _acknowledge(self, queue_name: str, delivery: _Ack) -> None:
        metadata = delivery.metadata
        self._in_flight.pop(metadata.receipt_handle, None)
        if self._heartbeats is not None:
            await self._heartbeats.stop(metadata.receipt_handle)
        if self._redeliver_failed and delivery.task_id in self._failed_tasks:
            self._failed_tasks.discard(delivery.task_id)
            await _delivery.redeliver(self._visibility, queue_name, metadata, self._redelivery_delay)
            return
        await _delivery.delete(delivery, queue_name, self._ack, self._payloads)

    async def _ack(self, queue_url: str, receipt_handle: str) -> None:
        """Delete through DeleteMessageBatch; returns once SQS deleted it (stale handles are logged)."""
        if self._deleter is None:
            raise BrokerNotStartedError(operation="ack")
        await self._deleter.delete(queue_url, receipt_handle)


class _StateError(BrokerConfigError, ValueError):
    """with_queues()/with_default_queue() after startup(); a ValueError as in 2.1.1."""
