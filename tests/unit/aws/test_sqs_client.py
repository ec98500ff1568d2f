"""SQSClient against respx: request shape, error mapping, retries, clock skew, expired tokens, timeouts."""

from __future__ import annotations

import email.utils
from datetime import datetime, timedelta, timezone
from typing import Any, cast

import httpx
import orjson
import pytest
import respx

from taskiq_sqs_http.aws import (
    ChangeVisibilityEntry,
    ConfigurationError,
    ConnectError,
    Credentials,
    DeleteMessageEntry,
    MalformedResponseError,
    MessageAttributeValue,
    QueueDoesNotExistError,
    RequestTimeoutError,
    RetryPolicy,
    SendMessageEntry,
    ServiceError,
    SQSClient,
    SQSError,
)

ENDPOINT = "https://sqs.eu-west-1.amazonaws.com"
QUEUE = f"{ENDPOINT}/123456789012/jobs"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEXAMPLETOKEN"


def target(action: str) -> dict[str, str]:
    return {"X-Amz-Target": f"AmazonSQS.{action}"}


def ok(data: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, content=orjson.dumps(data))


def sqs_error(code: str, status: int = 400, query: str | None = None, **headers: str) -> httpx.Response:
    hdrs = {"x-amzn-RequestId": "req-1", **headers}
    if query:
        hdrs["x-amzn-query-error"] = f"{query};Sender"
    body = {"__type": f"com.amazonaws.sqs#{code}", "message": f"{code} happened"}
    return httpx.Response(status, content=orjson.dumps(body), headers=hdrs)


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(base_url=ENDPOINT, assert_all_called=False)


def make_client(router: respx.Router, **kwargs: Any) -> SQSClient:
    kwargs.setdefault("retry_policy", RetryPolicy.testing())
    kwargs.setdefault("credentials", Credentials("AKIDEXAMPLE", SECRET, TOKEN))
    return SQSClient(
        region_name="eu-west-1",
        transport=httpx.MockTransport(router.async_handler),
        **kwargs,
    )


async def test_sqs_send_message_request_shape(router: respx.Router) -> None:
    """SendMessage is a signed JSON 1.0 POST / with the queue in the body."""
    route = router.post("/", headers=target("SendMessage")).mock(
        return_value=ok({"MessageId": "m-1", "MD5OfMessageBody": "x", "SequenceNumber": "7"})
    )
    async with make_client(router) as sqs:
        result = await sqs.send_message(
            QUEUE,
            "hello wörld",
            delay_seconds=5,
            message_attributes={
                "a": MessageAttributeValue.string("s"),
                "b": MessageAttributeValue.binary(b"\x00\xff"),
                "n": MessageAttributeValue.number(3),
            },
            message_group_id="g",
            message_deduplication_id="d",
        )
    assert result.message_id == "m-1"
    assert result.sequence_number == "7"
    request = route.calls.last.request
    assert request.url.path == "/"
    assert request.headers["content-type"] == "application/x-amz-json-1.0"
    assert request.headers["host"] == "sqs.eu-west-1.amazonaws.com"
    assert request.headers["x-amz-security-token"] == TOKEN
    auth = request.headers["authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/sqs/aws4_request" in auth
    assert "content-type;host;x-amz-date;x-amz-security-token;x-amz-target" in auth
    body = orjson.loads(request.content)
    assert body == {
        "QueueUrl": QUEUE,
        "MessageBody": "hello wörld",
        "DelaySeconds": 5,
        "MessageAttributes": {
            "a": {"DataType": "String", "StringValue": "s"},
            "b": {"DataType": "Binary", "BinaryValue": "AP8="},
            "n": {"DataType": "Number", "StringValue": "3"},
        },
        "MessageGroupId": "g",
        "MessageDeduplicationId": "d",
    }


async def test_sqs_receive_decodes_messages_and_sets_long_poll_timeout(
    router: respx.Router,
) -> None:
    """Messages decode with attributes; the read timeout of a long poll exceeds WaitTimeSeconds."""
    route = router.post("/", headers=target("ReceiveMessage")).mock(
        return_value=ok(
            {
                "Messages": [
                    {
                        "MessageId": "m",
                        "ReceiptHandle": "rh",
                        "Body": "b",
                        "Attributes": {"ApproximateReceiveCount": "3"},
                        "MessageAttributes": {
                            "x": {"DataType": "Binary", "BinaryValue": "AP8="},
                            "y": {"DataType": "String", "StringValue": "v"},
                        },
                    }
                ]
            }
        )
    )
    async with make_client(router) as sqs:
        messages = await sqs.receive_message(QUEUE, max_number_of_messages=10, wait_time_seconds=20)
    assert len(messages) == 1
    assert messages[0].receive_count == 3
    assert messages[0].message_attributes["x"].binary_value == b"\x00\xff"
    assert messages[0].message_attributes["y"].string_value == "v"
    request = route.calls.last.request
    assert request.extensions["timeout"]["read"] > 20
    body = orjson.loads(request.content)
    assert body["WaitTimeSeconds"] == 20 and body["MaxNumberOfMessages"] == 10


async def test_sqs_receive_empty_queue(router: respx.Router) -> None:
    """An empty receive is an empty list, with or without the Messages key."""
    router.post("/", headers=target("ReceiveMessage")).mock(return_value=ok({}))
    async with make_client(router) as sqs:
        assert await sqs.receive_message(QUEUE) == []


async def test_sqs_batches_report_failed_entries(router: respx.Router) -> None:
    """Per-entry failures of batch calls are returned, not dropped."""
    router.post("/", headers=target("SendMessageBatch")).mock(
        return_value=ok(
            {
                "Successful": [{"Id": "a", "MessageId": "m-a", "MD5OfMessageBody": "x"}],
                "Failed": [{"Id": "b", "Code": "InternalError", "Message": "m", "SenderFault": False}],
            }
        )
    )
    router.post("/", headers=target("DeleteMessageBatch")).mock(
        return_value=ok({"Successful": [{"Id": "1"}], "Failed": []})
    )
    router.post("/", headers=target("ChangeMessageVisibilityBatch")).mock(
        return_value=ok({"Failed": [{"Id": "1", "Code": "ReceiptHandleIsInvalid", "SenderFault": True}]})
    )
    async with make_client(router) as sqs:
        sent = await sqs.send_message_batch(
            QUEUE, [SendMessageEntry("a", "x"), SendMessageEntry("b", "y", delay_seconds=3)]
        )
        deleted = await sqs.delete_message_batch(QUEUE, [DeleteMessageEntry("1", "rh")])
        changed = await sqs.change_message_visibility_batch(QUEUE, [ChangeVisibilityEntry("1", "rh", 30)])
    assert sent.successful["a"].message_id == "m-a"
    assert [(f.id, f.code, f.sender_fault) for f in sent.failed] == [("b", "InternalError", False)]
    assert deleted.successful == ["1"] and deleted.failed == []
    assert changed.failed[0].code == "ReceiptHandleIsInvalid"


async def test_sqs_queue_operations(router: respx.Router) -> None:
    """Queue management actions send the documented fields."""
    calls = {
        "GetQueueUrl": ok({"QueueUrl": QUEUE}),
        "CreateQueue": ok({"QueueUrl": QUEUE}),
        "GetQueueAttributes": ok({"Attributes": {"VisibilityTimeout": "30"}}),
        "SetQueueAttributes": ok({}),
        "PurgeQueue": ok({}),
        "DeleteQueue": ok({}),
        "DeleteMessage": ok({}),
        "ChangeMessageVisibility": ok({}),
    }
    routes = {a: router.post("/", headers=target(a)).mock(return_value=r) for a, r in calls.items()}
    async with make_client(router) as sqs:
        assert await sqs.get_queue_url("jobs", owner_account_id="123456789012") == QUEUE
        assert await sqs.create_queue("jobs.fifo", attributes={"FifoQueue": "true"}, tags={"a": "b"})
        assert await sqs.get_queue_attributes(QUEUE) == {"VisibilityTimeout": "30"}
        await sqs.set_queue_attributes(QUEUE, {"VisibilityTimeout": "60"})
        await sqs.purge_queue(QUEUE)
        await sqs.delete_message(QUEUE, "rh")
        await sqs.change_message_visibility(QUEUE, "rh", 0)
        await sqs.delete_queue(QUEUE)
    assert orjson.loads(routes["GetQueueUrl"].calls.last.request.content) == {
        "QueueName": "jobs",
        "QueueOwnerAWSAccountId": "123456789012",
    }
    assert orjson.loads(routes["CreateQueue"].calls.last.request.content)["Attributes"] == {
        "FifoQueue": "true"
    }
    assert all(r.call_count == 1 for r in routes.values())


async def test_sqs_error_from_type_and_query_header(router: respx.Router) -> None:
    """QueueDoesNotExist maps to its class with code, status, request id and the legacy query code."""
    router.post("/").mock(
        return_value=sqs_error("QueueDoesNotExist", query="AWS.SimpleQueueService.NonExistentQueue")
    )
    async with make_client(router) as sqs:
        with pytest.raises(QueueDoesNotExistError) as info:
            await sqs.get_queue_url("nope")
    error = info.value
    assert error.code == "QueueDoesNotExist"
    assert error.query_error_code == "AWS.SimpleQueueService.NonExistentQueue"
    assert error.status == 400 and error.request_id == "req-1"
    assert "GetQueueUrl" in str(error)


async def test_sqs_error_legacy_code_only(router: respx.Router) -> None:
    """A body with only the legacy code still maps to the right class."""
    router.post("/").mock(
        return_value=httpx.Response(
            400,
            content=b'{"__type": "AWS.SimpleQueueService.NonExistentQueue", "Message": "gone"}',
        )
    )
    async with make_client(router) as sqs:
        with pytest.raises(QueueDoesNotExistError, match="gone"):
            await sqs.get_queue_url("nope")


@pytest.mark.parametrize(
    ("status", "content"),
    [(500, b"<html>oops</html>"), (400, b'{"__type": "x"'), (400, b"[1, 2]"), (502, b"")],
)
async def test_sqs_malformed_error_bodies_are_typed(
    router: respx.Router, status: int, content: bytes
) -> None:
    """Non-JSON, truncated or odd error bodies become typed errors, never crashes."""
    router.post("/").mock(return_value=httpx.Response(status, content=content))
    async with make_client(router, retry_policy=RetryPolicy.testing(max_attempts=1)) as sqs:
        with pytest.raises(ServiceError) as info:
            await sqs.purge_queue(QUEUE)
    assert info.value.status == status


@pytest.mark.parametrize("content", [b'{"Messages": [', b"not json", b'"str"', b'{"Messages": 5}'])
async def test_sqs_malformed_success_bodies_are_typed(router: respx.Router, content: bytes) -> None:
    """A 200 whose body is truncated or the wrong shape raises MalformedResponseError."""
    router.post("/").mock(return_value=httpx.Response(200, content=content))
    async with make_client(router) as sqs:
        with pytest.raises(MalformedResponseError):
            await sqs.receive_message(QUEUE)


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500, content=b'{"__type": "InternalError"}'),
        httpx.Response(503, content=b"{}"),
        httpx.Response(429, content=b"{}"),
        sqs_error("ThrottlingException"),
        sqs_error("RequestThrottled", query="AWS.SimpleQueueService.RequestThrottled"),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("closed"),
    ],
)
async def test_sqs_retries_transient_failures(router: respx.Router, failure: Any) -> None:
    """5xx, 429, throttling and connection errors are retried, then succeed."""
    route = router.post("/").mock(side_effect=[failure, failure, ok({"QueueUrl": QUEUE})])
    async with make_client(router) as sqs:
        assert await sqs.get_queue_url("jobs") == QUEUE
    assert route.call_count == 3


async def test_sqs_gives_up_after_max_attempts(router: respx.Router) -> None:
    """After max_attempts the last error surfaces to the caller."""
    route = router.post("/").mock(return_value=sqs_error("ThrottlingException"))
    async with make_client(router, retry_policy=RetryPolicy.testing(max_attempts=4)) as sqs:
        with pytest.raises(SQSError, match="ThrottlingException"):
            await sqs.purge_queue(QUEUE)
    assert route.call_count == 4


async def test_sqs_does_not_retry_client_errors(router: respx.Router) -> None:
    """A sender fault such as InvalidParameterValue fails at once."""
    route = router.post("/").mock(return_value=sqs_error("InvalidParameterValue"))
    async with make_client(router) as sqs:
        with pytest.raises(SQSError):
            await sqs.send_message(QUEUE, "x")
    assert route.call_count == 1


@pytest.mark.parametrize(
    ("exc", "expected"),
    [(httpx.ConnectError("refused"), ConnectError), (httpx.ReadTimeout("slow"), RequestTimeoutError)],
)
async def test_sqs_transport_errors_are_mapped(
    router: respx.Router, exc: Exception, expected: type[Exception]
) -> None:
    """httpx exceptions never escape the client layer."""
    router.post("/").mock(side_effect=exc)
    async with make_client(router) as sqs:
        with pytest.raises(expected) as info:
            await sqs.purge_queue(QUEUE)
    assert not isinstance(info.value, httpx.HTTPError)


async def test_sqs_backoff_uses_policy_delays(router: respx.Router, monkeypatch: pytest.MonkeyPatch) -> None:
    """Capped exponential backoff with full jitter; throttling waits on the longer base."""
    slept: list[float] = []

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr("taskiq_sqs_http.aws._service.asyncio.sleep", fake_sleep)
    router.post("/").mock(
        side_effect=[
            httpx.Response(500, content=b"{}"),
            sqs_error("ThrottlingException"),
            ok({"QueueUrl": QUEUE}),
        ]
    )
    policy = RetryPolicy(base_delay=0.05, throttling_base_delay=1.0, random=lambda: 1.0)
    async with make_client(router, retry_policy=policy) as sqs:
        await sqs.get_queue_url("jobs")
    assert slept == [0.05, 2.0]


async def test_sqs_clock_skew_is_learned_and_resigned(router: respx.Router) -> None:
    """A skew error with a far-off Date re-signs once with the server's time."""
    server_time = datetime.now(timezone.utc) + timedelta(hours=2)
    skew = sqs_error(
        "InvalidSignatureException",
        status=403,
        Date=email.utils.format_datetime(server_time, usegmt=True),
    )
    route = router.post("/").mock(side_effect=[skew, ok({"QueueUrl": QUEUE})])
    async with make_client(router, retry_policy=RetryPolicy.testing(max_attempts=1)) as sqs:
        assert await sqs.get_queue_url("jobs") == QUEUE
    requests = [call.request for call in cast("list[respx.models.Call]", route.calls)]
    first, second = (r.headers["x-amz-date"] for r in requests)
    sent = datetime.strptime(second, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    assert abs((sent - server_time).total_seconds()) < 60
    assert first != second


async def test_sqs_signature_error_without_skew_is_not_retried(router: respx.Router) -> None:
    """A real signature error (clock fine) surfaces instead of looping."""
    route = router.post("/").mock(
        return_value=sqs_error(
            "SignatureDoesNotMatch",
            status=403,
            Date=email.utils.format_datetime(datetime.now(timezone.utc), usegmt=True),
        )
    )
    async with make_client(router) as sqs:
        with pytest.raises(SQSError, match="SignatureDoesNotMatch"):
            await sqs.purge_queue(QUEUE)
    assert route.call_count == 1


async def test_sqs_expired_token_refreshes_once(router: respx.Router) -> None:
    """ExpiredToken invalidates the provider and retries once with the new credentials."""

    class Rotating:
        def __init__(self) -> None:
            self.generation = 0

        async def get_credentials(self) -> Credentials:
            return Credentials(f"AKID{self.generation}", SECRET, TOKEN)

        def invalidate(self) -> None:
            self.generation += 1

        def describe(self) -> str:
            return "rotating"

    provider = Rotating()
    route = router.post("/").mock(side_effect=[sqs_error("ExpiredToken"), ok({"QueueUrl": QUEUE})])
    async with make_client(router, credentials=provider) as sqs:
        await sqs.get_queue_url("jobs")
    requests = [call.request for call in cast("list[respx.models.Call]", route.calls)]
    keys = [r.headers["authorization"].split("Credential=")[1][:5] for r in requests]
    assert keys == ["AKID0", "AKID1"]


async def test_sqs_input_ranges_are_checked_before_sending(router: respx.Router) -> None:
    """Out-of-range arguments name the parameter, value and range, and send nothing."""
    route = router.post("/")
    async with make_client(router) as sqs:
        with pytest.raises(ConfigurationError, match=r"delay_seconds is 901; allowed range is 0\.\.900"):
            await sqs.send_message(QUEUE, "x", delay_seconds=901)
        with pytest.raises(ConfigurationError, match="max_number_of_messages is 11"):
            await sqs.receive_message(QUEUE, max_number_of_messages=11)
        with pytest.raises(ConfigurationError, match="wait_time_seconds is 21"):
            await sqs.receive_message(QUEUE, wait_time_seconds=21)
        with pytest.raises(ConfigurationError, match="entries has 11 entries"):
            await sqs.send_message_batch(QUEUE, [SendMessageEntry(str(i), "x") for i in range(11)])
        with pytest.raises(ConfigurationError, match="entries has 0 entries"):
            await sqs.delete_message_batch(QUEUE, [])
        with pytest.raises(ConfigurationError, match="visibility_timeout is -1"):
            await sqs.change_message_visibility(QUEUE, "rh", -1)
    assert route.call_count == 0


async def test_sqs_repr_and_errors_hide_secrets(router: respx.Router) -> None:
    """Neither the client, its credentials nor its errors show the secret or the token."""
    router.post("/").mock(return_value=sqs_error("AccessDenied", status=403))
    client = make_client(router)
    async with client as sqs:
        with pytest.raises(SQSError) as info:
            await sqs.purge_queue(QUEUE)
        credentials = await sqs.credential_provider.get_credentials()
    for text in (
        repr(client),
        client.describe(),
        str(info.value),
        repr(info.value),
        repr(credentials),
    ):
        assert SECRET not in text and TOKEN not in text


async def test_sqs_endpoint_and_region_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS_REGION and AWS_ENDPOINT_URL_SQS are honoured; an explicit argument wins."""
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:9/")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "a")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "b")
    async with SQSClient() as sqs:
        assert sqs.region == "ap-south-1"
        assert sqs.endpoint_url == "http://127.0.0.1:9"
        assert "AWS_ENDPOINT_URL_SQS" in sqs.describe()
    async with SQSClient(region_name="eu-north-1", endpoint_url="https://x.example") as sqs:
        assert sqs.region == "eu-north-1" and sqs.endpoint_url == "https://x.example"


async def test_sqs_default_endpoint_is_regional() -> None:
    """Without overrides the endpoint is the AWS one for the region."""
    async with SQSClient(region_name="eu-west-3", credentials=Credentials("a", "b")) as sqs:
        assert sqs.endpoint_url == "https://sqs.eu-west-3.amazonaws.com"
