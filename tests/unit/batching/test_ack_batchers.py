"""DeleteBatcher and VisibilityBatcher: coalesced, awaited, stale handles tolerated, errors surfaced."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from taskiq_sqs_http.aws import ServiceError
from taskiq_sqs_http.aws.sqs import (
    BatchResult,
    BatchResultError,
    ChangeVisibilityEntry,
    DeleteMessageEntry,
    SendMessageBatchResult,
    SendMessageEntry,
)
from taskiq_sqs_http.batching import BatchEntryError, DeleteBatcher, VisibilityBatcher

QUEUE = "https://sqs.eu-west-1.amazonaws.com/1/jobs"


class FakeSQS:
    def __init__(self) -> None:
        self.deletes: list[list[str]] = []
        self.changes: list[list[tuple[str, int]]] = []
        self.fail: dict[str, BatchResultError] = {}
        self.transient: set[str] = set()
        self.error: Exception | None = None

    async def send_message_batch(
        self, queue_url: str, entries: Sequence[SendMessageEntry]
    ) -> SendMessageBatchResult:
        raise NotImplementedError

    def _result(self, pairs: list[tuple[str, str]]) -> BatchResult:
        ok, failed = [], []
        for entry_id, handle in pairs:
            if handle in self.transient:
                self.transient.discard(handle)
                failed.append(BatchResultError(entry_id, "InternalError", "x", False))
            elif handle in self.fail:
                template = self.fail[handle]
                failed.append(
                    BatchResultError(entry_id, template.code, template.message, template.sender_fault)
                )
            else:
                ok.append(entry_id)
        return BatchResult(ok, failed)

    async def delete_message_batch(
        self, queue_url: str, entries: Sequence[DeleteMessageEntry]
    ) -> BatchResult:
        await asyncio.sleep(0)
        if self.error:
            raise self.error
        self.deletes.append([e.receipt_handle for e in entries])
        return self._result([(e.id, e.receipt_handle) for e in entries])

    async def change_message_visibility_batch(
        self, queue_url: str, entries: Sequence[ChangeVisibilityEntry]
    ) -> BatchResult:
        self.changes.append([(e.receipt_handle, e.visibility_timeout) for e in entries])
        return self._result([(e.id, e.receipt_handle) for e in entries])


async def test_delete_batcher_coalesces_and_awaits() -> None:
    """25 concurrent acks become 3 DeleteMessageBatch calls; each ack returns after its batch."""
    client = FakeSQS()
    deleter = DeleteBatcher(client, linger=0.05)
    await asyncio.wait_for(asyncio.gather(*(deleter.delete(QUEUE, f"rh{i}") for i in range(25))), 5)
    assert sorted(map(len, client.deletes)) == [5, 10, 10]
    await deleter.aclose()


async def test_delete_batcher_stale_handles_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    """A stale receipt handle is a warning; another entry failure raises for its caller only."""
    client = FakeSQS()
    client.fail["stale"] = BatchResultError("x", "ReceiptHandleIsInvalid", "expired", True)
    client.fail["denied"] = BatchResultError("x", "AccessDenied", "no", True)
    client.transient.add("flaky")
    deleter = DeleteBatcher(client, linger=0.01)
    results = await asyncio.gather(
        deleter.delete(QUEUE, "ok"),
        deleter.delete(QUEUE, "stale"),
        deleter.delete(QUEUE, "denied"),
        deleter.delete(QUEUE, "flaky"),
        return_exceptions=True,
    )
    assert results[0] is None and results[1] is None and results[3] is None
    assert isinstance(results[2], BatchEntryError) and results[2].code == "AccessDenied"
    assert "stale receipt handle" in caplog.text
    await deleter.aclose()


async def test_delete_batcher_request_failure_reaches_every_caller() -> None:
    """When the batch call fails, every ack in it raises: acked still means deleted."""
    client = FakeSQS()
    client.error = ServiceError("InternalError", "down", status=500)
    deleter = DeleteBatcher(client, linger=0.01)
    results = await asyncio.gather(
        *(deleter.delete(QUEUE, f"h{i}") for i in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, ServiceError) for r in results)
    await deleter.aclose()


async def test_delete_batcher_cancelled_caller_does_not_cancel_batch() -> None:
    """One cancelled ack leaves the others in its batch intact."""
    client = FakeSQS()
    deleter = DeleteBatcher(client, linger=0.05)
    first = asyncio.ensure_future(deleter.delete(QUEUE, "a"))
    second = asyncio.ensure_future(deleter.delete(QUEUE, "b"))
    await asyncio.sleep(0.01)
    first.cancel()
    await asyncio.wait_for(second, 5)
    await deleter.aclose()
    assert client.deletes == [["a", "b"]]


async def test_visibility_batcher_coalesces() -> None:
    """Heartbeat extensions coalesce into ChangeMessageVisibilityBatch."""
    client = FakeSQS()
    changer = VisibilityBatcher(client, linger=0.02)
    await asyncio.gather(*(changer.change(QUEUE, f"h{i}", 60) for i in range(4)))
    assert client.changes == [[("h0", 60), ("h1", 60), ("h2", 60), ("h3", 60)]]
    await changer.aclose()


def test_ack_batchers_validate_settings() -> None:
    """Linger and batch size are range-checked with a clear message."""
    with pytest.raises(ValueError, match="linger is 5"):
        DeleteBatcher(FakeSQS(), linger=5)
    with pytest.raises(ValueError, match="batch_size is 0"):
        VisibilityBatcher(FakeSQS(), batch_size=0)
