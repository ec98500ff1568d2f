"""SQSBroker request shapes and error paths against a scripted endpoint (no emulator)."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from taskiq import BrokerMessage

from taskiq_sqs_http import (
    BrokerConfigError,
    BrokerNotStartedError,
    QueueNotFoundError,
    SQSBroker,
    SQSBrokerError,
    SQSQueue,
    StrTaskLabelConfigError,
)
from taskiq_sqs_http.aws import RetryPolicy

from .fakes import ACCOUNT, ENDPOINT, FakeAWS, queue_url, received, sqs_error

BODY = b'{"task_id":"t-1","task_name":"tests:t","labels":{},"labels_types":{},"args":[],"kwargs":{}}'

MakeBroker = Callable[..., SQSBroker]


@pytest.fixture
def aws() -> FakeAWS:
    return FakeAWS()


@pytest.fixture
async def make(aws: FakeAWS) -> AsyncIterator[MakeBroker]:
    brokers: list[SQSBroker] = []
    async with aws.client() as client:

        def factory(name: str = "q", **kwargs: Any) -> SQSBroker:
            broker = SQSBroker(
                name,
                endpoint_url=ENDPOINT,
                region_name="us-east-1",
                aws_access_key_id="AKIDEXAMPLE",
                aws_secret_access_key="secret",
                http_client=client,
                retry_policy=RetryPolicy.testing(),
                **kwargs,
            )
            brokers.append(broker)
            return broker

        yield factory
        for broker in brokers:
            await broker.shutdown()


def msg(task_name: str = "tests:t", body: bytes = BODY, **labels: Any) -> BrokerMessage:
    return BrokerMessage(
        task_id="t-1", task_name=task_name, message=body, labels={k: str(v) for k, v in labels.items()}
    )


async def test_startup_resolves_queue_urls_concurrently(aws: FakeAWS, make: MakeBroker) -> None:
    """All GetQueueUrl calls are in flight at once; URL queues are not looked up at all."""
    in_flight = 0
    peak = 0

    async def slow_url(payload: dict[str, Any]) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return httpx.Response(200, json={"QueueUrl": queue_url(payload["QueueName"])})

    aws.responders["GetQueueUrl"] = slow_url
    broker = make("a").with_queues(
        SQSQueue(name="b"),
        SQSQueue(name="c", owner_account_id="210987654321"),
        SQSQueue(name=f"{ENDPOINT}/{ACCOUNT}/d"),
    )
    await broker.startup()
    assert peak == 3
    lookups = aws.payloads("GetQueueUrl")
    assert sorted(p["QueueName"] for p in lookups) == ["a", "b", "c"]
    assert {"QueueName": "c", "QueueOwnerAWSAccountId": "210987654321"} in lookups
    assert broker.queue_urls["d"] == f"{ENDPOINT}/{ACCOUNT}/d"


async def test_kick_standard_queue_sends_body_verbatim(aws: FakeAWS, make: MakeBroker) -> None:
    broker = make()
    await broker.startup()
    await broker.kick(msg())
    (payload,) = aws.payloads("SendMessage")
    assert payload == {"QueueUrl": f"{ENDPOINT}/{ACCOUNT}/q", "MessageBody": BODY.decode()}


@pytest.mark.parametrize(
    ("broker_delay", "label", "expected"),
    [
        (0, "5", 5),
        (0, "2.5", 2),
        (0, "1.5", 2),
        (0, "0", None),
        (0, "False", None),
        (3, None, 3),
        (3, "0", None),
    ],
)
async def test_delay_seconds(
    aws: FakeAWS, make: MakeBroker, broker_delay: int, label: str | None, expected: int | None
) -> None:
    broker = make(delay_seconds=broker_delay)
    await broker.startup()
    labels: dict[str, Any] = {} if label is None else {"delay": label}
    await broker.kick(msg(**labels))
    assert aws.payloads("SendMessage")[0].get("DelaySeconds") == expected


async def test_long_delay_uses_cap_and_not_before(aws: FakeAWS, make: MakeBroker) -> None:
    broker = make()
    await broker.startup()
    before = time.time()
    await broker.kick(msg(delay=3600))
    payload = aws.payloads("SendMessage")[0]
    assert payload["DelaySeconds"] == 900
    due = float(payload["MessageAttributes"]["taskiq_not_before"]["StringValue"])
    assert before + 3600 - 0.001 <= due <= time.time() + 3600 + 0.001
    assert payload["MessageAttributes"]["taskiq_not_before"]["DataType"] == "Number"


async def test_fifo_group_and_deduplication_ids(aws: FakeAWS, make: MakeBroker) -> None:
    broker = make("q.fifo", use_task_id_for_deduplication=True)
    await broker.startup()
    await broker.kick(msg())
    await broker.kick(msg(group_id="g-1"))
    await broker.kick(msg(_retries=2))
    first, second, retry = aws.payloads("SendMessage")
    assert first["MessageGroupId"] == "tests:t"
    assert first["MessageDeduplicationId"] == "t-1"
    assert second["MessageGroupId"] == "g-1"
    # A retry is a new message: a deduplication id of its own, or SQS would drop it.
    assert retry["MessageDeduplicationId"] == "t-1-retry-2"


async def test_fifo_user_delay_is_an_error_and_nothing_is_sent(aws: FakeAWS, make: MakeBroker) -> None:
    broker = make("q.fifo")
    await broker.startup()
    with pytest.raises(BrokerConfigError, match="DelaySeconds is not supported for FIFO"):
        await broker.kick(msg(delay=5))
    assert aws.payloads("SendMessage") == []
    await broker.kick(msg(delay=0))  # zero is no delay, not an error (2.1.1 raised)
    assert "DelaySeconds" not in aws.payloads("SendMessage")[0]


async def test_fifo_retry_delay_is_dropped_with_a_warning(
    aws: FakeAWS, make: MakeBroker, caplog: pytest.LogCaptureFixture
) -> None:
    broker = make("q.fifo")
    await broker.startup()
    with caplog.at_level(logging.WARNING):
        await broker.kick(msg(delay=5.0, _retries=1))
    assert "DelaySeconds" not in aws.payloads("SendMessage")[0]
    assert "Dropping the 5.0 s delay of retry 1" in caplog.text


async def test_fair_queue_and_bad_group_ids(aws: FakeAWS, make: MakeBroker) -> None:
    broker = make(is_fair_queue=True)
    await broker.startup()
    await broker.kick(msg(group_id="tenant"))
    assert aws.payloads("SendMessage")[0]["MessageGroupId"] == "tenant"
    with pytest.raises(StrTaskLabelConfigError):
        await broker.kick(msg(task_name="has space"))


@pytest.mark.parametrize(
    ("response", "error", "match"),
    [
        (
            sqs_error("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"),
            QueueNotFoundError,
            "'q'",
        ),
        (sqs_error("InvalidParameterValue"), BrokerConfigError, "InvalidParameterValue says no"),
        (sqs_error("InternalError", status=500), SQSBrokerError, "InternalError"),
    ],
)
async def test_send_errors_are_mapped(
    aws: FakeAWS, make: MakeBroker, response: httpx.Response, error: type[Exception], match: str
) -> None:
    broker = make()
    await broker.startup()
    aws.responders["SendMessage"] = lambda p: response
    with pytest.raises(error, match=match):
        await broker.kick(msg())


async def test_kick_and_listen_before_startup_are_clear_errors(make: MakeBroker) -> None:
    broker = make()
    with pytest.raises(BrokerNotStartedError, match="before kick"):
        await broker.kick(msg())
    with pytest.raises(BrokerNotStartedError, match="before listen"):
        await broker.listen().__anext__()


async def test_registration_after_startup_is_a_value_error(make: MakeBroker) -> None:
    broker = make()
    await broker.startup()
    with pytest.raises(ValueError, match="Cannot register queues after startup"):
        broker.with_queues(SQSQueue(name="x"))
    with pytest.raises(ValueError, match="Cannot change default queue after startup"):
        broker.with_default_queue(SQSQueue(name="x"))


async def test_s3_client_is_only_created_when_needed(aws: FakeAWS, make: MakeBroker) -> None:
    broker = make(s3_extended_bucket_name="bucket")
    await broker.startup()
    await broker.kick(msg())
    assert broker._s3 is None  # pyright: ignore[reportPrivateUsage]
    big = msg(body=b"x" * (1024 * 1024))
    await broker.kick(big)
    assert broker._s3 is not None  # pyright: ignore[reportPrivateUsage]
    (put,) = aws.s3_requests
    assert put.method == "PUT"
    key = put.url.path.removeprefix("/bucket/")
    assert re.fullmatch(r"t-1-[0-9a-f]{12}\.json", key), key
    assert aws.payloads("SendMessage")[1]["MessageBody"] == f'{{"s3_bucket": "bucket", "s3_key": "{key}"}}'


async def test_s3_payloads_are_encrypted_when_configured(aws: FakeAWS, make: MakeBroker) -> None:
    broker = make(
        s3_extended_bucket_name="bucket", server_side_encryption="aws:kms", sse_kms_key_id="alias/k"
    )
    await broker.startup()
    await broker.kick(msg(body=b"x" * (1024 * 1024)))
    (put,) = aws.s3_requests
    assert put.headers["x-amz-server-side-encryption"] == "aws:kms"
    assert put.headers["x-amz-server-side-encryption-aws-kms-key-id"] == "alias/k"


async def _first(broker: SQSBroker) -> Any:
    gen = broker.listen()
    try:
        return await asyncio.wait_for(gen.__anext__(), 5)
    finally:
        await gen.aclose()


async def test_ack_after_redelivery_is_logged_not_raised(
    aws: FakeAWS, make: MakeBroker, caplog: pytest.LogCaptureFixture
) -> None:
    broker = make(wait_time_seconds=1)
    await broker.startup()
    answers = [received(BODY.decode())]
    aws.responders["ReceiveMessage"] = lambda p: httpx.Response(200, json=answers.pop() if answers else {})
    aws.responders["DeleteMessageBatch"] = lambda p: httpx.Response(
        200,
        json={
            "Successful": [],
            "Failed": [
                {"Id": e["Id"], "Code": "ReceiptHandleIsInvalid", "Message": "gone", "SenderFault": True}
                for e in p["Entries"]
            ],
        },
    )
    delivery = await _first(broker)
    assert delivery.ack.metadata.message_id == "id-rh-1"
    await delivery.ack()
    assert "stale receipt handle" in caplog.text


async def test_receive_request_shape_and_error_backoff(aws: FakeAWS, make: MakeBroker) -> None:
    """Long polling with the queue's settings; a throttled poll is retried, not raised."""
    broker = make(wait_time_seconds=20, max_number_of_messages=7, visibility_timeout=9)
    await broker.startup()
    answers = [httpx.Response(200, json=received(BODY.decode())), sqs_error("Throttling", status=400)]
    aws.responders["ReceiveMessage"] = lambda p: answers.pop() if answers else httpx.Response(200, json={})
    delivery = await _first(broker)
    assert delivery.data == BODY
    first = aws.payloads("ReceiveMessage")[0]
    assert first["WaitTimeSeconds"] == 20
    assert first["MaxNumberOfMessages"] == 7
    assert first["VisibilityTimeout"] == 9
    assert first["MessageAttributeNames"] == ["All"]


async def test_early_long_delayed_message_is_hidden_again(aws: FakeAWS, make: MakeBroker) -> None:
    broker = make(wait_time_seconds=1)
    await broker.startup()
    due = f"{time.time() + 5000:.3f}"
    answers = [received(BODY.decode(), "rh-2"), {**received(BODY.decode(), "rh-1")}]
    answers[1]["Messages"][0]["MessageAttributes"] = {
        "taskiq_not_before": {"DataType": "Number", "StringValue": due}
    }
    aws.responders["ReceiveMessage"] = lambda p: httpx.Response(200, json=answers.pop() if answers else {})
    delivery = await _first(broker)
    assert delivery.ack.metadata.receipt_handle == "rh-2"
    ((hide,),) = [p["Entries"] for p in aws.payloads("ChangeMessageVisibilityBatch")]
    assert hide["ReceiptHandle"] == "rh-1"
    assert 4990 <= hide["VisibilityTimeout"] <= 5001


async def test_stop_hands_back_held_messages(aws: FakeAWS, make: MakeBroker) -> None:
    broker = make(wait_time_seconds=1, max_number_of_messages=3)
    await broker.startup()
    three = {"Messages": [received(BODY.decode(), f"rh-{i}")["Messages"][0] for i in range(3)]}
    answers = [three]
    aws.responders["ReceiveMessage"] = lambda p: httpx.Response(200, json=answers.pop() if answers else {})
    delivery = await _first(broker)
    (batch,) = aws.payloads("ChangeMessageVisibilityBatch")
    handles = {e["ReceiptHandle"] for e in batch["Entries"]}
    assert handles == {"rh-1", "rh-2"}
    assert {e["VisibilityTimeout"] for e in batch["Entries"]} == {0}
    # The delivered one is handed back at shutdown if never acked.
    assert delivery.ack.metadata.receipt_handle == "rh-0"
    await broker.shutdown()
    assert aws.payloads("ChangeMessageVisibilityBatch")[-1]["Entries"][0]["ReceiptHandle"] == "rh-0"


async def test_shutdown_closes_clients_even_when_taskiq_shutdown_fails(make: MakeBroker) -> None:
    broker = make()

    async def boom() -> None:
        raise RuntimeError("backend down")

    broker.result_backend.shutdown = boom  # type: ignore[method-assign]
    await broker.startup()
    session = broker._session  # pyright: ignore[reportPrivateUsage]
    assert session is not None
    with pytest.raises(RuntimeError, match="backend down"):
        await broker.shutdown()
    assert session.closed
    assert broker._sqs is None  # pyright: ignore[reportPrivateUsage]
    del broker.result_backend.shutdown  # the fixture shuts it down again


async def test_result_backend_shares_the_broker_pool(aws: FakeAWS, make: MakeBroker) -> None:
    """One pool per process: an S3Backend without its own client uses the broker's session."""
    from taskiq_sqs_http import S3Backend

    backend = S3Backend(
        "results", endpoint_url=ENDPOINT, aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret"
    )
    broker = make().with_result_backend(backend)
    await broker.startup()
    client = await backend._get_client()  # pyright: ignore[reportPrivateUsage]
    assert client.session is broker._session  # pyright: ignore[reportPrivateUsage]
    await broker.shutdown()
    assert client.session.closed
