"""``taskiq-sqs peek``: what is waiting in a queue, decoded, without running it.

SQS has no read-only look: a peek *receives* the messages (their receive count goes up by one, which counts
towards a redrive policy's maxReceiveCount) and then hands them back at once (visibility 0). Messages are
decoded the way a worker decodes them: the broker's body encoding (`decode_body`) and both S3 pointer
formats (`decode_pointer`); the task itself is read as taskiq's JSON, or with the formatter of the broker
given by ``--app``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import orjson

from ..aws import AWSError, Message
from ..broker._envelope import BODY_ENCODING_ATTRIBUTE, NOT_BEFORE_ATTRIBUTE, decode_body
from ..extended import PointerError, decode_pointer
from ._context import Operator, QueueRef
from ._output import Cell, emit_json, preview, render_table, warn
from ._stats import redrive_policy

__all__ = ["PEEK_NOTE", "Peeked", "peek", "print_peek"]

PEEK_NOTE = (
    "a peek is a receive: each message shown now has a receive count one higher (it counts towards the "
    "queue's maxReceiveCount), and was handed back with visibility 0"
)
_ARGS_WIDTH = 60
# Messages stay hidden while the peek gathers them, so later receives of the same peek get new ones.
PEEK_VISIBILITY = 30

Loads = Callable[[bytes], Any]


@dataclass(slots=True)
class Peeked:
    message_id: str
    receive_count: int
    payload_format: str
    location: str
    size: int | None = None
    task_id: str | None = None
    task_name: str | None = None
    labels: dict[str, str] = field(default_factory=dict[str, str])
    args: str | None = None
    message_group_id: str | None = None
    not_before: float | None = None
    to_dlq_on_next_receive: bool = False
    error: str | None = None


def _preview_args(args: Sequence[Any], kwargs: dict[str, Any]) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return preview(", ".join(parts), _ARGS_WIDTH)


def _read_task(row: Peeked, payload: bytes, loads: Loads | None) -> None:
    """Fill in the task's fields from its payload (taskiq's JSON, or the app's formatter)."""
    try:
        if loads is not None:
            message = loads(payload)
            data: dict[str, Any] = {
                "task_id": message.task_id,
                "task_name": message.task_name,
                "labels": message.labels,
                "args": message.args,
                "kwargs": message.kwargs,
            }
        else:
            raw: Any = orjson.loads(payload)
            if not isinstance(raw, dict) or "task_name" not in raw:
                raise ValueError("not a taskiq message")
            data = dict(raw)  # pyright: ignore[reportUnknownArgumentType]
    except Exception as exc:
        hint = "" if loads is not None else "; pass --app module:broker to decode with its formatter"
        row.error = f"cannot read the task ({type(exc).__name__}: {preview(str(exc), 80)}){hint}"
        return
    row.task_id = str(data.get("task_id"))
    row.task_name = str(data.get("task_name"))
    labels: Any = data.get("labels") or {}
    if isinstance(labels, dict):
        row.labels = {str(k): str(v) for k, v in cast(dict[Any, Any], labels).items()}
    args: Any = data.get("args") or []
    kwargs: Any = data.get("kwargs") or {}
    row.args = _preview_args(
        list(args) if isinstance(args, (list, tuple)) else [args],  # pyright: ignore[reportUnknownArgumentType]
        dict(kwargs) if isinstance(kwargs, dict) else {},  # pyright: ignore[reportUnknownArgumentType]
    )


async def _decode(op: Operator, message: Message, loads: Loads | None, fetch: bool) -> Peeked:
    row = Peeked(
        message_id=message.message_id,
        receive_count=message.receive_count,
        payload_format="text",
        location="sqs",
        message_group_id=message.attributes.get("MessageGroupId"),
    )
    attributes = message.message_attributes
    due = attributes.get(NOT_BEFORE_ATTRIBUTE)
    if due is not None and due.string_value:
        try:
            row.not_before = float(due.string_value)
        except ValueError:
            row.error = f"{NOT_BEFORE_ATTRIBUTE} is {due.string_value!r}"
    try:
        pointer = decode_pointer(message.body, attributes)
    except PointerError as exc:
        row.payload_format = "bad S3 pointer"
        row.error = str(exc)
        return row
    if pointer is not None:
        row.payload_format = f"s3 pointer ({pointer.format.value})"
        row.location = f"s3://{pointer.bucket}/{pointer.key}"
        if not fetch:
            return row
        try:
            payload = (await op.s3.get_object(pointer.bucket, pointer.key)).body
        except AWSError as exc:
            row.error = f"cannot read {row.location}: {exc}"
            return row
    else:
        if BODY_ENCODING_ATTRIBUTE in attributes:
            row.payload_format = "base64"
        try:
            payload = decode_body(message.body, attributes)
        except ValueError as exc:
            row.payload_format = "malformed"
            row.error = str(exc)
            return row
    row.size = len(payload)
    _read_task(row, payload, loads)
    return row


async def _receive(op: Operator, queue: QueueRef, count: int, wait: int) -> list[Message]:
    """Up to ``count`` distinct messages, kept hidden until all are gathered."""
    messages: dict[str, Message] = {}
    while len(messages) < count:
        batch = await op.sqs.receive_message(
            queue.url,
            max_number_of_messages=min(10, count - len(messages)),
            wait_time_seconds=wait,
            visibility_timeout=PEEK_VISIBILITY,
        )
        fresh = [m for m in batch if m.message_id not in messages]
        if not fresh:
            break
        for message in fresh:
            messages[message.message_id] = message
    return list(messages.values())


async def peek(
    op: Operator, queue: QueueRef, count: int, *, wait: int, loads: Loads | None, fetch: bool
) -> tuple[list[Peeked], list[str]]:
    """The decoded messages, and the ids of any that could not be handed back.

    Each row says whether the peek used up the message's last receive: with a redrive policy, SQS moves
    a message whose receive count has reached maxReceiveCount to the dead-letter queue on its next receive,
    so the worker will never see it.
    """
    policy = redrive_policy(await op.attributes(queue, "RedrivePolicy"))
    max_receives = policy[1] if policy is not None else None
    messages = await _receive(op, queue, count, wait)
    try:
        rows = [await _decode(op, m, loads, fetch) for m in messages]
    finally:
        failed = await op.hand_back(queue, messages) if messages else []
    for row in rows:
        row.to_dlq_on_next_receive = max_receives is not None and row.receive_count >= max_receives
    return rows, failed


def print_peek(queue: QueueRef, rows: Sequence[Peeked], failed: Sequence[str], as_json: bool) -> None:
    if as_json:
        emit_json(
            {
                "queue": queue.name,
                "url": queue.url,
                "messages": [asdict(r) for r in rows],
                "not_handed_back": list(failed),
                "note": PEEK_NOTE,
            }
        )
    else:
        table: list[list[Cell]] = []
        for r in rows:
            labels = ", ".join(f"{k}={v}" for k, v in r.labels.items())
            task = r.task_name if r.error is None else f"{r.task_name or '?'} ({r.error})"
            if r.not_before is not None:
                labels = (
                    (labels + ", " if labels else "")
                    + "due "
                    + time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.not_before))
                )
            table.append(
                [r.task_id, task, r.receive_count, r.payload_format, r.location, preview(labels, 50), r.args]
            )
        if rows:
            print(render_table(["TASK ID", "TASK", "RECEIVES", "FORMAT", "WHERE", "LABELS", "ARGS"], table))
        else:
            print(f"{queue.name}: no visible messages")
    if rows:
        warn(f"note: {PEEK_NOTE}")
    doomed = [r.task_id or r.message_id for r in rows if r.to_dlq_on_next_receive]
    if doomed:
        warn(
            f"warning: {len(doomed)} message(s) reached the queue's maxReceiveCount; SQS moves them to the "
            f"dead-letter queue on their next receive: {', '.join(doomed)}"
        )
    if failed:
        warn(
            f"{len(failed)} message(s) could not be handed back and stay hidden for up to {PEEK_VISIBILITY} s"
        )
