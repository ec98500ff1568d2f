"""``shutdown()`` in the middle of a burst of kicks, under faults: every kick is in SQS or raised (fast)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter

import orjson
import pytest

from taskiq_sqs_http import SendFailedError, SQSBroker
from taskiq_sqs_http.aws import RetryPolicy, SQSClient
from taskiq_sqs_http.batching import SendFailure

from .proxy import FaultPlan, running_proxy
from .support import Record, kicker, short_read_timeout, unique, write_record

KICKS = 400
SHUTDOWN_AFTER = 200
SEED = 6


async def _drain(sqs: SQSClient, url: str) -> Counter[str]:
    """Every task id in the queue (with multiplicity), read directly from the emulator."""
    ids: Counter[str] = Counter()
    empty = 0
    for _ in range(500):  # bounded: 5,000 messages at most
        messages = await sqs.receive_message(url, max_number_of_messages=10, wait_time_seconds=0)
        if not messages:
            empty += 1
            if empty >= 3:
                break
            await asyncio.sleep(0.2)
            continue
        empty = 0
        for message in messages:
            ids[orjson.loads(message.body)["task_id"]] += 1
    return ids


@pytest.mark.parametrize("batching", [True, False], ids=["batched", "unbatched"])
async def test_shutdown_during_a_burst_loses_nothing_silently(
    emulator: str, fake_keys: None, monkeypatch: pytest.MonkeyPatch, batching: bool
) -> None:
    started = time.monotonic()
    short_read_timeout(monkeypatch, 1.0)
    queue = unique("burst")
    record = Record(f"shutdown() mid-burst, 10% faults, {'batched' if batching else 'unbatched'}")
    async with SQSClient(endpoint_url=emulator, retry_policy=RetryPolicy.testing()) as admin:
        url = await admin.create_queue(queue, attributes={"VisibilityTimeout": "60"})
        with running_proxy(emulator) as proxy:
            failures: list[SendFailure] = []
            broker = SQSBroker(
                queue,
                endpoint_url=proxy.url,
                enable_batching=batching,
                batch_timeout=0.1,
                on_send_error=failures.append,
                shutdown_timeout=15,
                retry_policy=RetryPolicy(base_delay=0.02, throttling_base_delay=0.05, max_delay=0.5),
            )
            await broker.startup()
            proxy.set_plan(FaultPlan(rate=0.1, seed=SEED, delay_seconds=1.5))
            accepted: list[str] = []
            raised: list[str] = []
            errors: list[str] = []

            async def kick(n: int) -> None:
                task_id = uuid.uuid4().hex
                try:
                    await kicker(broker, "chaos.record").with_task_id(task_id).kiq(n)
                except Exception as exc:  # an exception to the caller is an allowed outcome
                    raised.append(task_id)
                    errors.append(type(exc).__name__)
                else:
                    accepted.append(task_id)

            kicks: list[asyncio.Task[None]] = []
            shutdown: asyncio.Task[None] | None = None
            for n in range(KICKS):
                kicks.append(asyncio.create_task(kick(n)))
                if n == SHUTDOWN_AFTER:
                    shutdown = asyncio.create_task(broker.shutdown())
                await asyncio.sleep(0.002)
            assert shutdown is not None
            await asyncio.wait_for(asyncio.gather(*kicks), 60)
            with contextlib.suppress(SendFailedError):  # each failure also went to on_send_error
                await asyncio.wait_for(shutdown, 30)
            proxy.set_plan(FaultPlan())
            record.add_faults(proxy.faults_by_kind())
        in_sqs = await _drain(admin, url)

    reported = {f.entry.id for f in failures}
    record.sent = KICKS
    record.run = len(set(accepted) & set(in_sqs))
    record.duplicates = sum(in_sqs.values()) - len(in_sqs)
    record.lost = len(set(accepted) - set(in_sqs) - reported)
    record.errors_reported = len(raised) + len(reported)
    record.seconds = time.monotonic() - started
    record.notes = (
        f"accepted {len(accepted)}, raised {len(raised)} ({', '.join(sorted(set(errors)))}), "
        f"reported {len(reported)}, in SQS {len(in_sqs)}"
    )
    write_record(record)
    assert len(accepted) + len(raised) == KICKS
    assert record.lost == 0, sorted(set(accepted) - set(in_sqs) - reported)[:10]
    assert raised, "kicks after shutdown() must raise"
    assert record.faults, "faults were injected"
