"""Bad input: clear errors at the API, and malformed messages logged and kept by a worker that goes on."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from taskiq_sqs_http import (
    BrokerConfigError,
    ExtendedBucketNameMissingError,
    QueueNotRegisteredError,
    S3Backend,
    SQSBroker,
    SQSQueue,
    TaskIQSQSError,
)
from taskiq_sqs_http.aws import MessageAttributeValue, S3Client, ServiceError, SQSClient

from .support import Record, Worker, kicker, queue_depth, read_runs, unique, wait_until, write_record

OUT_OF_RANGE: list[tuple[str, Any]] = [
    ("wait_time_seconds", -1),
    ("wait_time_seconds", 21),
    ("max_number_of_messages", 0),
    ("max_number_of_messages", 11),
    ("visibility_timeout", -1),
    ("visibility_timeout", 43_201),
    ("delay_seconds", -1),
    ("delay_seconds", 901),
    ("max_delay_seconds", 901),
    ("batch_size", 0),
    ("batch_size", 11),
    ("batch_timeout", 0.05),
    ("shutdown_timeout", 0),
    ("shutdown_timeout", 3601),
    ("ack_batch_linger", 0.06),
    ("redelivery_delay", -1),
    ("redelivery_delay", 43_201),
    ("heartbeat_interval", 0),
    ("heartbeat_max_extensions", 0),
    ("extended_payload_threshold", 0),
    ("extended_payload_threshold", 1_048_577),
    ("extended_payload_format", "xml"),
    ("server_side_encryption", "rot13"),
    # wrong types that are refused clearly
    ("wait_time_seconds", 1.5),
    ("max_number_of_messages", "x"),
    ("delay_seconds", "x"),
    ("batch_timeout", "x"),
    ("shutdown_timeout", "x"),
    ("heartbeat_interval", "x"),
]


@pytest.mark.parametrize(("name", "value"), OUT_OF_RANGE, ids=[f"{n}={v!r}" for n, v in OUT_OF_RANGE])
def test_broker_parameters_out_of_range_are_clear_errors(name: str, value: Any) -> None:
    with pytest.raises(BrokerConfigError) as info:
        SQSBroker("q", **{name: value})
    text = str(info.value).lower()
    assert str(value).lower() in text
    squash = str.maketrans("", "", "_- ")
    assert name.translate(squash) in text.translate(squash), text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "q", "max_number_of_messages": 0},
        {"name": "q", "wait_time_seconds": 21},
        {"name": "q", "visibility_timeout": -1},
        {"name": "q", "max_receive_count": 0},
        {"name": "q", "owner_account_id": "12"},
        {"name": ""},
    ],
)
def test_queue_parameters_out_of_range_are_clear_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(BrokerConfigError):
        SQSQueue(**kwargs)


@pytest.mark.parametrize("kwargs", [{"bucket_name": ""}, {"bucket_name": "b", "base_path": "../x"}])
def test_backend_parameters_are_clear_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(BrokerConfigError):
        S3Backend(**kwargs)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("skip_batch_tasks", "urgent"),
        ("on_send_error", "not callable"),
        ("enable_batching", "yes"),
        ("trusted_payload_buckets", 5),
        ("http_client", "x"),
        ("retry_policy", "x"),
        ("timeouts", 5),
        ("skip_batch_tasks", ["ok", 3]),
    ],
)
def test_wrong_types_are_clear_errors_at_construction(name: str, value: Any) -> None:
    with pytest.raises(TaskIQSQSError):
        SQSBroker("q", **{name: value})


@pytest.fixture
async def started_broker(emulator: str, fake_keys: None) -> Any:
    queue = unique("bad")
    async with SQSClient(endpoint_url=emulator) as sqs:
        await sqs.create_queue(queue)
        fifo = {"FifoQueue": "true", "ContentBasedDeduplication": "true"}
        await sqs.create_queue(queue + ".fifo", attributes=fifo)
    broker = SQSBroker(queue, endpoint_url=emulator).with_queues(SQSQueue(name=queue + ".fifo"))
    await broker.startup()
    yield broker, queue
    await broker.shutdown()


@pytest.mark.parametrize(
    ("labels", "error"),
    [
        ({"delay": -1}, BrokerConfigError),
        ({"delay": "abc"}, BrokerConfigError),
        ({"group_id": "g" * 129, "queue": "FIFO"}, BrokerConfigError),
        ({"group_id": "with space", "queue": "FIFO"}, BrokerConfigError),
        ({"queue": "not-registered"}, QueueNotRegisteredError),
        ({"queue": "FIFO", "delay": 5}, BrokerConfigError),
    ],
    ids=["delay-1", "delay-abc", "group129", "group-space", "unregistered", "fifo-delay"],
)
async def test_bad_labels_are_clear_errors(
    started_broker: tuple[SQSBroker, str], labels: dict[str, Any], error: type[Exception]
) -> None:
    broker, queue = started_broker
    if labels.get("queue") == "FIFO":
        labels = {**labels, "queue": queue + ".fifo"}
    with pytest.raises(Exception) as info:
        await kicker(broker, "chaos.record", **labels).kiq(1)
    cause = info.value if isinstance(info.value, error) else info.value.__cause__
    assert isinstance(cause, error), repr(info.value)
    assert str(cause)


async def test_oversize_without_a_bucket_is_a_clear_error(started_broker: tuple[SQSBroker, str]) -> None:
    broker, _ = started_broker
    with pytest.raises(Exception) as info:
        await kicker(broker, "chaos.size").kiq("x" * 1_100_000)
    cause = info.value if isinstance(info.value, ExtendedBucketNameMissingError) else info.value.__cause__
    assert isinstance(cause, ExtendedBucketNameMissingError), repr(info.value)


def _task_body(task_name: str, *args: Any) -> bytes:
    return orjson.dumps(
        {
            "task_id": uuid.uuid4().hex,
            "task_name": task_name,
            "labels": {},
            "labels_types": {},
            "args": list(args),
            "kwargs": {},
        }
    )


@pytest.mark.chaos
async def test_a_worker_survives_bad_messages(emulator: str, fake_keys: None, tmp_path: Path) -> None:
    started = time.monotonic()
    queue, bucket, payloads, other = unique("badmsg"), unique("res"), unique("payloads"), unique("other")
    runs_file = tmp_path / "runs.log"
    pointer = MessageAttributeValue.string("True")
    base64 = MessageAttributeValue.string("base64")
    async with SQSClient(endpoint_url=emulator) as sqs, S3Client(endpoint_url=emulator) as s3:
        url = await sqs.create_queue(queue, attributes={"VisibilityTimeout": "600"})
        for name in (bucket, payloads, other):
            await s3.create_bucket(name)
        await s3.put_object(other, "k.json", _task_body("chaos.record", 1))
        big = _task_body("chaos.size", "x" * (2 * 1024 * 1024))
        big_id = orjson.loads(big)["task_id"]
        await s3.put_object(payloads, "big.json", big)

        bad: dict[str, str] = {}  # what -> SQS message id
        try:
            await sqs.send_message(url, "")
        except ServiceError:
            pass  # SQS refuses empty bodies: an empty message cannot exist
        else:
            bad["empty"] = "(sent)"
        cases: list[tuple[str, str, dict[str, MessageAttributeValue] | None]] = [
            ("not JSON", "this is {not json", None),
            ("JSON array", "[1, 2, 3]", None),
            ("JSON wrong shape", '{"task_id": 5, "args": "no"}', None),
            ("unknown task", _task_body("chaos.no_such_task").decode(), None),
            ("missing object", orjson.dumps({"s3_bucket": payloads, "s3_key": "nope"}).decode(), None),
            ("untrusted bucket", orjson.dumps({"s3_bucket": other, "s3_key": "k.json"}).decode(), None),
            ("invalid base64", "@@not base64@@", {"taskiq_body_encoding": base64}),
        ]
        for what, body, attributes in cases:
            if what in ("missing object", "untrusted bucket"):
                attributes = {"s3_extended_message": pointer}
            bad[what] = (await sqs.send_message(url, body, message_attributes=attributes)).message_id
        body = orjson.dumps({"s3_bucket": payloads, "s3_key": "big.json"}).decode()
        await sqs.send_message(url, body, message_attributes={"s3_extended_message": pointer})

        env = {
            "AWS_ENDPOINT_URL": emulator,
            "CHAOS_QUEUE": queue,
            "CHAOS_BUCKET": bucket,
            "CHAOS_RUNS": str(runs_file),
            "CHAOS_EXTENDED_BUCKET": payloads,
        }
        worker = Worker("badmsg", env, tmp_path)
        broker = SQSBroker(queue, endpoint_url=emulator)
        await broker.startup()
        try:
            worker.wait_ready()
            good = await kicker(broker, "chaos.record").kiq(7)

            async def good_ones_ran() -> bool:
                ran = {r.task_id for r in read_runs(runs_file)}
                return {good.task_id, big_id} <= ran

            await wait_until(good_ones_ran, 30, what="the good and the 2 MiB tasks ran")
            log = worker.log()

            async def all_seen() -> bool:
                return all(mid in worker.log() for mid in bad.values())

            await wait_until(all_seen, 20, what="every bad message logged with its id")
            log = worker.log()
            assert worker.alive()
            kept = await queue_depth(sqs, url)
        finally:
            await broker.shutdown()
            worker.stop()
    assert "chaos.no_such_task" in log  # taskiq: 'task "chaos.no_such_task" is not found'
    for what in ("missing object", "untrusted bucket"):
        assert bad[what] in log, what
    # Every bad message, the unknown task name included, is kept for SQS redrive (in flight: hidden for
    # its visibility timeout), none deleted.
    assert kept == (0, len(bad), 0), kept
    record = Record("bad messages (9 kinds) + 2 MiB payload", sent=len(bad) + 2)
    record.faults = {"malformed": len(bad)}
    record.run = 2
    record.seconds = time.monotonic() - started
    record.notes = f"kept in SQS: {kept[1]}, worker alive"
    write_record(record)
