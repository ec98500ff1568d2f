"""SendBatcher over a fake client: every buffered message is sent, retried, or reported. Never lost."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest

from taskiq_sqs_http.aws import RetryPolicy, ServiceError, TransportError
from taskiq_sqs_http.aws.sqs import (
    BatchResult,
    BatchResultError,
    ChangeVisibilityEntry,
    DeleteMessageEntry,
    SendMessageBatchResult,
    SendMessageEntry,
    SendMessageResult,
)
from taskiq_sqs_http.batching import SendBatcher, SendBatchError, SendFailure

QUEUE = "https://sqs.eu-west-1.amazonaws.com/1/jobs"
FIFO = "https://sqs.eu-west-1.amazonaws.com/1/jobs.fifo"

Fault = Callable[[int, Sequence[SendMessageEntry]], "SendMessageBatchResult | Exception | None"]


class FakeSQS:
    """Records what reached 'SQS'; a fault function may fail whole requests or single entries."""

    def __init__(self, fault: Fault | None = None, delay: float = 0.0) -> None:
        self.fault = fault
        self.delay = delay
        self.requests: list[list[str]] = []
        self.delivered: list[str] = []
        self.calls = 0

    async def send_message_batch(
        self, queue_url: str, entries: Sequence[SendMessageEntry]
    ) -> SendMessageBatchResult:
        self.calls += 1
        assert 1 <= len(entries) <= 10
        assert sum(e.wire_size() for e in entries) <= 1_048_576
        if self.delay:
            await asyncio.sleep(self.delay)
        self.requests.append([e.body for e in entries])
        outcome = self.fault(self.calls, entries) if self.fault else None
        if isinstance(outcome, Exception):
            raise outcome
        if isinstance(outcome, SendMessageBatchResult):
            for entry in entries:
                if entry.id in outcome.successful:
                    self.delivered.append(entry.body)
            return outcome
        self.delivered.extend(e.body for e in entries)
        return SendMessageBatchResult({e.id: SendMessageResult(f"m-{e.body}") for e in entries}, [])

    async def delete_message_batch(
        self, queue_url: str, entries: Sequence[DeleteMessageEntry]
    ) -> BatchResult:
        raise NotImplementedError

    async def change_message_visibility_batch(
        self, queue_url: str, entries: Sequence[ChangeVisibilityEntry]
    ) -> BatchResult:
        raise NotImplementedError


def entry(i: int | str, size: int = 0, group: str | None = None) -> SendMessageEntry:
    body = str(i) if not size else str(i) + "x" * (size - len(str(i)))
    return SendMessageEntry(f"task-{i}", body, message_group_id=group)


def batcher(client: FakeSQS, **kwargs: object) -> SendBatcher:
    kwargs.setdefault("retry_policy", RetryPolicy.testing())
    kwargs.setdefault("linger", 0.05)
    return SendBatcher(client, **kwargs)  # type: ignore[arg-type]


async def test_send_batcher_batches_by_ten_and_flushes() -> None:
    """25 messages become batches of 10, 10 and 5; flush returns when all are in SQS."""
    client = FakeSQS()
    sender = batcher(client, linger=5.0)
    futures = [sender.submit(QUEUE, entry(i)) for i in range(25)]
    await asyncio.wait_for(sender.flush(), 5)
    assert sorted(map(len, client.requests)) == [5, 10, 10]
    assert sorted(client.delivered, key=int) == [str(i) for i in range(25)]
    assert all(f.result().message_id == f"m-{i}" for i, f in enumerate(futures))
    await sender.aclose()


async def test_send_batcher_linger_sends_without_flush() -> None:
    """A partial batch leaves after the linger time by itself."""
    client = FakeSQS()
    sender = batcher(client, linger=0.05)
    future = sender.submit(QUEUE, entry(1))
    assert (await asyncio.wait_for(future, 5)).message_id == "m-1"
    assert client.requests == [["1"]]
    await sender.aclose()


async def test_send_batcher_respects_one_mebibyte() -> None:
    """Three 600 KB messages never share a request."""
    client = FakeSQS()
    sender = batcher(client)
    for i in range(3):
        sender.submit(QUEUE, entry(i, size=600 * 1024))
    await asyncio.wait_for(sender.flush(), 5)
    assert [len(r) for r in client.requests] == [1, 1, 1]
    await sender.aclose()


async def test_send_batcher_splits_by_size() -> None:
    """Ten 200 KB messages split into requests of at most 1 MiB."""
    client = FakeSQS()
    sender = batcher(client)
    for i in range(10):
        sender.submit(QUEUE, entry(i, size=200 * 1024))
    await asyncio.wait_for(sender.flush(), 5)
    assert sorted(map(len, client.requests)) == [5, 5]
    await sender.aclose()


async def test_send_batcher_retries_failed_entries_and_reports_sender_faults() -> None:
    """Server-side entry failures are retried; sender faults are reported to the hook and to flush()."""

    def fault(call: int, entries: Sequence[SendMessageEntry]) -> SendMessageBatchResult | None:
        ok = {}
        failed = []
        for e in entries:
            if e.body == "bad":
                failed.append(BatchResultError(e.id, "InvalidParameterValue", "bad body", True))
            elif e.body in ("3", "7") and call == 1:
                failed.append(BatchResultError(e.id, "InternalError", "try again", False))
            else:
                ok[e.id] = SendMessageResult(f"m-{e.body}")
        return SendMessageBatchResult(ok, failed)

    reported: list[SendFailure] = []
    client = FakeSQS(fault)
    sender = batcher(client, on_failure=reported.append, linger=5.0)
    for i in range(9):
        sender.submit(QUEUE, entry(i))
    bad = sender.submit(QUEUE, SendMessageEntry("task-bad", "bad"))
    with pytest.raises(SendBatchError) as info:
        await asyncio.wait_for(sender.flush(), 5)
    assert [f.entry.id for f in info.value.failures] == ["task-bad"]
    assert [f.entry.id for f in reported] == ["task-bad"]
    assert "task-bad" in str(info.value) and "InvalidParameterValue" in str(info.value)
    assert sorted(client.delivered, key=int) == [str(i) for i in range(9)]
    with pytest.raises(SendBatchError):
        bad.result()
    await sender.aclose()


async def test_send_batcher_survives_an_error_on_every_other_request() -> None:
    """Whole-request failures are retried with backoff until every message is in."""

    def fault(call: int, entries: Sequence[SendMessageEntry]) -> Exception | None:
        return TransportError("connection reset", operation="SendMessageBatch") if call % 2 else None

    client = FakeSQS(fault)
    sender = batcher(client)
    for i in range(40):
        sender.submit(QUEUE, entry(i))
    await asyncio.wait_for(sender.flush(), 10)
    assert sorted(set(client.delivered), key=int) == [str(i) for i in range(40)]
    await sender.aclose()


async def test_send_batcher_gives_up_after_max_attempts_and_says_so() -> None:
    """A queue that always fails ends with every message reported, none silently dropped."""
    client = FakeSQS(lambda call, entries: ServiceError("InternalError", "down", status=500))
    sender = batcher(client, max_attempts=3)
    for i in range(12):
        sender.submit(QUEUE, entry(i))
    with pytest.raises(SendBatchError) as info:
        await asyncio.wait_for(sender.flush(), 10)
    assert sorted(f.entry.id for f in info.value.failures) == sorted(f"task-{i}" for i in range(12))
    assert all(f.attempts == 3 for f in info.value.failures)
    await sender.aclose()


async def test_send_batcher_permanent_request_error_is_not_retried() -> None:
    """QueueDoesNotExist fails the whole batch at once."""
    client = FakeSQS(lambda call, entries: ServiceError("QueueDoesNotExist", "gone", status=400))
    sender = batcher(client)
    sender.submit(QUEUE, entry(1))
    with pytest.raises(SendBatchError, match="QueueDoesNotExist"):
        await asyncio.wait_for(sender.flush(), 5)
    assert client.calls == 1
    await sender.aclose()


async def test_send_batcher_25_kicks_then_close_sends_all() -> None:
    """25 submits followed at once by aclose(): all 25 reach SQS."""
    client = FakeSQS()
    sender = batcher(client, linger=10.0)
    for i in range(25):
        sender.submit(QUEUE, entry(i))
    await asyncio.wait_for(sender.aclose(), 5)
    assert sorted(client.delivered, key=int) == [str(i) for i in range(25)]


async def test_send_batcher_50_concurrent_producers_then_close() -> None:
    """50 coroutines submitting concurrently, then aclose(): nothing lost, no hang."""
    client = FakeSQS(delay=0.001)
    sender = batcher(client, linger=0.2)

    async def produce(n: int) -> None:
        for j in range(4):
            sender.submit(QUEUE, entry(f"{n}-{j}"))
            await asyncio.sleep(0)

    await asyncio.gather(*(produce(n) for n in range(50)))
    await asyncio.wait_for(sender.aclose(), 10)
    assert len(client.delivered) == 200 and len(set(client.delivered)) == 200


async def test_send_batcher_close_is_bounded_when_sqs_hangs() -> None:
    """A hung SQS cannot hang shutdown: aclose returns by its deadline and reports what is unsent."""
    client = FakeSQS(delay=3600)
    sender = batcher(client)
    futures = [sender.submit(QUEUE, entry(i)) for i in range(3)]
    with pytest.raises(SendBatchError) as info:
        await asyncio.wait_for(sender.aclose(timeout=0.3), 5)
    assert sorted(f.entry.id for f in info.value.failures) == ["task-0", "task-1", "task-2"]
    assert all(f.done() for f in futures)
    with pytest.raises(Exception, match="closed"):
        sender.submit(QUEUE, entry(9))


async def test_send_batcher_cancelled_flush_loses_nothing() -> None:
    """Cancelling a caller at any await point leaves the buffered messages to be sent."""
    client = FakeSQS(delay=0.01)
    sender = batcher(client, linger=0.01)
    for i in range(30):
        sender.submit(QUEUE, entry(i))
    for delay in (0, 0.001, 0.005, 0.012, 0.02):
        task = asyncio.ensure_future(sender.flush())
        await asyncio.sleep(delay)
        if not task.done():
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    await asyncio.wait_for(sender.aclose(), 5)
    assert sorted(client.delivered, key=int) == [str(i) for i in range(30)]


async def test_send_batcher_fifo_keeps_group_order_across_retries() -> None:
    """On a FIFO queue a failed request is retried before any later message of the queue."""

    def fault(call: int, entries: Sequence[SendMessageEntry]) -> Exception | None:
        return TransportError("reset", operation="SendMessageBatch") if call in (2, 3, 5) else None

    client = FakeSQS(fault, delay=0.001)
    sender = batcher(client, batch_size=3, max_inflight=8)
    for i in range(15):
        sender.submit(FIFO, entry(i, group="g"))
    await asyncio.wait_for(sender.flush(), 5)
    assert client.delivered == [str(i) for i in range(15)]
    await sender.aclose()


def test_send_batcher_validates_settings() -> None:
    """Out-of-range settings name the parameter, value and range."""
    client = FakeSQS()
    with pytest.raises(ValueError, match=r"batch_size is 11; allowed range is 1\.\.10"):
        SendBatcher(client, batch_size=11)
    with pytest.raises(ValueError, match="linger is -1"):
        SendBatcher(client, linger=-1)


async def test_send_batcher_rejects_oversize_message() -> None:
    """A single message over the limit is refused at submit, before any request."""
    sender = batcher(FakeSQS(), max_batch_bytes=1000)
    with pytest.raises(ValueError, match="1001 bytes"):
        sender.submit(QUEUE, entry(1, size=1001))
    await sender.aclose()


# -- the buffer is bounded -----------------------------------------------------------------------------
async def test_a_full_buffer_makes_put_wait_then_fail_loudly() -> None:
    """SQS down for a while once meant 166,263 tasks (1.7 GB) held in memory, all reported as sent."""
    from taskiq_sqs_http.batching import SendBufferFullError

    never = asyncio.Event()

    class DownSQS(FakeSQS):
        async def send_message_batch(
            self, queue_url: str, entries: Sequence[SendMessageEntry]
        ) -> SendMessageBatchResult:
            await never.wait()
            raise AssertionError("unreachable")

    sender = SendBatcher(DownSQS(), linger=0, max_buffered_messages=3)
    for i in range(3):
        await sender.put(QUEUE, SendMessageEntry(f"t{i}", f"b{i}"), timeout=1)
    assert sender.full
    with pytest.raises(SendBufferFullError) as caught:
        await sender.put(QUEUE, SendMessageEntry("t3", "b3"), timeout=0.05)
    (failure,) = caught.value.failures
    assert failure.entry.id == "t3" and failure.code == "SendBufferFull"
    assert sender.full
    with pytest.raises(SendBatchError):
        await sender.aclose(timeout=0.05)


async def test_put_proceeds_as_soon_as_sent_messages_free_room() -> None:
    release = asyncio.Event()

    class SlowSQS(FakeSQS):
        async def send_message_batch(
            self, queue_url: str, entries: Sequence[SendMessageEntry]
        ) -> SendMessageBatchResult:
            await release.wait()
            return await super().send_message_batch(queue_url, entries)

    fake = SlowSQS()
    sender = SendBatcher(fake, linger=0, max_buffered_messages=2)
    await sender.put(QUEUE, SendMessageEntry("a", "a"), timeout=1)
    await sender.put(QUEUE, SendMessageEntry("b", "b"), timeout=1)
    third = asyncio.ensure_future(sender.put(QUEUE, SendMessageEntry("c", "c"), timeout=5))
    await asyncio.sleep(0.01)
    assert not third.done()
    release.set()
    await asyncio.wait_for(third, 5)
    await sender.aclose(timeout=5)
    assert sorted(fake.delivered) == ["a", "b", "c"]


async def test_the_byte_bound_counts_too() -> None:
    from taskiq_sqs_http.batching import SendBufferFullError

    never = asyncio.Event()

    class DownSQS(FakeSQS):
        async def send_message_batch(
            self, queue_url: str, entries: Sequence[SendMessageEntry]
        ) -> SendMessageBatchResult:
            await never.wait()
            raise AssertionError("unreachable")

    sender = SendBatcher(DownSQS(), linger=0, max_buffered_bytes=1_048_576)
    await sender.put(QUEUE, SendMessageEntry("big", "x" * 1_048_576), timeout=1)
    with pytest.raises(SendBufferFullError):
        await sender.put(QUEUE, SendMessageEntry("small", "y"), timeout=0.01)
    with pytest.raises(SendBatchError):
        await sender.aclose(timeout=0.05)
