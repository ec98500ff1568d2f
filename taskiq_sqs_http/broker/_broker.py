"""SQSBroker: taskiq's broker interface on SQS, through our own async client.

The broker is wiring. What happens to a task on its way out is the `Outbox`'s (`_outbox`: routing, the
SQS message built by `_sending`, batching with a bounded buffer); what happens to a received message is the
`Inbox`'s (`_lifecycle`: decoding, payload fetch, poison and transient failures, acks, redelivery,
heartbeats, hand-back); `_consumer` is the long-poll loop of ``listen()`` that feeds the inbox. Queue lookup
and creation live in `_queues`, the mapping of client errors in `_errors`. The broker's keyword arguments (the
drop-in signature of taskiq-aio-sqs) are packed at once into the option values of `taskiq_sqs_http.options`
(client, delivery, batching, payloads), which `taskiq_sqs_http._validate` checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
from collections.abc import AsyncGenerator, Callable, Generator, Iterable
from typing import Any, TypeVar

import httpx
from taskiq import AsyncBroker, BrokerMessage
from taskiq.abc.formatter import TaskiqFormatter
from taskiq.acks import AckableMessage

from .._validate import check_bool, check_heartbeat_interval, check_int
from ..aws import (
    AWSError,
    ConfigurationError,
    CredentialsLike,
    HTTPSession,
    RetryPolicy,
    S3Client,
    SendMessageEntry,
    ServerSideEncryption,
    SQSClient,
    Timeouts,
    resolve_region,
)
from ..aws.sqs import MAX_MESSAGE_BYTES
from ..batching import SendFailure
from ..exceptions import BrokerConfigError, BrokerNotStartedError
from ..extended import PayloadStore
from ..options import BatchingOptions, ClientOptions, DeliveryOptions, PayloadOptions, encryption_of
from ..result_backend import S3Backend
from . import _queues, _sending
from ._config import (
    MAX_DELAY_SECONDS,
    MAX_NUMBER_OF_MESSAGES,
    MAX_VISIBILITY_TIMEOUT,
    MAX_WAIT_TIME_SECONDS,
    SQSQueue,
)
from ._consumer import RETURN_TIMEOUT_SECONDS, Consumer
from ._envelope import MetadataUnwrappingFormatter
from ._errors import broker_error
from ._lifecycle import FailureTracker, Inbox, InboxSettings, RecentSet, TaskCheck, check_task
from ._outbox import Outbox
from ._queues import Target

__all__ = ["MAX_SQS_MESSAGE_SIZE", "SQSBroker"]

logger = logging.getLogger("taskiq_sqs_http.broker")

# SQS's limit on body plus attributes; at or above it the payload goes to S3 (2.1.1's name and threshold).
MAX_SQS_MESSAGE_SIZE = MAX_MESSAGE_BYTES
_DEFAULT_HEARTBEAT_MAX_EXTENSIONS = 100
# Bound on handing un-acked messages back and sending the last acks at shutdown (the consumer's too).
_SHUTDOWN_RETURN_TIMEOUT = RETURN_TIMEOUT_SECONDS
# Default linger of batched deletes and visibility changes while other deliveries are in flight: long
# enough to coalesce the acks of one receive, short enough not to matter to a task's latency.
_ACK_LINGER = 0.02


class SQSBroker(AsyncBroker):
    """AWS SQS broker for taskiq; a drop-in for ``taskiq_aio_sqs.SQSBroker``.

    Beyond 2.1.1: ``region_name`` defaults to the resolved region (AWS_REGION, AWS_DEFAULT_REGION,
    profile); ``aws_session_token``, ``credentials`` (a provider or callable) and ``http_client`` (an
    ``httpx.AsyncClient`` to share) configure the client; ``create_queues`` creates missing queues at
    startup; ``max_delay_seconds`` is the longest DelaySeconds used before longer delays switch to
    "hide until due"; ``server_side_encryption`` / ``sse_kms_key_id`` encrypt the S3 objects we write;
    ``max_buffered_messages``, ``max_buffered_bytes`` and ``send_buffer_timeout`` bound the batching buffer;
    ``create_extended_bucket`` creates ``s3_extended_bucket_name`` at startup when it is missing;
    ``client_options`` (a `ClientOptions`) replaces the separate client arguments and may be shared with
    `S3Backend`.
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
        max_buffered_messages: int = 10_000,
        max_buffered_bytes: int = 64 * 1024 * 1024,
        send_buffer_timeout: float = 30.0,
        create_extended_bucket: bool = False,
        client_options: ClientOptions | None = None,
        batching: BatchingOptions | None = None,
        delivery: DeliveryOptions | None = None,
        payloads: PayloadOptions | None = None,
    ) -> None:
        super().__init__()
        try:
            self._client_options = _given(
                "client_options",
                client_options,
                ClientOptions,
                dict(
                    endpoint_url=endpoint_url,
                    region_name=region_name,
                    aws_access_key_id=aws_access_key_id,
                    aws_secret_access_key=aws_secret_access_key,
                    aws_session_token=aws_session_token,
                    credentials=credentials,
                    http_client=http_client,
                    retry_policy=retry_policy,
                    timeouts=timeouts,
                ),
                ClientOptions.from_arguments,
            )
        except ConfigurationError as exc:
            raise BrokerConfigError(error=str(exc)) from None
        self._delivery = _given(
            "delivery",
            delivery,
            DeliveryOptions,
            dict(
                expose_message_metadata=expose_message_metadata,
                redeliver_failed=redeliver_failed,
                redelivery_delay=redelivery_delay,
                ack_batch_linger=ack_batch_linger,
                enable_heartbeat=enable_heartbeat,
                heartbeat_interval=heartbeat_interval,
                heartbeat_max_extensions=heartbeat_max_extensions,
                shutdown_timeout=shutdown_timeout,
            ),
            DeliveryOptions,
        )
        # 2.1.1's public attributes, checked in 2.1.1's order (after the heartbeat, before batching).
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
        self.max_delay_seconds = check_int("max_delay_seconds", max_delay_seconds, 0, MAX_DELAY_SECONDS)
        self.use_task_id_for_deduplication = check_bool(
            "use_task_id_for_deduplication", use_task_id_for_deduplication
        )
        self._is_fair_queue = check_bool("is_fair_queue", is_fair_queue)
        self._create_queues = check_bool("create_queues", create_queues)
        self._batching = _given(
            "batching",
            batching,
            BatchingOptions,
            dict(
                enable_batching=enable_batching,
                batch_size=batch_size,
                batch_timeout=batch_timeout,
                skip_batch_tasks=skip_batch_tasks or frozenset[str](),
                max_buffered_messages=max_buffered_messages,
                max_buffered_bytes=max_buffered_bytes,
                send_buffer_timeout=send_buffer_timeout,
                on_send_error=on_send_error,
            ),
            BatchingOptions,
        )
        try:
            self._payload_options = _given(
                "payloads",
                payloads,
                PayloadOptions,
                dict(
                    s3_extended_bucket_name=s3_extended_bucket_name,
                    create_extended_bucket=create_extended_bucket,
                    extended_payload_format=extended_payload_format,
                    extended_payload_threshold=extended_payload_threshold,
                    trusted_payload_buckets=trusted_payload_buckets or frozenset[str](),
                    delete_payloads_after_ack=delete_payloads_after_ack,
                    server_side_encryption=encryption_of(server_side_encryption, sse_kms_key_id),
                ),
                PayloadOptions,
            )
        except ConfigurationError as exc:
            raise BrokerConfigError(error=str(exc)) from None
        self.s3_extended_bucket_name = self._payload_options.s3_extended_bucket_name
        self._payloads = PayloadStore.from_options(self._get_s3, self._payload_options)
        # Task ids whose last run raised; consulted (and cleared) by their ack when redeliver_failed.
        self._failed_tasks = RecentSet()
        if self._delivery.redeliver_failed:
            self.add_middlewares(FailureTracker(self._failed_tasks))
        self.formatter = self._wrap_formatter(self.formatter)

        if self._delivery.enable_heartbeat and self.visibility_timeout is not None:
            check_heartbeat_interval(self._delivery.heartbeat_interval, self.visibility_timeout, "the broker")
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
        self._inbox: Inbox | None = None
        self._outbox: Outbox | None = None
        # Consumers stopped while a receive was on the wire: shutdown() waits for it (bounded).
        self._draining: list[Consumer] = []

    # -- configuration --------------------------------------------------------------------------------
    def _check_queue(self, queue: SQSQueue) -> None:
        """A queue's settings against the broker's: checked when the queue is registered, not at send."""
        if queue.is_fifo and self.delay_seconds > 0:
            raise BrokerConfigError(
                error=f"delay_seconds is {self.delay_seconds} but queue {queue.name!r} is FIFO, "
                "which does not support per-message delays; use 0"
            )
        delivery = self._delivery
        if delivery.enable_heartbeat and queue.visibility_timeout is not None:
            check_heartbeat_interval(
                delivery.heartbeat_interval, queue.visibility_timeout, f"queue {queue.name!r}"
            )

    def _require_not_started(self, what: str) -> None:
        if self._started:
            raise _StateError(error=f"Cannot {what} after startup() has been invoked.")

    def with_queues(self, *queues: SQSQueue) -> SQSBroker:
        """Register more queues: kick routes to them by the ``queue`` label, listen() polls them all.

        A queue without its own ``wait_time_seconds`` long-polls with the broker's.
        """
        self._require_not_started("register queues")
        for queue in queues:
            queue = self._with_broker_wait(queue)
            self._check_queue(queue)
            self._queues[queue.name] = queue
        return self

    def _with_broker_wait(self, queue: SQSQueue) -> SQSQueue:
        if queue.wait_time_seconds is not None:
            return queue
        return dataclasses.replace(queue, wait_time_seconds=self.wait_time_seconds)

    def with_default_queue(self, queue: SQSQueue) -> SQSBroker:
        """Replace the default queue: the previous one is no longer resolved, polled or sent to."""
        self._require_not_started("change default queue")
        queue = self._with_broker_wait(queue)
        self._check_queue(queue)
        previous = self._default_queue
        if self._queues.get(previous.name) is previous:
            del self._queues[previous.name]
        self._default_queue = queue
        self._queues[queue.name] = queue
        self.max_number_of_messages = queue.max_number_of_messages
        self.wait_time_seconds = queue.wait_seconds
        self.visibility_timeout = queue.visibility_timeout
        return self

    def with_formatter(self, formatter: TaskiqFormatter) -> SQSBroker:
        """Set the formatter, keeping metadata unwrapping when ``expose_message_metadata`` is on."""
        return super().with_formatter(self._wrap_formatter(formatter))

    def _wrap_formatter(self, formatter: TaskiqFormatter) -> TaskiqFormatter:
        if self._delivery.expose_message_metadata and not isinstance(formatter, MetadataUnwrappingFormatter):
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
        return resolve_region(self._client_options.region_name).value

    @property
    def client_options(self) -> ClientOptions:
        """How this broker reaches AWS (shared with an `S3Backend` that is given the same value)."""
        return self._client_options

    @property
    def queue_urls(self) -> dict[str, str]:
        """Resolved queue URLs by name (empty before startup)."""
        return {name: target.url for name, target in self._targets.items()}

    @property
    def inbox(self) -> Inbox:
        """The owner of received messages (after startup); the serverless handler drives it directly."""
        if self._inbox is None:
            raise BrokerNotStartedError(operation="receive")
        return self._inbox

    def target_for(self, queue: str) -> Target:
        """The registered queue with this name, URL or ARN (after startup)."""
        if not self._started:
            raise BrokerNotStartedError(operation="receive")
        name = queue.rsplit(":", 1)[-1] if queue.startswith("arn:") else queue.rstrip("/").rsplit("/", 1)[-1]
        for target in self._targets.values():
            if target.name == name or target.url == queue:
                return target
        raise _StateError(error=f"queue {queue!r} is not registered with this broker")

    @contextlib.contextmanager
    def handle_exceptions(self, queue_name: str | None = None) -> Generator[None, None, None]:
        """Turn client-layer errors into this package's broker errors (2.1.1's helper, same meaning)."""
        try:
            yield
        except AWSError as exc:
            raise broker_error(exc, queue_name or self._default_queue.name) from exc

    # -- lifecycle ------------------------------------------------------------------------------------
    async def startup(self) -> None:
        """Open the SQS client, resolve (or create) every queue concurrently, then start taskiq's side.

        Nothing is polled until ``listen()``: a serverless handler starts the broker the same way.
        """
        if self._started:
            return
        try:
            sqs = await self._open_clients()
            if self._payload_options.create_extended_bucket:
                with self.handle_exceptions():
                    await self._payloads.ensure_bucket()
            self._targets = await _queues.resolve_targets(
                sqs,
                self._queues.values(),
                create=self._create_queues,
                handle_exceptions=self.handle_exceptions,
            )
            self._inbox = Inbox(
                sqs,
                payloads=self._payloads,
                check_task=self._check_task,
                settings=InboxSettings.from_options(self._delivery, self._payload_options),
                failed_tasks=self._failed_tasks,
            )
            self._outbox = Outbox(
                sqs,
                self._targets,
                self._default_queue.name,
                settings=self._batching,
                build_entry=self.build_entry,
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

    async def _open_clients(self) -> SQSClient:
        try:
            self._session = self._client_options.open_session()
            self._sqs = self._client_options.sqs_client(self._session)
            # Resolved now, so that a missing or broken credential source fails startup with its reason,
            # and the startup line names the source that was chosen.
            await self._sqs.credential_provider.get_credentials()
        except AWSError as exc:
            await self._close_clients()
            raise broker_error(exc) from exc
        logger.info("SQS broker: %s", self._sqs.describe())
        return self._sqs

    async def flush(self) -> None:
        """Send every buffered message now; raise `SendFailedError` naming those that could not be sent."""
        if self._outbox is not None:
            await self._outbox.flush()

    async def shutdown(self) -> None:
        """Flush buffered sends (bounded), wait for receives in flight, hand back un-acked messages, stop
        heartbeats, close everything.

        Never hangs: the flush gets ``shutdown_timeout`` seconds. Messages that could not be sent by then
        are reported through ``on_send_error`` and raised as `SendFailedError` once everything is closed.
        """
        unsent = None
        try:
            if self._outbox is not None:
                unsent = await self._outbox.aclose(self._delivery.shutdown_timeout)
            draining, self._draining = self._draining, []
            for consumer in draining:
                await consumer.drain(self._delivery.shutdown_timeout)
            if self._inbox is not None:
                await self._inbox.aclose(_SHUTDOWN_RETURN_TIMEOUT)
        finally:
            try:
                await super().shutdown()
            finally:
                self._started = False
                self._targets = {}
                await self._close_clients()
        if unsent is not None:
            raise unsent

    async def _close_clients(self) -> None:
        """Close every client, each even when closing the one before failed, then the pool we opened."""
        sqs, s3, session = self._sqs, self._s3, self._session
        self._sqs = self._s3 = self._session = None
        self._inbox = self._outbox = None
        try:
            if s3 is not None:
                await s3.aclose()
        finally:
            try:
                if sqs is not None:
                    await sqs.aclose()
            finally:
                if session is not None and not session.closed:
                    await session.aclose()

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
                    self._s3 = self._client_options.s3_client(self._session)
        return self._s3

    # -- sending --------------------------------------------------------------------------------------
    async def kick(self, message: BrokerMessage) -> None:
        """Send one task.

        Unbatched, returns once SQS has accepted it. Batched, returns once it is buffered: from then on it
        is sent, retried with backoff, or reported (``on_send_error``, ``flush()``, ``shutdown()``); when
        the buffer is full it waits up to ``send_buffer_timeout`` for room, then raises `SendFailedError`.
        Either way, a task that cannot be built (bad labels, oversize without a bucket) raises here.
        """
        if self._outbox is None:
            raise BrokerNotStartedError(operation="kick")
        await self._outbox.send(message)

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

    # -- receiving ------------------------------------------------------------------------------------
    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """Yield tasks from every registered queue.

        Closing the generator stops yielding at once; a receive already on the wire finishes in the
        background and what it returns is handed back (``shutdown()`` waits for it).
        """
        sqs = self._require_sqs("listen")
        inbox = self.inbox
        if self._delivery.enable_heartbeat:
            await self._use_heartbeats(sqs, inbox)
        consumer = Consumer(sqs, list(self._targets.values()), inbox)
        consumer.start()
        try:
            while True:
                delivery = await consumer.get()
                yield delivery.ackable
        finally:
            await consumer.aclose()
            if consumer.draining:
                self._draining.append(consumer)

    async def _use_heartbeats(self, sqs: SQSClient, inbox: Inbox) -> None:
        """Visibility timeout and interval per queue; fetched once, by consumers only."""
        missing = [t for t in self._targets.values() if not inbox.has_heartbeat(t.name)]
        timing = await _queues.heartbeat_timing(
            sqs, missing, self._delivery.heartbeat_interval, self.handle_exceptions
        )
        for name, queue_timing in timing.items():
            inbox.use_heartbeat(name, queue_timing.visibility_timeout, queue_timing.interval)

    def _check_task(self, payload: bytes) -> TaskCheck:
        """Whether taskiq can run this payload here (unknown tasks are checked in workers only)."""
        find_task = self.find_task if self.is_worker_process else None
        return check_task(payload, self.formatter, find_task)


class _StateError(BrokerConfigError, ValueError):
    """with_queues()/with_default_queue() after startup(); a ValueError as in 2.1.1."""


_O = TypeVar("_O")


def _given(
    name: str, value: _O | None, kind: type[_O], arguments: dict[str, Any], build: Callable[..., _O]
) -> _O:
    """The options value passed as ``name``, or the one built from the flat arguments of its group.

    Both at once would leave one of them silently ignored, so that is an error naming the arguments.
    """
    if value is None:
        return build(**arguments)
    if not isinstance(value, kind):
        raise BrokerConfigError(error=f"'{name}' must be a {kind.__name__}, got {type(value).__name__}")
    defaults = _FLAT_DEFAULTS
    clashing = [k for k, v in arguments.items() if k in defaults and v != defaults[k] and v is not None]
    if clashing:
        raise BrokerConfigError(error=f"pass '{name}' or {', '.join(map(repr, clashing))}, not both")
    return value


_FLAT_DEFAULTS: dict[str, Any] = {
    name: parameter.default
    for name, parameter in inspect.signature(SQSBroker.__init__).parameters.items()
    if parameter.default is not inspect.Parameter.empty
}
