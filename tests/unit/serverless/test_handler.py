"""lambda_handler against Lambda-shaped SQS events and a scripted SQS/S3 endpoint (no emulator).

The handler is called the way the Lambda runtime calls it: synchronously, one invocation after another in
one process, with a context whose remaining time counts down.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from taskiq import TaskiqEvents, TaskiqMessage, TaskiqMiddleware
from taskiq.brokers.inmemory_broker import InmemoryResultBackend

from taskiq_sqs_http import QueueNotFoundError, SQSBroker, SQSQueue
from taskiq_sqs_http.serverless import (
    BatchItemFailuresError,
    LambdaEventError,
    LambdaHandler,
    lambda_handler,
)

from ..broker.fakes import FakeAWS, sqs_error
from .support import (
    Context,
    binary_attribute,
    deleted_handles,
    event,
    make_broker,
    queue_url,
    record,
    string_attribute,
    task_body,
    visibility_changes,
)

MakeHandler = Callable[..., LambdaHandler]


@pytest.fixture
def aws() -> FakeAWS:
    return FakeAWS()


@pytest.fixture
def make_handler() -> Iterator[MakeHandler]:
    made: list[LambdaHandler] = []

    def factory(broker: SQSBroker, **options: Any) -> LambdaHandler:
        handler = lambda_handler(broker, **options)
        made.append(handler)
        return handler

    yield factory
    for handler in made:
        handler.close()


def failures(response: dict[str, list[dict[str, str]]]) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def results(broker: SQSBroker) -> InmemoryResultBackend[Any]:
    backend = broker.result_backend
    assert isinstance(backend, InmemoryResultBackend)
    return backend


# -- success and partial failure ---------------------------------------------------------------------------


def test_successful_records_run_through_taskiq_and_are_deleted(
    aws: FakeAWS, make_handler: MakeHandler
) -> None:
    broker = make_broker(aws)
    seen: list[int] = []

    @broker.task(task_name="add")
    async def add(a: int, b: int) -> int:
        seen.append(a + b)
        return a + b

    r1 = record(task_body("add", 1, 2, task_id="t1"))
    r2 = record(task_body("add", 3, 4, task_id="t2"))
    handler = make_handler(broker)

    response = handler(event(r1, r2), Context())

    assert response == {"batchItemFailures": []}
    assert sorted(seen) == [3, 7]
    assert results(broker).results["t1"].return_value == 3
    assert results(broker).results["t2"].return_value == 7
    assert sorted(deleted_handles(aws)) == sorted([r1["receiptHandle"], r2["receiptHandle"]])
    # No queue is ever polled: Lambda's event source mapping does the receiving.
    assert "ReceiveMessage" not in aws.actions()


def test_failed_task_with_redeliver_failed_is_a_batch_item_failure(
    aws: FakeAWS, make_handler: MakeHandler
) -> None:
    broker = make_broker(aws, redeliver_failed=True, redelivery_delay=7)

    @broker.task(task_name="boom")
    async def boom() -> None:
        raise RuntimeError("no")

    @broker.task(task_name="ok")
    async def ok() -> str:
        return "fine"

    bad, good = record(task_body("boom", task_id="b")), record(task_body("ok"))
    response = make_handler(broker)(event(bad, good), Context())

    assert failures(response) == [bad["messageId"]]
    assert deleted_handles(aws) == [good["receiptHandle"]]
    assert visibility_changes(aws) == {bad["receiptHandle"]: 7}
    assert results(broker).results["b"].is_err


def test_failed_task_without_redeliver_failed_stores_the_error_and_is_deleted(
    aws: FakeAWS, make_handler: MakeHandler
) -> None:
    broker = make_broker(aws)

    @broker.task(task_name="boom")
    async def boom() -> None:
        raise RuntimeError("no")

    bad = record(task_body("boom", task_id="b"))
    response = make_handler(broker)(event(bad), Context())

    assert failures(response) == []
    assert deleted_handles(aws) == [bad["receiptHandle"]]
    assert results(broker).results["b"].is_err


def test_poison_records_are_failures_never_deleted(
    aws: FakeAWS, make_handler: MakeHandler, caplog: pytest.LogCaptureFixture
) -> None:
    broker = make_broker(aws)

    @broker.task(task_name="ok")
    async def ok() -> None:
        return None

    not_json = record("this is not a task", receive_count=3)
    unknown = record(task_body("nobody.registered.this"))
    bad_encoding = record(
        task_body("ok"), message_attributes={"taskiq_body_encoding": string_attribute("rot13")}
    )
    good = record(task_body("ok"))
    with caplog.at_level(logging.ERROR):
        response = make_handler(broker)(event(not_json, unknown, bad_encoding, good), Context())

    assert failures(response) == [not_json["messageId"], unknown["messageId"], bad_encoding["messageId"]]
    assert deleted_handles(aws) == [good["receiptHandle"]]
    # Left for redrive, hidden with a backoff that grows with the receive count.
    changes = visibility_changes(aws)
    assert set(changes) == {
        not_json["receiptHandle"],
        unknown["receiptHandle"],
        bad_encoding["receiptHandle"],
    }
    assert changes[not_json["receiptHandle"]] > changes[unknown["receiptHandle"]]
    logged = caplog.text
    assert not_json["messageId"] in logged and "redrive" in logged
    assert "nobody.registered.this" in logged


def test_malformed_record_fields_are_failures(aws: FakeAWS, make_handler: MakeHandler) -> None:
    broker = make_broker(aws)
    broken = record(task_body("x"), message_attributes={"a": {"dataType": "Binary", "binaryValue": "@@@"}})
    no_handle = record(task_body("x"))
    del no_handle["receiptHandle"]
    response = make_handler(broker)(event(broken, no_handle), Context())

    assert failures(response) == [broken["messageId"], no_handle["messageId"]]
    assert deleted_handles(aws) == []


def test_a_malformed_event_fails_the_invocation(aws: FakeAWS, make_handler: MakeHandler) -> None:
    handler = make_handler(make_broker(aws))
    with pytest.raises(LambdaEventError, match="Records"):
        handler({"detail": "an EventBridge event"}, Context())
    no_id = record(task_body("x"))
    del no_id["messageId"]
    with pytest.raises(LambdaEventError, match="messageId"):
        handler(event(no_id), Context())
    other = record(task_body("x"))
    other["eventSource"] = "aws:kinesis"
    with pytest.raises(LambdaEventError, match="kinesis"):
        handler(event(other), Context())


def test_an_empty_batch_succeeds(aws: FakeAWS, make_handler: MakeHandler) -> None:
    assert make_handler(make_broker(aws))(event(), Context()) == {"batchItemFailures": []}


# -- message attributes, pointers, delays -------------------------------------------------------------------


def test_binary_and_string_attributes_reach_decoding(aws: FakeAWS, make_handler: MakeHandler) -> None:
    """The base64 body encoding announced in a camelCase attribute is honoured; binary attributes decode."""
    import base64

    broker = make_broker(aws)

    @broker.task(task_name="echo")
    async def echo(text: str) -> str:
        return text

    body = base64.b64encode(task_body("echo", "h\u00e9llo", task_id="e").encode()).decode()
    encoded = record(
        body,
        message_attributes={
            "taskiq_body_encoding": string_attribute("base64"),
            "blob": binary_attribute(b"\x00\x01\xff"),
        },
    )
    response = make_handler(broker)(event(encoded), Context())

    assert failures(response) == []
    assert results(broker).results["e"].return_value == "h\u00e9llo"


@pytest.mark.parametrize("fmt", ["aio-sqs", "aws"])
def test_both_pointer_formats_fetch_the_payload_and_delete_it_after_success(
    aws: FakeAWS, make_handler: MakeHandler, fmt: str
) -> None:
    broker = make_broker(aws, s3_extended_bucket_name="payloads")

    @broker.task(task_name="big")
    async def big(data: str) -> int:
        return len(data)

    payload = task_body("big", "x" * 1000, task_id="p").encode()
    s3_calls: list[tuple[str, str]] = []

    def s3(request: httpx.Request) -> httpx.Response:
        s3_calls.append((request.method, request.url.path))
        if request.method == "GET":
            return httpx.Response(200, content=payload)
        return httpx.Response(204)

    aws.s3_responder = s3
    if fmt == "aio-sqs":
        body = json.dumps({"s3_bucket": "payloads", "s3_key": "k/1"})
        attributes = {"s3_extended_message": string_attribute("True")}
    else:
        body = json.dumps(
            [
                "software.amazon.payloadoffloading.PayloadS3Pointer",
                {"s3BucketName": "payloads", "s3Key": "k/1"},
            ]
        )
        attributes = {"ExtendedPayloadSize": string_attribute(str(len(payload)), "Number")}
    pointer = record(body, message_attributes=attributes)
    response = make_handler(broker)(event(pointer), Context())

    assert failures(response) == []
    assert results(broker).results["p"].return_value == 1000
    methods = [method for method, path in s3_calls if path.endswith("/k/1")]
    assert methods == ["GET", "DELETE"]
    assert deleted_handles(aws) == [pointer["receiptHandle"]]


def test_pointer_into_an_untrusted_bucket_is_a_failure_and_never_fetched(
    aws: FakeAWS, make_handler: MakeHandler
) -> None:
    broker = make_broker(aws, s3_extended_bucket_name="payloads")
    body = json.dumps({"s3_bucket": "someone-elses", "s3_key": "k"})
    pointer = record(body, message_attributes={"s3_extended_message": string_attribute("True")})
    response = make_handler(broker)(event(pointer), Context())

    assert failures(response) == [pointer["messageId"]]
    assert aws.s3_requests == []
    assert deleted_handles(aws) == []


def test_a_record_not_yet_due_is_hidden_until_due_and_reported(
    aws: FakeAWS, make_handler: MakeHandler
) -> None:
    broker = make_broker(aws)

    @broker.task(task_name="later")
    async def later() -> None:
        raise AssertionError("must not run before it is due")

    due = time.time() + 3600
    early = record(
        task_body("later"), message_attributes={"taskiq_not_before": string_attribute(f"{due:.3f}", "Number")}
    )
    response = make_handler(broker)(event(early), Context())

    assert failures(response) == [early["messageId"]]
    hidden = visibility_changes(aws)[early["receiptHandle"]]
    assert 3590 <= hidden <= 3602


# -- FIFO ---------------------------------------------------------------------------------------------------


def test_fifo_group_stops_after_the_first_failure(aws: FakeAWS, make_handler: MakeHandler) -> None:
    broker = make_broker(aws, "jobs.fifo", redeliver_failed=True)
    ran: list[str] = []

    @broker.task(task_name="step")
    async def step(name: str) -> None:
        await asyncio.sleep(0.01 if name.endswith("1") else 0)
        ran.append(name)
        if name == "a2":
            raise RuntimeError("a2 fails")

    names = ["a1", "b1", "a2", "b2", "a3", "b3"]
    records = [record(task_body("step", n), queue="jobs.fifo", group_id=n[0]) for n in names]
    response = make_handler(broker)(event(*records), Context())

    by_name = dict(zip(names, records, strict=True))
    assert failures(response) == [by_name["a2"]["messageId"], by_name["a3"]["messageId"]]
    # Each group ran in order; a3 never ran.
    assert [n for n in ran if n[0] == "a"] == ["a1", "a2"]
    assert [n for n in ran if n[0] == "b"] == ["b1", "b2", "b3"]
    assert sorted(deleted_handles(aws)) == sorted(
        by_name[n]["receiptHandle"] for n in ["a1", "b1", "b2", "b3"]
    )
    # a2 is hidden for redelivery_delay (30 s); a3, never started, is handed back at once: SQS still
    # delivers a2 first, since it keeps a group's later messages back while an earlier one is in flight.
    assert visibility_changes(aws) == {by_name["a2"]["receiptHandle"]: 30, by_name["a3"]["receiptHandle"]: 0}


def test_fifo_poison_record_stops_its_group(aws: FakeAWS, make_handler: MakeHandler) -> None:
    broker = make_broker(aws, "jobs.fifo")

    @broker.task(task_name="step")
    async def step() -> None:
        return None

    first = record("garbage", queue="jobs.fifo", group_id="g")
    second = record(task_body("step"), queue="jobs.fifo", group_id="g")
    response = make_handler(broker)(event(first, second), Context())

    assert failures(response) == [first["messageId"], second["messageId"]]
    assert deleted_handles(aws) == []


# -- concurrency, time, warm invocations ---------------------------------------------------------------------


def test_standard_records_run_concurrently_up_to_the_bound(aws: FakeAWS, make_handler: MakeHandler) -> None:
    broker = make_broker(aws)
    running = 0
    peak = 0

    @broker.task(task_name="slow")
    async def slow() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1

    handler = make_handler(broker, max_concurrency=3)
    response = handler(event(*[record(task_body("slow")) for _ in range(9)]), Context())

    assert failures(response) == []
    assert peak == 3


def test_no_task_starts_within_the_time_margin(
    aws: FakeAWS, make_handler: MakeHandler, caplog: pytest.LogCaptureFixture
) -> None:
    broker = make_broker(aws)
    ran: list[int] = []

    @broker.task(task_name="slow")
    async def slow(n: int) -> None:
        ran.append(n)
        await asyncio.sleep(0.3)

    records = [record(task_body("slow", n)) for n in range(4)]
    handler = make_handler(broker, max_concurrency=1, time_margin=0.5)
    with caplog.at_level(logging.WARNING):
        response = handler(event(*records), Context(millis=1000))

    # 1.0 s left: the first task starts at ~1.0, the second at ~0.7; at ~0.4 s left nothing more starts.
    assert ran == [0, 1]
    assert failures(response) == [records[2]["messageId"], records[3]["messageId"]]
    assert sorted(deleted_handles(aws)) == sorted([records[0]["receiptHandle"], records[1]["receiptHandle"]])
    assert "2 records were not started" in caplog.text
    # Handed back at once rather than left hidden for the queue's visibility timeout.
    assert visibility_changes(aws) == {records[2]["receiptHandle"]: 0, records[3]["receiptHandle"]: 0}


def test_a_whole_failed_batch_is_warned_about(
    aws: FakeAWS, make_handler: MakeHandler, caplog: pytest.LogCaptureFixture
) -> None:
    broker = make_broker(aws)
    records = [record(task_body("t")) for _ in range(2)]
    handler = make_handler(broker, time_margin=5.0)
    with caplog.at_level(logging.WARNING):
        response = handler(event(*records), Context(millis=3000))

    assert failures(response) == [r["messageId"] for r in records]
    assert "ReportBatchItemFailures" in caplog.text
    assert "All 2 records" in caplog.text


def test_warm_invocations_reuse_loop_pool_and_started_broker(aws: FakeAWS, make_handler: MakeHandler) -> None:
    broker = make_broker(aws)
    loops: list[asyncio.AbstractEventLoop] = []
    startups: list[int] = []

    @broker.on_event(TaskiqEvents.WORKER_STARTUP)
    async def on_startup(state: object) -> None:
        startups.append(1)

    @broker.task(task_name="where")
    async def where() -> None:
        loops.append(asyncio.get_running_loop())

    handler = make_handler(broker)
    for _ in range(3):
        assert failures(handler(event(record(task_body("where"))), Context())) == []

    assert handler.invocations == 3
    assert len(set(map(id, loops))) == 1 and loops[0] is handler.loop
    assert startups == [1]
    # The queue URL was resolved once, by the one startup.
    assert aws.actions().count("GetQueueUrl") == 1
    assert len(deleted_handles(aws)) == 3


def test_records_of_several_queues(aws: FakeAWS, make_handler: MakeHandler) -> None:
    broker = make_broker(aws, "main").with_queues(SQSQueue(name="other"))

    @broker.task(task_name="ok")
    async def ok() -> None:
        return None

    on_main = record(task_body("ok"), queue="main")
    on_other = record(task_body("ok"), queue="other")
    unknown = record(task_body("ok"), queue="not-registered")
    response = make_handler(broker)(event(on_main, on_other, unknown), Context())

    assert failures(response) == [unknown["messageId"]]
    urls = {p["QueueUrl"] for p in aws.payloads("DeleteMessageBatch")} | {
        p["QueueUrl"] for p in aws.payloads("DeleteMessage")
    }
    assert urls == {queue_url("main"), queue_url("other")}


def test_result_write_failure_is_a_failure_and_the_record_is_handed_back(
    aws: FakeAWS, make_handler: MakeHandler
) -> None:
    broker = make_broker(aws)

    class Broken(InmemoryResultBackend[Any]):
        async def set_result(self, task_id: str, result: Any) -> None:
            raise OSError("results store is down")

    broker.with_result_backend(Broken())

    @broker.task(task_name="ok")
    async def ok() -> int:
        return 1

    rec = record(task_body("ok"))
    response = make_handler(broker)(event(rec), Context())

    assert failures(response) == [rec["messageId"]]
    assert deleted_handles(aws) == []
    assert visibility_changes(aws) == {rec["receiptHandle"]: 0}


def test_middlewares_and_metadata_labels_apply(aws: FakeAWS, make_handler: MakeHandler) -> None:
    broker = make_broker(aws, expose_message_metadata=True)
    labels: list[dict[str, Any]] = []

    class Spy(TaskiqMiddleware):
        def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
            labels.append(dict(message.labels))
            return message

    broker.add_middlewares(Spy())

    @broker.task(task_name="ok")
    async def ok() -> None:
        return None

    rec = record(task_body("ok"), receive_count=2)
    assert failures(make_handler(broker)(event(rec), Context())) == []
    assert labels[0]["sqs_message_id"] == rec["messageId"]
    assert str(labels[0]["sqs_approximate_receive_count"]) == "2"


def test_sync_tasks_run(aws: FakeAWS, make_handler: MakeHandler) -> None:
    broker = make_broker(aws)

    @broker.task(task_name="sync")
    def sync(a: int) -> int:
        return a * 2

    rec = record(task_body("sync", 21, task_id="s"))
    assert failures(make_handler(broker)(event(rec), Context())) == []
    assert results(broker).results["s"].return_value == 42


def test_on_failure_raise(aws: FakeAWS, make_handler: MakeHandler) -> None:
    broker = make_broker(aws)

    @broker.task(task_name="ok")
    async def ok() -> None:
        return None

    good, bad = record(task_body("ok")), record("garbage")
    handler = make_handler(broker, on_failure="raise")
    with pytest.raises(BatchItemFailuresError, match=bad["messageId"]):
        handler(event(good, bad), Context())
    # The good one was deleted before the invocation failed: only the bad one comes back.
    assert deleted_handles(aws) == [good["receiptHandle"]]


def test_without_context_there_is_no_deadline(aws: FakeAWS, make_handler: MakeHandler) -> None:
    broker = make_broker(aws)

    @broker.task(task_name="ok")
    async def ok() -> None:
        return None

    assert failures(make_handler(broker, time_margin=900)(event(record(task_body("ok"))))) == []


async def test_async_callers_use_handle(aws: FakeAWS, make_handler: MakeHandler) -> None:
    broker = make_broker(aws)

    @broker.task(task_name="ok")
    async def ok() -> None:
        return None

    handler = lambda_handler(broker)
    with pytest.raises(RuntimeError, match="handle"):
        handler(event(), Context())
    assert failures(await handler.handle(event(record(task_body("ok"))), Context())) == []
    await broker.shutdown()


# -- options ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_concurrency": 0}, "max_concurrency must be an integer from 1 to 10000, got 0"),
        ({"max_concurrency": True}, "max_concurrency"),
        ({"time_margin": -1}, "time_margin must be a number of seconds from 0 to 900, got -1"),
        ({"time_margin": "2"}, "time_margin"),
        ({"ack_type": "sometimes"}, "ack_type must be one of"),
        ({"on_failure": "ignore"}, "on_failure must be 'report' or 'raise'"),
    ],
)
def test_bad_options_are_rejected_early(aws: FakeAWS, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        lambda_handler(make_broker(aws), **options)


def test_broker_must_be_ours() -> None:
    from taskiq import InMemoryBroker

    with pytest.raises(TypeError, match="SQSBroker"):
        lambda_handler(InMemoryBroker())  # type: ignore[arg-type]


def test_ack_type_when_executed_is_accepted(aws: FakeAWS, make_handler: MakeHandler) -> None:
    broker = make_broker(aws)

    @broker.task(task_name="ok")
    async def ok() -> None:
        return None

    handler = make_handler(broker, ack_type="when_executed")
    assert failures(handler(event(record(task_body("ok"))), Context())) == []


def test_a_broker_that_cannot_start_fails_the_invocation_and_the_next_one_retries(
    aws: FakeAWS, make_handler: MakeHandler, caplog: pytest.LogCaptureFixture
) -> None:
    broker = make_broker(aws)

    @broker.task(task_name="ok")
    async def ok() -> None:
        return None

    working = aws.responders["GetQueueUrl"]
    aws.responders["GetQueueUrl"] = lambda p: sqs_error(
        "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"
    )
    handler = make_handler(broker)
    rec = record(task_body("ok"))
    with caplog.at_level(logging.ERROR), pytest.raises(QueueNotFoundError):
        handler(event(rec), Context())
    assert "failed as a whole" in caplog.text
    assert deleted_handles(aws) == []

    aws.responders["GetQueueUrl"] = working
    assert failures(handler(event(rec), Context())) == []
    assert deleted_handles(aws) == [rec["receiptHandle"]]


def test_a_payload_s3_cannot_serve_is_a_failure_within_the_invocation_time(
    aws: FakeAWS, make_handler: MakeHandler
) -> None:
    """S3 failing transiently: the inbox retries, but never past the invocation's time (minus the margin)."""
    broker = make_broker(aws, s3_extended_bucket_name="payloads")

    @broker.task(task_name="ok")
    async def ok() -> None:
        return None

    aws.s3_responder = lambda request: httpx.Response(503, text="<Error><Code>SlowDown</Code></Error>")
    body = json.dumps({"s3_bucket": "payloads", "s3_key": "k"})
    pointer = record(body, message_attributes={"s3_extended_message": string_attribute("True")})
    good = record(task_body("ok"))
    started = time.monotonic()
    response = make_handler(broker, time_margin=0.5)(event(pointer, good), Context(millis=2000))

    assert time.monotonic() - started < 2.0
    assert failures(response) == [pointer["messageId"]]
    assert deleted_handles(aws) == [good["receiptHandle"]]


def test_retry_middlewares_kick_the_retry_and_the_original_is_deleted(
    aws: FakeAWS, make_handler: MakeHandler
) -> None:
    """taskiq's SimpleRetryMiddleware re-kicks through the broker, as under `taskiq worker`."""
    from taskiq.middlewares import SimpleRetryMiddleware

    broker = make_broker(aws).with_middlewares(SimpleRetryMiddleware(default_retry_count=3))

    @broker.task(task_name="flaky", retry_on_error=True)
    async def flaky() -> None:
        raise RuntimeError("try again")

    body = json.loads(task_body("flaky", task_id="f"))
    body["labels"] = {"retry_on_error": "True"}  # what kiq() puts there from the task's labels
    rec = record(json.dumps(body))
    response = make_handler(broker)(event(rec), Context())

    assert failures(response) == []
    assert deleted_handles(aws) == [rec["receiptHandle"]]
    (sent,) = aws.payloads("SendMessage")
    retried = json.loads(sent["MessageBody"])
    assert retried["task_name"] == "flaky"
    assert retried["labels"]["_retries"] == "1"
