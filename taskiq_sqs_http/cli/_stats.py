"""``taskiq-sqs stats``: message counts of queues and of their dead-letter queues."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, cast

from ._context import CLIError, Operator, QueueRef
from ._output import Cell, emit_json, render_table

__all__ = ["QueueStats", "collect_stats", "print_stats"]

_COUNTS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "RedrivePolicy",
)


@dataclass(slots=True)
class Counts:
    visible: int | None = None
    in_flight: int | None = None
    delayed: int | None = None


@dataclass(slots=True)
class QueueStats:
    queue: str
    url: str | None
    visible: int | None = None
    in_flight: int | None = None
    delayed: int | None = None
    dead_letter_queue: str | None = None
    dead_letter_url: str | None = None
    max_receive_count: int | None = None
    dlq_visible: int | None = None
    dlq_in_flight: int | None = None
    dlq_delayed: int | None = None
    error: str | None = None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _counts(attributes: dict[str, str]) -> Counts:
    return Counts(
        _int(attributes.get("ApproximateNumberOfMessages")),
        _int(attributes.get("ApproximateNumberOfMessagesNotVisible")),
        _int(attributes.get("ApproximateNumberOfMessagesDelayed")),
    )


def redrive_policy(attributes: dict[str, str]) -> tuple[str, int | None] | None:
    """(dead-letter queue ARN, maxReceiveCount) of a queue, None when it has no redrive policy."""
    raw = attributes.get("RedrivePolicy")
    if not raw:
        return None
    try:
        policy: Any = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(policy, dict):
        return None
    fields = cast(dict[str, Any], policy)
    arn = fields.get("deadLetterTargetArn")
    if not isinstance(arn, str):
        return None
    count = fields.get("maxReceiveCount")
    return arn, _int(str(count)) if count is not None else None


async def _one(op: Operator, name: str, owner_account_id: str | None) -> QueueStats:
    try:
        queue = await op.queue(name, owner_account_id=owner_account_id)
    except CLIError as exc:
        return QueueStats(queue=name, url=None, error=str(exc))
    row = QueueStats(queue=queue.name, url=queue.url)
    try:
        counts = await op.attributes(queue, *_COUNTS)
    except CLIError as exc:
        row.error = str(exc)
        return row
    own = _counts(counts)
    row.visible, row.in_flight, row.delayed = own.visible, own.in_flight, own.delayed
    policy = redrive_policy(counts)
    if policy is None:
        return row
    arn, row.max_receive_count = policy
    row.dead_letter_queue = arn.rsplit(":", 1)[-1]
    try:
        dlq: QueueRef = await op.queue_from_arn(arn)
        row.dead_letter_url = dlq.url
        dlq_counts = _counts(await op.attributes(dlq, *_COUNTS[:3]))
    except CLIError as exc:
        row.error = f"dead-letter queue: {exc}"
        return row
    row.dlq_visible, row.dlq_in_flight, row.dlq_delayed = (
        dlq_counts.visible,
        dlq_counts.in_flight,
        dlq_counts.delayed,
    )
    return row


async def collect_stats(op: Operator, queues: Sequence[tuple[str, str | None]]) -> list[QueueStats]:
    """Counts of every (name or URL, owner account) pair, concurrently; failures are per row."""
    return list(await asyncio.gather(*(_one(op, name, account) for name, account in queues)))


def print_stats(rows: Sequence[QueueStats], as_json: bool) -> None:
    if as_json:
        emit_json({"queues": [asdict(r) for r in rows]})
        return
    table: list[list[Cell]] = []
    for r in rows:
        if r.error is not None and r.visible is None:
            table.append([r.queue, None, None, None, f"error: {r.error}"])
            continue
        note = "no DLQ" if r.dead_letter_queue is None else f"DLQ after {r.max_receive_count} receives"
        if r.error is not None:
            note = f"error: {r.error}"
        table.append([r.queue, r.visible, r.in_flight, r.delayed, note])
        if r.dead_letter_queue is not None and r.dead_letter_url is not None:
            table.append([f"  dlq: {r.dead_letter_queue}", r.dlq_visible, r.dlq_in_flight, r.dlq_delayed, ""])
    print(render_table(["QUEUE", "VISIBLE", "IN FLIGHT", "DELAYED", "NOTE"], table))
