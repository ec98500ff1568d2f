"""SQSBroker: taskiq's broker interface on SQS, through our own async client.

The broker is wiring: routing and label handling (`_labels`), the wire format (`_envelope`), the receive
loop (`_consumer`), heartbeats (`_heartbeat`), send and ack coalescing (`..batching`) and S3-offloaded
payloads (`..extended`). Every send goes through `_send(target, entry)` and every ack through
`_ack(queue_url, receipt_handle)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import time
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator, Iterable
from typing import Any, TypeVar, cast

import httpx
from taskiq import AsyncBroker, BrokerMessage, TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq.abc.formatter import TaskiqFormatter
from taskiq.acks import AckableMessage

from ..aws import (
    AWSError,
    ConfigurationError,
    CredentialsError,
    HTTPSession,
    Message,
    QueueDoesNotExistError,
    ReceiptHandleIsInvalidError,
    RetryPolicy,
    S3Client,
    SendMessageEntry,
    ServerSideEncryption,
    ServiceError,
    SQSClient,
    Timeouts,
    resolve_region,
)
from ..aws._credentials import CredentialsLike
from ..batching import DeleteBatcher, SendBatcher, SendBatchError, SendFailure, VisibilityBatcher
from ..exceptions import (
    BrokerConfigError,
    BrokerNotStartedError,
    ExtendedBucketNameMissingError,
    QueueNotFoundError,
    QueueNotRegisteredError,
    SendFailedError,
    SQSBrokerError,
)
from ..extended import PayloadStore, PointerError, S3Pointer, decode_pointer
from ..result_backend._keys import server_side_encryption as _sse
from ..result_backend._s3 import S3Backend
from ._config import (
    MAX_DELAY_SECONDS,
    MAX_NUMBER_OF_MESSAGES,
    MAX_VISIBILITY_TIMEOUT,
    MAX_WAIT_TIME_SECONDS,
    SQSQueue,
    check_float_at_least,
    check_int,
)
from ._consumer import Consumer, Target, make_visible
from ._envelope import (
    MalformedMessageError,
    MetadataUnwrappingFormatter,
    SQSMessageMetadata,
    decode_body,
    encode_body,
    encode_envelope,
    not_before,
    not_before_attribute,
)
from ._heartbeat import Heartbeats
from ._labels import (
    DELAY_LABEL,
    GROUP_ID_LABEL,
    QUEUE_LABEL,
    SKIP_BATCHING_LABEL,
    label_bool,
    parse_delay,
    parse_group_id,
    retry_count,
    sqs_delay_seconds,
)

__all__ = ["MAX_SQS_MESSAGE_SIZE", "SQSBroker"]

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

# SQS's limit on body plus attributes; at or above it the payload goes to S3 (2.1.1's threshold).
MAX_SQS_MESSAGE_SIZE = 1_048_576
_DEFAULT_HEARTBEAT_MAX_EXTENSIONS = 100
_MAX_DEDUPLICATION_ID = 128
# A message received this much before its not-before time runs anyway rather than being hidden again.
_NOT_BEFORE_TOLERANCE = 1.0
# Bound on handing un-acked messages back at shutdown.
_SHUTDOWN_RETURN_TIMEOUT = 10.0
# Default linger of batched deletes and visibility changes: long enough to coalesce the acks of one
# receive, short enough not to matter to a task's latency.
_ACK_LINGER = 0.02
# AWS error codes that mean "your request is invalid" (2.1.1 raised BrokerConfigError for these).
_CONFIG_CODES = frozenset(
    {
        "InvalidParameterValue",
        "InvalidParameterValueException",
        "MissingParameter",
        "NoSuchBucket",
        "InvalidAttributeValue",
        "InvalidAttributeName",
        "InvalidMessageContents",
        "UnsupportedOperation",
        "QueueAlreadyExists",
        "QueueNameExists",
        "AccessDenied",
        "AccessDeniedException",
    }
)


def broker_error(exc: BaseException, queue_name: str | None = None) -> SQSBrokerError:
    """The taskiq-layer error for a client-layer failure (the caller raises it ``from exc``)."""
    if isinstance(exc, QueueDoesNotExistError):
        return QueueNotFoundError(queue_name=queue_name or "?")
    if isinstance(exc, ServiceError):
        codes = {exc.code, exc.query_error_code}
        if any(code in _CONFIG_CODES or (code or "").endswith("InvalidParameterValue") for code in codes):
            return BrokerConfigError(error=f"{exc.code}: {exc.message}")
        return SQSBrokerError(error=str(exc))
    if isinstance(exc, (ConfigurationError, CredentialsError)):
        return BrokerConfigError(error=str(exc))
    return SQSBrokerError(error=str(exc))


def _dedup_id(task_id: str, retries: int) -> str:
    """MessageDeduplicationId: the task id, plus the retry count so that a retry is not dropped."""
    value = task_id if retries == 0 else f"{task_id}-retry-{retries}"
    if len(value) > _MAX_DEDUPLICATION_ID:
        value = hashlib.sha256(value.encode()).hexdigest()
    return value


async def _first_error_gather(coros: Iterable[Coroutine[Any, Any, _T]]) -> list[_T]:
    """Run concurrently; on the first failure cancel the rest and raise it."""
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


class _Ack:
    """The ack of one delivery; ``metadata`` says which delivery (2.1.1 attached it to the function)."""

    __slots__ = ("_broker", "_queue_name", "metadata", "pointer", "task_id")

    def __init__(
        self,
        broker: SQSBroker,
        queue_name: str,
        metadata: SQSMessageMetadata,
        task_id: str,
        pointer: S3Pointer | None,
    ) -> None:
        self._broker = broker
        self._queue_name = queue_name
        self.metadata = metadata
        self.task_id = task_id
        self.pointer = pointer

    async def __call__(self) -> None:
        await self._broker._acknowledge(self._queue_name, self)  # pyright: ignore[reportPrivateUsage]


class _FailureTracker(TaskiqMiddleware):
    """Notes which deliveries raised, so their ack can hand them back to SQS instead of deleting them.

    taskiq runs ``on_error`` inside the task's execution, before the ack of ``when_executed`` and
    ``when_saved``; with ``when_received`` the message is gone before the task runs, so there is nothing
    to redeliver.
    """

    def __init__(self, failed: _RecentSet) -> None:
        super().__init__()
        self._failed = failed

    def on_error(self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException) -> None:
        self._failed.add(message.task_id)


class _RecentSet:
    """A set that forgets its oldest members beyond ``limit``.

    Failed task ids are normally removed by their ack; with ``ack_type=when_received`` the ack comes first
    and nothing would ever remove them, so the set must not grow without bound in a long-lived worker.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._items: dict[str, None] = {}
        self._limit = limit

    def add(self, item: str) -> None:
        self._items.pop(item, None)
        self._items[item] = None
        if len(self._items) > self._limit:
            del self._items[next(iter(self._items))]

    def discard(self, item: str) -> None:
        self._items.pop(item, None)

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __len__(self) -> int:
        return len(self._items)


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
        _check_types(
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
        )
        if on_send_error is not None and not callable(on_send_error):
            raise BrokerConfigError(error=f"'on_send_error' must be callable, got {on_send_error!r}")
        # -- validation, in 2.1.1's order: heartbeat, messages, delay, wait, then batching ------------
        if heartbeat_interval is not None:
            interval = _as_positive_float(heartbeat_interval)
            if interval is None:
                raise BrokerConfigError(
                    error=f"'heartbeat_interval' must be greater than 0, got {heartbeat_interval}"
                )
            heartbeat_interval = interval
        extensions = heartbeat_max_extensions
        if isinstance(extensions, bool) or not isinstance(extensions, int) or extensions < 1:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise BrokerConfigError(
                error=f"'heartbeat_max_extensions' must be at least 1, got {heartbeat_max_extensions}"
            )
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
            self._check_heartbeat_interval(heartbeat_interval, self.visibility_timeout, "the broker")
        self._batch_size = check_int("BatchSize", batch_size, 1, 10)
        self._batch_timeout = check_float_at_least("BatchTimeout", batch_timeout, 0.1)
        self._enable_batching = bool(enable_batching)
        self._skip_batch_tasks = set(skip_batch_tasks or [])
        self.max_delay_seconds = check_int("max_delay_seconds", max_delay_seconds, 0, MAX_DELAY_SECONDS)
        self._redelivery_delay = check_int("redelivery_delay", redelivery_delay, 0, MAX_VISIBILITY_TIMEOUT)
        self._ack_linger = _check_range_float("ack_batch_linger", ack_batch_linger, 0.0, 0.05)
        self._shutdown_timeout = _check_range_float("shutdown_timeout", shutdown_timeout, 0.1, 3600.0)
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
    @staticmethod
    def _check_heartbeat_interval(interval: float | None, visibility_timeout: int, where: str) -> None:
        if visibility_timeout == 0:
            raise BrokerConfigError(
                error=f"enable_heartbeat needs a visibility_timeout above 0 for {where}, got 0"
            )
        if interval is not None and interval >= visibility_timeout:
            raise BrokerConfigError(
                error=f"'heartbeat_interval' must be below the visibility timeout of {where} "
                f"({visibility_timeout} s), got {interval}"
            )

    def _check_queue(self, queue: SQSQueue) -> None:
        if queue.is_fifo and self.delay_seconds > 0:
            raise BrokerConfigError(
                error=f"delay_seconds is {self.delay_seconds} but queue {queue.name!r} is FIFO, "
                "which does not support per-message delays; use 0"
            )
        if self._enable_heartbeat and queue.visibility_timeout is not None:
            self._check_heartbeat_interval(
                self._heartbeat_interval, queue.visibility_timeout, f"queue {queue.name!r}"
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
            urls = await _first_error_gather(self._resolve(q) for q in self._queues.values())
            self._targets = {
                q.name: Target(q, url) for q, url in zip(self._queues.values(), urls, strict=True)
            }
            for name, target in self._targets.items():
                logger.info("Resolved queue '%s' URL: %s", name, target.url)
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
        session = HTTPSession(http_client=self._http_client, timeouts=self._timeouts)
        try:
            self._sqs = SQSClient(session=session, **self._client_options)
        except BaseException as exc:
            # The session is only closed by its last client; this one never got one.
            await session.aclose()
            if isinstance(exc, AWSError):
                raise broker_error(exc) from exc
            raise
        self._session = session
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

    async def _resolve(self, queue: SQSQueue) -> str:
        if queue.url is not None:
            return queue.url
        sqs = self._require_sqs("startup")
        try:
            return await sqs.get_queue_url(queue.name, owner_account_id=queue.owner_account_id)
        except QueueDoesNotExistError as exc:
            if self._create_queues and queue.creatable():
                return await self._create_queue(queue)
            raise QueueNotFoundError(queue_name=queue.name) from exc
        except AWSError as exc:
            raise broker_error(exc, queue.name) from exc

    async def _create_queue(self, queue: SQSQueue) -> str:
        sqs = self._require_sqs("startup")
        attributes = {str(k): str(v) for k, v in queue.options.items()}
        fifo = {"FifoQueue": "true"} if queue.is_fifo else {}
        attributes.update(fifo)
        if queue.is_fifo:
            attributes.setdefault("ContentBasedDeduplication", "true")
        if queue.visibility_timeout is not None:
            attributes.setdefault("VisibilityTimeout", str(queue.visibility_timeout))
        with self.handle_exceptions(queue.name):
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
                    await _bounded(batcher.aclose(), _SHUTDOWN_RETURN_TIMEOUT, "pending acks")
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
        by_url: dict[str, list[str]] = {}
        for receipt_handle, url in self._in_flight.items():
            by_url.setdefault(url, []).append(receipt_handle)
        self._in_flight.clear()
        logger.info("Handing %d un-acked messages back to SQS", sum(map(len, by_url.values())))
        try:
            await asyncio.wait_for(
                asyncio.gather(*(make_visible(sqs, url, rhs) for url, rhs in by_url.items())),
                _SHUTDOWN_RETURN_TIMEOUT,
            )
        except asyncio.TimeoutError:
            logger.warning("Timed out handing un-acked messages back; they reappear after their timeout")

    async def _close_clients(self) -> None:
        sqs, s3, session = self._sqs, self._s3, self._session
        self._sqs = self._s3 = self._session = None
        self._heartbeats = None
        self._sender = self._deleter = self._visibility = None
        self._heartbeat_settings = {}
        self._in_flight.clear()
        try:
            if s3 is not None:
                await s3.aclose()
        finally:
            try:
                if sqs is not None:
                    await sqs.aclose()
            finally:
                if session is not None and not session.closed and sqs is None:
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
                    self._s3 = S3Client(session=self._session, **self._client_options)
        return self._s3

    # -- sending --------------------------------------------------------------------------------------
    def _route(self, message: BrokerMessage) -> Target:
        name = message.labels.get(QUEUE_LABEL)
        name = self._default_queue.name if name is None or name == "" else str(name)
        target = self._targets.get(name)
        if target is None:
            if not self._started:
                raise BrokerNotStartedError(operation="kick")
            raise QueueNotRegisteredError(queue_name=name, registered=str(sorted(self._targets)))
        return target

    async def kick(self, message: BrokerMessage) -> None:
        """Send one task.

        Unbatched, returns once SQS has accepted it. Batched, returns once it is buffered: from then on it
        is sent, retried with backoff, or reported (``on_send_error``, ``flush()``, ``shutdown()``).
        Either way, a task that cannot be built (bad labels, oversize without a bucket) raises here.
        """
        self._require_sqs("kick")
        target = self._route(message)
        entry = await self.build_entry(message, target)
        if self._sender is not None and self._batchable(message):
            try:
                self._sender.submit(target.url, entry)
            except ConfigurationError as exc:  # closed by shutdown(): the caller must know it was not sent
                raise BrokerNotStartedError(operation="kick") from exc
            return
        await self._send(target, entry)

    def _batchable(self, message: BrokerMessage) -> bool:
        if message.task_name in self._skip_batch_tasks:
            return False
        return not label_bool(message.labels.get(SKIP_BATCHING_LABEL))

    async def build_entry(self, message: BrokerMessage, target: Target) -> SendMessageEntry:
        """The SQS message for a task: delay, group and deduplication ids, body, S3 offload."""
        queue = target.queue
        labels = message.labels
        retries = retry_count(labels)
        raw_delay = labels.get(DELAY_LABEL)
        delay = float(self.delay_seconds) if raw_delay is None else parse_delay(raw_delay)
        attributes: dict[str, Any] = {}
        delay_seconds: int | None = None
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
            elif delay <= self.max_delay_seconds:
                delay_seconds = sqs_delay_seconds(delay)
            else:
                delay_seconds = self.max_delay_seconds
                attributes.update(not_before_attribute(time.time() + delay))
        group_id: str | None = None
        if queue.is_fifo or self._is_fair_queue:
            group_id = parse_group_id(labels.get(GROUP_ID_LABEL, message.task_name))
        dedup_id: str | None = None
        if queue.is_fifo and self.use_task_id_for_deduplication:
            dedup_id = _dedup_id(message.task_id, retries)

        body, body_attributes = encode_body(message.message)
        entry = SendMessageEntry(
            message.task_id,
            body,
            delay_seconds=delay_seconds,
            message_attributes={**body_attributes, **attributes} or None,
            message_group_id=group_id,
            message_deduplication_id=dedup_id,
        )
        if self._payloads.needs_offload(entry):
            if not self.s3_extended_bucket_name:
                raise ExtendedBucketNameMissingError
            with self.handle_exceptions(queue.name):
                entry = await self._payloads.offload(entry, message.message, attributes)
        return entry

    async def _send(self, target: Target, entry: SendMessageEntry) -> None:
        """The send seam: one SendMessage now; the batcher replaces this with SendMessageBatch."""
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

        async def one(target: Target) -> tuple[str, int]:
            if target.queue.visibility_timeout is not None:
                return target.name, target.queue.visibility_timeout
            with self.handle_exceptions(target.name):
                attributes = await sqs.get_queue_attributes(target.url, ["VisibilityTimeout"])
            return target.name, int(attributes.get("VisibilityTimeout", "30"))

        missing = [t for t in self._targets.values() if t.name not in self._heartbeat_settings]
        for name, timeout in await _first_error_gather(one(t) for t in missing):
            interval = self._heartbeat_interval or max(1.0, timeout / 2)
            if timeout == 0:
                logger.warning("Queue %s has a visibility timeout of 0: no heartbeat for it", name)
            elif interval >= timeout:
                logger.warning(
                    "heartbeat_interval %.1f s is not below the %d s visibility timeout of queue %s; "
                    "using %.1f s",
                    interval,
                    timeout,
                    name,
                    timeout / 2,
                )
                interval = timeout / 2
            self._heartbeat_settings[name] = (timeout, interval)

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
        try:
            due = not_before(message.message_attributes)
            if due is not None and due - time.time() > _NOT_BEFORE_TOLERANCE:
                await self._hide_until(target, message, due)
                return None
            pointer = decode_pointer(message.body, message.message_attributes)
            if pointer is not None:
                payload = await self._payloads.fetch(pointer, message.message_id)
            else:
                payload = decode_body(message.body, message.message_attributes)
        except (MalformedMessageError, PointerError) as exc:
            logger.error(
                "Message %s from queue %s is malformed (%s); leaving it in SQS for redrive",
                message.message_id,
                target.name,
                exc,
            )
            return None
        task_id, problem = self._task_problem(payload)
        if problem is not None:
            logger.error(
                "Message %s from queue %s is not a task this worker can run (%s); leaving it in SQS "
                "for redrive",
                message.message_id,
                target.name,
                problem,
            )
            return None
        count = message.attributes.get("ApproximateReceiveCount", "")
        metadata = SQSMessageMetadata(
            receipt_handle=message.receipt_handle,
            queue_url=target.url,
            message_id=message.message_id or None,
            approximate_receive_count=int(count) if count.isdigit() else None,
        )
        if self._expose_message_metadata:
            payload = encode_envelope(metadata, payload)
        ack = _Ack(self, target.name, metadata, task_id, pointer if self._delete_payloads else None)
        return AckableMessage(data=payload, ack=ack)

    def _task_problem(self, payload: bytes) -> tuple[str, str | None]:
        """The task id, and why taskiq could not run this payload (None when it can).

        taskiq would ack (delete) a message it cannot parse; we leave it in SQS for redrive instead.
        """
        try:
            task_message = self.formatter.loads(payload)
            task_message.parse_labels()
        except Exception as exc:
            return "", f"{type(exc).__name__}: {exc}"
        if self.is_worker_process and self.find_task(task_message.task_name) is None:
            return task_message.task_id, f"unknown task {task_message.task_name!r}"
        return task_message.task_id, None

    async def _hide_until(self, target: Target, message: Message, due: float) -> None:
        """A long-delayed message arrived early: hide it again until it is due (at most 12 h a time)."""
        await self._on_released(target, message)
        remaining = min(max(int(due - time.time()) + 1, 1), MAX_VISIBILITY_TIMEOUT)
        sqs = self._require_sqs("listen")
        try:
            await sqs.change_message_visibility(target.url, message.receipt_handle, remaining)
        except AWSError as exc:
            logger.warning("Could not hide early message %s for %d s: %s", message.message_id, remaining, exc)
        else:
            logger.debug("Message %s is not due; hidden for %d s", message.message_id, remaining)

    # -- acknowledging --------------------------------------------------------------------------------
    async def _acknowledge(self, queue_name: str, delivery: _Ack) -> None:
        metadata = delivery.metadata
        self._in_flight.pop(metadata.receipt_handle, None)
        if self._heartbeats is not None:
            await self._heartbeats.stop(metadata.receipt_handle)
        if self._redeliver_failed and delivery.task_id in self._failed_tasks:
            self._failed_tasks.discard(delivery.task_id)
            await self._redeliver(queue_name, metadata)
            return
        try:
            await self._ack(metadata.queue_url, metadata.receipt_handle)
        except ReceiptHandleIsInvalidError as exc:
            logger.warning(
                "Ack of message %s on queue %s came too late (%s): it was already redelivered, so "
                "its task may run again",
                metadata.message_id,
                queue_name,
                exc.code,
            )
        except AWSError as exc:
            raise broker_error(exc, queue_name) from exc
        if delivery.pointer is not None:
            await self._payloads.delete(delivery.pointer)

    async def _redeliver(self, queue_name: str, metadata: SQSMessageMetadata) -> None:
        """The task raised: let SQS deliver it again after ``redelivery_delay`` (and, past the queue's
        maxReceiveCount, move it to the dead-letter queue) instead of deleting it."""
        logger.info(
            "Task of message %s failed; SQS redelivers it in %d s (receive count so far: %s)",
            metadata.message_id,
            self._redelivery_delay,
            metadata.approximate_receive_count,
        )
        if self._visibility is None:
            raise BrokerNotStartedError(operation="ack")
        try:
            await self._visibility.change(metadata.queue_url, metadata.receipt_handle, self._redelivery_delay)
        except ReceiptHandleIsInvalidError:
            logger.warning("Message %s was already redelivered; nothing to hand back", metadata.message_id)
        except AWSError as exc:
            raise broker_error(exc, queue_name) from exc

    async def _ack(self, queue_url: str, receipt_handle: str) -> None:
        """Delete through DeleteMessageBatch; returns once SQS deleted it (stale handles are logged)."""
        if self._deleter is None:
            raise BrokerNotStartedError(operation="ack")
        await self._deleter.delete(queue_url, receipt_handle)


def _check_types(
    *,
    flags: dict[str, object],
    names: dict[str, object],
    instances: dict[str, tuple[object, type]],
) -> None:
    """Wrong types fail at construction with the parameter's name, not later deep inside a request."""
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise BrokerConfigError(error=f"'{name}' must be True or False, got {value!r}")
    for name, value in names.items():
        if value is None:
            continue
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
            raise BrokerConfigError(error=f"'{name}' must be a list of names, got {value!r}")
        items = cast(Iterable[object], value)
        if not all(isinstance(item, str) and item for item in items):
            raise BrokerConfigError(error=f"'{name}' must contain only non-empty strings, got {value!r}")
    for name, (value, expected) in instances.items():
        if value is not None and not isinstance(value, expected):
            raise BrokerConfigError(
                error=f"'{name}' must be a {expected.__module__}.{expected.__qualname__}, got {value!r}"
            )


async def _bounded(coro: Coroutine[Any, Any, None], timeout: float, what: str) -> None:
    """Await ``coro`` for at most ``timeout`` seconds (``asyncio.wait``: never swallows a cancellation)."""
    task = asyncio.ensure_future(coro)
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        logger.warning("Shutdown: gave up waiting for %s after %.0f s", what, timeout)
    elif not task.cancelled() and task.exception() is not None:
        logger.warning("Shutdown: %s failed: %s", what, task.exception())


def _check_range_float(name: str, value: object, low: float, high: float) -> float:
    number = None if isinstance(value, bool) or not isinstance(value, (int, float)) else float(value)
    if number is None or not math.isfinite(number) or not low <= number <= high:
        raise BrokerConfigError(error=f"'{name}' is {value!r}; allowed range is {low}..{high}")
    return number


def _as_positive_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number > 0 else None


class _StateError(BrokerConfigError, ValueError):
    """with_queues()/with_default_queue() after startup(); a ValueError as in 2.1.1."""
