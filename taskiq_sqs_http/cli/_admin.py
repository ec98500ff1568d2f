"""``taskiq-sqs purge`` and ``taskiq-sqs create``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..aws import S3Error, ServiceError
from ._context import CLIError, Operator, QueueRef, apply_overrides
from ._output import Cell, emit_json, render_table, warn
from ._stats import redrive_policy

__all__ = ["Created", "create", "print_created", "purge"]


async def purge(op: Operator, queue: QueueRef, as_json: bool) -> None:
    """PurgeQueue, after counting what it is about to delete (SQS allows one purge per queue a minute)."""
    counts = await op.attributes(
        queue, "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"
    )
    visible = int(counts.get("ApproximateNumberOfMessages", "0"))
    in_flight = int(counts.get("ApproximateNumberOfMessagesNotVisible", "0"))
    try:
        await op.sqs.purge_queue(queue.url)
    except ServiceError as exc:
        if "PurgeQueueInProgress" in (exc.code, exc.query_error_code or ""):
            raise CLIError(
                f"queue {queue.name!r} was purged less than 60 seconds ago; SQS allows one purge a minute"
            ) from None
        raise
    if as_json:
        emit_json(
            {"queue": queue.name, "url": queue.url, "purged_visible": visible, "purged_in_flight": in_flight}
        )
    else:
        print(
            f"{queue.name}: purged (about {visible} visible and {in_flight} in-flight messages); "
            "SQS may take up to 60 seconds to finish"
        )


@dataclass(slots=True)
class Created:
    kind: str  # "queue", "dead-letter queue", "bucket"
    name: str
    status: str  # "created", "exists", "missing"
    detail: str = ""
    url: str | None = None


async def _queue_exists(op: Operator, name: str, owner_account_id: str | None) -> bool:
    try:
        await op.queue(name, owner_account_id=owner_account_id)
    except CLIError:
        return False
    return True


async def _bucket(op: Operator, bucket: str, role: str) -> Created:
    try:
        await op.s3.head_bucket(bucket)
        return Created("bucket", bucket, "exists", role)
    except S3Error as exc:
        if exc.status != 404 and exc.code not in ("404", "NoSuchBucket", "NotFound"):
            raise
    try:
        await op.s3.create_bucket(bucket)
    except S3Error as exc:
        if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
        return Created("bucket", bucket, "exists", role)
    return Created("bucket", bucket, "created", role)


def _buckets(broker: Any) -> list[tuple[str, str]]:
    from ..result_backend import S3Backend

    found: list[tuple[str, str]] = []
    backend: Any = broker.result_backend
    if isinstance(backend, S3Backend):
        found.append((backend.bucket_name, "results"))
    extended: Any = getattr(broker, "s3_extended_bucket_name", None)
    if isinstance(extended, str) and extended:
        found.append((extended, "extended payloads"))
    return found


async def create(op: Operator, broker: Any, overrides: dict[str, str]) -> list[Created]:
    """Provision what a broker uses: its buckets here, its queues and DLQs through its own startup.

    Queues are created by the broker itself (``startup()`` with ``create_queues``), so they get exactly the
    attributes, FIFO settings and redrive policy a worker started with ``create_queues=True`` would give
    them. Existing queues are left as they are.
    """
    queues: dict[str, Any] = dict(broker.queues)
    rows: list[Created] = []
    existed: dict[str, bool] = {}
    for queue in queues.values():
        existed[queue.name] = queue.url is not None or await _queue_exists(
            op, queue.name, queue.owner_account_id
        )
        if queue.dead_letter_queue is not None:
            existed[queue.dead_letter_queue] = await _queue_exists(op, queue.dead_letter_queue, None)
    for bucket, role in _buckets(broker):
        rows.append(await _bucket(op, bucket, role))

    apply_overrides(broker, overrides)
    if not hasattr(broker, "_create_queues"):
        raise CLIError("this SQSBroker cannot be asked to create its queues (no create_queues setting)")
    broker._create_queues = True  # the constructor flag, set on an already built broker
    await broker.startup()
    try:
        urls: dict[str, str] = dict(broker.queue_urls)
    finally:
        await broker.shutdown()

    for queue in queues.values():
        ref = QueueRef(queue.name, urls[queue.name])
        policy = redrive_policy(await op.attributes(ref, "RedrivePolicy"))
        detail = "no dead-letter queue"
        if policy is not None:
            detail = f"DLQ {policy[0].rsplit(':', 1)[-1]} after {policy[1]} receives"
        elif queue.dead_letter_queue is not None:
            detail = (
                f"existing queue has no redrive policy to {queue.dead_letter_queue}; create changes nothing"
            )
        rows.append(
            Created("queue", queue.name, "exists" if existed[queue.name] else "created", detail, ref.url)
        )
        if queue.dead_letter_queue is not None:
            dlq_exists = await _queue_exists(op, queue.dead_letter_queue, None)
            status = (
                "missing" if not dlq_exists else ("exists" if existed[queue.dead_letter_queue] else "created")
            )
            detail = f"for {queue.name}"
            if status == "missing":
                detail = (
                    f"not created: {queue.name} already existed, and create does not change existing queues"
                )
            rows.append(Created("dead-letter queue", queue.dead_letter_queue, status, detail))
    return rows


def print_created(rows: list[Created], as_json: bool) -> None:
    if as_json:
        emit_json({"resources": [asdict(r) for r in rows]})
    else:
        table: list[list[Cell]] = [[r.kind, r.name, r.status, r.detail] for r in rows]
        print(render_table(["KIND", "NAME", "STATUS", "DETAIL"], table))
    for row in rows:
        if row.status == "missing":
            warn(f"{row.kind} {row.name} does not exist: {row.detail}")
