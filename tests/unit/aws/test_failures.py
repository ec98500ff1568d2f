"""How the client fails: deadlines on dead endpoints, credential problems, refusals before sending.

Each test pins what the caller sees (the error type, its message, how many requests went out), never how
long it took: the machine is shared and timing assertions would be noise.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import pytest

from taskiq_sqs_http.aws import (
    ConfigurationError,
    Credentials,
    CredentialsExpiredError,
    CredentialsRejectedError,
    DeadlineExceededError,
    EnvironmentCredentialProvider,
    HTTPSession,
    InvalidRequestError,
    MalformedResponseError,
    QueueDoesNotExistError,
    RequestTimeoutError,
    RetryPolicy,
    S3Client,
    S3CredentialsRejectedError,
    S3Error,
    SQSClient,
    SQSCredentialsRejectedError,
    SQSError,
    Timeouts,
    TransportError,
)
from taskiq_sqs_http.aws._errors import parse_s3_error, parse_sqs_error

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEXAMPLETOKEN"
QUEUE = "http://sqs.local/123456789012/jobs"


class Recorder:
    """A MockTransport handler that records requests and answers with a fixed behaviour."""

    def __init__(self, answer: Callable[[httpx.Request], Awaitable[httpx.Response]]) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.answer(request)


async def never_answer(request: httpx.Request) -> httpx.Response:
    await asyncio.sleep(3600)
    raise AssertionError("unreachable")


def sqs_client(handler: Any, *, timeouts: Timeouts | None = None, **kwargs: Any) -> SQSClient:
    kwargs.setdefault("retry_policy", RetryPolicy.testing(max_attempts=3))
    kwargs.setdefault("credentials", Credentials("AKIDEXAMPLE", SECRET, TOKEN))
    return SQSClient(
        region_name="eu-west-1",
        endpoint_url="http://sqs.local",
        transport=httpx.MockTransport(handler),
        timeouts=timeouts,
        **kwargs,
    )


def sqs_error(code: str, status: int = 400) -> httpx.Response:
    body = {"__type": f"com.amazonaws.sqs#{code}", "message": f"{code} happened"}
    return httpx.Response(status, content=orjson.dumps(body), headers={"x-amzn-RequestId": "req-1"})


# -- deadlines ----------------------------------------------------------------------------------------


def test_timeouts_defaults_suit_calls_answered_in_milliseconds() -> None:
    """The documented defaults: 10 s read for ordinary calls, 30 s for a whole operation."""
    timeouts = Timeouts()
    assert (timeouts.connect, timeouts.read, timeouts.write, timeouts.pool, timeouts.total) == (
        5.0,
        10.0,
        30.0,
        30.0,
        30.0,
    )
    with pytest.raises(ConfigurationError, match="timeout total is 0"):
        Timeouts(total=0)
    with pytest.raises(ConfigurationError, match=r"timeout read is '5' \(str\)"):
        Timeouts(read="5")  # type: ignore[arg-type]


async def test_an_endpoint_that_never_answers_fails_at_the_deadline() -> None:
    """A hanging endpoint costs one deadline: DeadlineExceededError naming the operation and deadline."""
    handler = Recorder(never_answer)
    async with sqs_client(handler, timeouts=Timeouts(total=0.2)) as sqs:
        with pytest.raises(DeadlineExceededError) as info:
            await sqs.send_message(QUEUE, "hello")
    error = info.value
    assert isinstance(error, RequestTimeoutError) and isinstance(error, TransportError)
    assert error.operation == "SendMessage" and error.deadline == 0.2 and error.attempts == 1
    assert str(error).startswith("SendMessage: no answer within the 0.2 s deadline (1 attempt)")
    assert len(handler.requests) == 1


async def test_attempts_that_time_out_are_counted_until_the_deadline() -> None:
    """Two attempts time out at once, the third hangs: the deadline error counts three and names the cause."""
    answers: list[Exception] = [httpx.ReadTimeout("slow"), httpx.ReadTimeout("slow")]

    async def time_out_then_hang(request: httpx.Request) -> httpx.Response:
        if answers:
            raise answers.pop(0)
        return await never_answer(request)

    handler = Recorder(time_out_then_hang)
    policy = RetryPolicy.testing(max_attempts=5)
    async with sqs_client(handler, timeouts=Timeouts(total=0.3), retry_policy=policy) as sqs:
        with pytest.raises(DeadlineExceededError) as info:
            await sqs.get_queue_url("jobs")
    assert info.value.attempts == 3 and len(handler.requests) == 3
    assert "ReadTimeout" in info.value.last_error
    assert "(3 attempts); last error: GetQueueUrl: ReadTimeout" in str(info.value)


async def test_a_large_upload_gets_a_second_per_mib_on_its_deadline() -> None:
    handler = Recorder(never_answer)
    async with s3_client(handler, timeouts=Timeouts(total=0.1)) as s3:
        with pytest.raises(DeadlineExceededError) as info:
            await s3.put_object("bucket", "key", b"x" * (1024 * 1024 + 1024 * 1024 // 5))  # 1.2 MiB
    assert info.value.deadline == pytest.approx(1.3)


async def test_no_backoff_wait_starts_that_would_end_past_the_deadline() -> None:
    """When the next retry could only start after the deadline, the error comes at once, with the cause."""

    async def unavailable(request: httpx.Request) -> httpx.Response:
        return sqs_error("ServiceUnavailable", 503)

    handler = Recorder(unavailable)
    policy = RetryPolicy(max_attempts=5, base_delay=60, random=lambda: 1.0)
    async with sqs_client(handler, timeouts=Timeouts(total=1), retry_policy=policy) as sqs:
        with pytest.raises(DeadlineExceededError) as info:
            await sqs.delete_queue(QUEUE)
    assert info.value.attempts == 1 and len(handler.requests) == 1
    assert "ServiceUnavailable" in info.value.last_error
    assert isinstance(info.value.__cause__, SQSError)


async def test_a_receive_gets_its_wait_time_on_top_of_the_deadline() -> None:
    """The same backoff that ends an ordinary call's deadline fits in a long poll's (wait + margin)."""

    async def unavailable(request: httpx.Request) -> httpx.Response:
        return sqs_error("ServiceUnavailable", 503)

    handler = Recorder(unavailable)
    policy = RetryPolicy(max_attempts=2, base_delay=0.3, random=lambda: 1.0)
    async with sqs_client(handler, timeouts=Timeouts(total=0.2), retry_policy=policy) as sqs:
        with pytest.raises(DeadlineExceededError):
            await sqs.delete_queue(QUEUE)
        assert len(handler.requests) == 1
        with pytest.raises(SQSError) as info:
            await sqs.receive_message(QUEUE, wait_time_seconds=0)
    assert not isinstance(info.value, DeadlineExceededError)
    assert len(handler.requests) == 3  # the receive got both its attempts


async def test_a_cancellation_from_outside_is_not_a_deadline() -> None:
    """Cancelling the caller propagates CancelledError, never a DeadlineExceededError."""
    started = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        started.set()
        return await never_answer(request)

    async with sqs_client(hang, timeouts=Timeouts(total=30)) as sqs:
        task = asyncio.ensure_future(sqs.send_message(QUEUE, "x"))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_deadline_error_pickles() -> None:
    error = DeadlineExceededError(operation="GetObject", deadline=30.0, attempts=3, last_error="boom")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is DeadlineExceededError
    assert (copy.operation, copy.deadline, copy.attempts, str(copy)) == ("GetObject", 30.0, 3, str(error))
    timeout = pickle.loads(pickle.dumps(RequestTimeoutError("slow", operation="Op")))
    assert (timeout.operation, str(timeout)) == ("Op", "Op: slow")


# -- throttling ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["OverLimit", "ThrottlingException", "RequestThrottled"])
async def test_throttling_and_over_limit_are_retried_with_a_warning(
    code: str, caplog: pytest.LogCaptureFixture
) -> None:
    """OverLimit (too many in-flight messages) and throttling are waited out, and say so at WARNING."""
    answers = [sqs_error(code), httpx.Response(200, content=b"{}")]

    async def respond(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)

    handler = Recorder(respond)
    with caplog.at_level(logging.WARNING, logger="taskiq_sqs_http.aws"):
        async with sqs_client(handler) as sqs:
            assert await sqs.receive_message(QUEUE) == []
    assert len(handler.requests) == 2
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert f"ReceiveMessage throttled by sqs ({code})" in record.getMessage()
    if code == "OverLimit":
        assert "in-flight messages" in record.getMessage()


# -- credential problems ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "SignatureDoesNotMatch",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidAccessKeyId",
        "InvalidToken",
        "ExpiredToken",
    ],
)
async def test_sqs_credential_rejections_say_so_and_are_not_retried(code: str) -> None:
    handler = Recorder(always(sqs_error(code, 403)))
    async with sqs_client(handler) as sqs:
        with pytest.raises(CredentialsRejectedError) as info:
            await sqs.get_queue_url("jobs")
    error = info.value
    assert isinstance(error, SQSCredentialsRejectedError) and isinstance(error, SQSError)
    assert error.code == code
    assert "rejected the credentials" in str(error)
    assert SECRET not in str(error) and TOKEN not in str(error)
    # ExpiredToken fetches credentials once more; nothing else is retried.
    assert len(handler.requests) == (2 if code == "ExpiredToken" else 1)
    assert isinstance(pickle.loads(pickle.dumps(error)), SQSCredentialsRejectedError)


def always(response: httpx.Response) -> Callable[[httpx.Request], Awaitable[httpx.Response]]:
    async def answer(request: httpx.Request) -> httpx.Response:
        return response

    return answer


async def test_s3_credential_rejection_is_still_an_s3_error() -> None:
    body = (
        b"<Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not "
        b"exist in our records.</Message><RequestId>r-1</RequestId></Error>"
    )
    handler = Recorder(always(httpx.Response(403, content=body)))
    async with S3Client(
        region_name="eu-west-1",
        endpoint_url="http://s3.local",
        transport=httpx.MockTransport(handler),
        credentials=Credentials("AKIDEXAMPLE", SECRET),
        retry_policy=RetryPolicy.testing(),
    ) as s3:
        with pytest.raises(S3CredentialsRejectedError) as info:
            await s3.get_object("bucket", "key")
    assert isinstance(info.value, S3Error) and isinstance(info.value, CredentialsRejectedError)
    assert info.value.request_id == "r-1" and "rejected the credentials" in str(info.value)
    assert len(handler.requests) == 1


def test_a_query_protocol_xml_error_body_yields_its_code() -> None:
    """Some endpoints answer a JSON-protocol request with a Query-protocol XML error."""
    body = (
        b'<?xml version="1.0"?><ErrorResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">'
        b"<Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>The request signature "
        b"we calculated does not match the signature you provided.</Message><Detail/></Error>"
        b"<RequestId>q-1</RequestId></ErrorResponse>"
    )
    error = parse_sqs_error(403, {}, body, "SendMessage")
    assert isinstance(error, SQSCredentialsRejectedError)
    assert (error.code, error.request_id) == ("SignatureDoesNotMatch", "q-1")
    assert error.message.startswith("The request signature we calculated")
    queue = parse_sqs_error(
        400,
        {},
        b"<ErrorResponse><Error><Code>AWS.SimpleQueueService.NonExistentQueue</Code></Error></ErrorResponse>",
        "GetQueueUrl",
    )
    assert isinstance(queue, QueueDoesNotExistError)
    for garbage in (b"<html>oops</html>", b"<ErrorResponse><Error><Co"):
        assert isinstance(parse_sqs_error(403, {}, garbage, "X"), MalformedResponseError)
    s3 = parse_s3_error(
        403, {}, b'<Error xmlns="urn:x"><Code>SignatureDoesNotMatch</Code></Error>', "PutObject"
    )
    assert isinstance(s3, S3CredentialsRejectedError)


async def test_explicit_credentials_past_their_expiration_are_refused_before_sending() -> None:
    past = datetime.now(timezone.utc) - timedelta(minutes=1)
    handler = Recorder(always(httpx.Response(200, content=b"{}")))
    credentials = Credentials("AKIDEXAMPLE", SECRET, TOKEN, expiration=past)
    async with sqs_client(handler, credentials=credentials) as sqs:
        with pytest.raises(CredentialsExpiredError, match="expired at") as info:
            await sqs.delete_queue(QUEUE)

        async def callable_source() -> Credentials:
            return credentials

    async with sqs_client(handler, credentials=callable_source) as sqs:
        with pytest.raises(CredentialsExpiredError):
            await sqs.delete_queue(QUEUE)
    assert handler.requests == []
    assert SECRET not in str(info.value) and TOKEN not in str(info.value)
    future = datetime.now(timezone.utc) + timedelta(hours=1)
    async with sqs_client(handler, credentials=Credentials("AKIDEXAMPLE", SECRET, expiration=future)) as sqs:
        await sqs.delete_queue(QUEUE)
    assert len(handler.requests) == 1


def test_credentials_are_trimmed_and_checked() -> None:
    """A newline copied from a file never reaches a header; wrong types are named without the value."""
    credentials = Credentials(" AKIDEXAMPLE\n", f"{SECRET}\n", f" {TOKEN} ")
    assert (credentials.access_key_id, credentials.secret_access_key, credentials.session_token) == (
        "AKIDEXAMPLE",
        SECRET,
        TOKEN,
    )
    assert Credentials("AKID", SECRET, "  ").session_token is None
    with pytest.raises(ConfigurationError, match=r"secret_access_key must be a str; got int \(length 5\)"):
        Credentials("AKID", 12345)  # type: ignore[arg-type]


async def test_environment_expiration_accepts_any_fraction_length() -> None:
    """``2030-01-01T00:00:00.1Z`` is what some tools write; Python 3.10's fromisoformat rejects it."""
    env = {
        "AWS_ACCESS_KEY_ID": "AKID",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_CREDENTIAL_EXPIRATION": "2099-01-01T00:00:00.1Z",
    }
    credentials = await EnvironmentCredentialProvider(env).get_credentials()
    assert credentials.expiration == datetime(2099, 1, 1, 0, 0, 0, 100000, timezone.utc)


# -- refusals before sending --------------------------------------------------------------------------


def s3_client(handler: Any, *, timeouts: Timeouts | None = None) -> S3Client:
    return S3Client(
        region_name="eu-west-1",
        endpoint_url="http://s3.local",
        transport=httpx.MockTransport(handler),
        timeouts=timeouts,
        credentials=Credentials("AKIDEXAMPLE", SECRET),
        retry_policy=RetryPolicy.testing(),
    )


@pytest.mark.parametrize(
    ("metadata", "match"),
    [
        ({"name": "Zoë"}, "metadata value of key 'name' contains non-ASCII"),
        ({"name": "a\nb"}, "metadata value of key 'name' contains non-ASCII or control"),
        ({"naïve": "x"}, "metadata key 'naïve' is not allowed"),
        ({"two words": "x"}, "metadata key 'two words' is not allowed"),
        ({"n": 5}, "metadata value of key 'n' is a int"),
    ],
)
async def test_s3_metadata_http_cannot_carry_is_refused_naming_the_key(
    metadata: dict[str, Any], match: str
) -> None:
    handler = Recorder(always(httpx.Response(200)))
    async with s3_client(handler) as s3:
        with pytest.raises(ConfigurationError, match=match):
            await s3.put_object("bucket", "key", b"x", metadata=metadata)
    assert handler.requests == []


async def test_s3_header_values_are_sent_trimmed() -> None:
    handler = Recorder(always(httpx.Response(200, headers={"etag": '"e"'})))
    async with s3_client(handler) as s3:
        await s3.put_object(
            "bucket", "key", b"x", content_type=" text/plain ", metadata={"Owner": "  team a  "}
        )
    [request] = handler.requests
    assert request.headers["x-amz-meta-owner"] == "team a"
    assert request.headers["content-type"] == "text/plain"


async def test_a_local_refusal_to_send_is_not_retried() -> None:
    """h11 refusing a header (LocalProtocolError) is an InvalidRequestError, sent once, never retried."""

    async def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.LocalProtocolError("Illegal header value b' secret-ish '")

    handler = Recorder(refuse)
    async with sqs_client(handler) as sqs:
        with pytest.raises(InvalidRequestError) as info:
            await sqs.delete_queue(QUEUE)
    assert not isinstance(info.value, TransportError) and isinstance(info.value, ConfigurationError)
    assert "secret-ish" not in str(info.value)
    assert len(handler.requests) == 1


@pytest.mark.parametrize("backend", ["httpx", "aiohttp"])
async def test_http_session_names_the_header_it_cannot_send(backend: str) -> None:
    """Whatever the transport, a header value HTTP forbids is refused locally, naming only the header."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A client that refuses its own request may connect and hang up without sending anything.
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    try:
        async with HTTPSession(backend=backend) as http:  # type: ignore[arg-type]
            # aiohttp sends surrounding whitespace (servers strip it); h11 refuses it.
            for value in ("v\r\nInjected: 1", " padded ")[: 2 if backend == "httpx" else 1]:
                with pytest.raises(InvalidRequestError, match="header 'x-custom'") as info:
                    await http.send("GET", url, [("x-custom", value)], b"", operation="Probe")
                assert "Injected" not in str(info.value) and "padded" not in str(info.value)
    finally:
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.05)  # let handlers of connections the client dropped finish


class ExpiredProvider:
    """A custom provider that does not check expirations itself: the client still refuses to sign."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    async def get_credentials(self) -> Credentials:
        return self.credentials

    def invalidate(self) -> None:
        """Nothing cached."""

    def describe(self) -> str:
        return "credentials from a test provider"


async def test_the_client_honours_expirations_whatever_the_provider() -> None:
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    handler = Recorder(always(httpx.Response(200)))
    provider = ExpiredProvider(Credentials("AKIDEXAMPLE", SECRET, TOKEN, expiration=past, source="test"))
    async with sqs_client(handler, credentials=provider) as sqs:
        with pytest.raises(CredentialsExpiredError, match="credentials from test expired at"):
            await sqs.delete_queue(QUEUE)
    assert handler.requests == []
    with pytest.raises(ConfigurationError, match="Credentials expiration must be a datetime"):
        Credentials("AKID", SECRET, expiration="2030-01-01")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("env", "match"),
    [
        (
            {"AWS_METADATA_SERVICE_TIMEOUT": "soon"},
            "AWS_METADATA_SERVICE_TIMEOUT is 'soon'; expected a number",
        ),
        ({"AWS_METADATA_SERVICE_TIMEOUT": "-1"}, "AWS_METADATA_SERVICE_TIMEOUT is '-1'; expected a positive"),
        (
            {"AWS_METADATA_SERVICE_NUM_ATTEMPTS": "two"},
            "AWS_METADATA_SERVICE_NUM_ATTEMPTS is 'two'; expected a",
        ),
        ({"AWS_METADATA_SERVICE_NUM_ATTEMPTS": "0"}, "AWS_METADATA_SERVICE_NUM_ATTEMPTS is '0'; expected at"),
    ],
)
def test_environment_numbers_are_checked_naming_the_variable(env: dict[str, str], match: str) -> None:
    from taskiq_sqs_http.aws._environ import env_float, env_int

    with pytest.raises(ConfigurationError, match=match):
        env_float(env, "AWS_METADATA_SERVICE_TIMEOUT", 1.0)
        env_int(env, "AWS_METADATA_SERVICE_NUM_ATTEMPTS", 1)


def test_environment_flags_and_defaults() -> None:
    from taskiq_sqs_http.aws._environ import env_flag, env_float, env_int

    assert env_flag({"X": " Yes "}, "X") and env_flag({"X": "1"}, "X") and not env_flag({"X": "no"}, "X")
    assert not env_flag({}, "X")
    assert env_float({}, "T", 1.5) == 1.5 and env_float({"T": "2.5"}, "T", 1.0) == 2.5
    assert env_int({}, "N", 3) == 3 and env_int({"N": " 4 "}, "N", 1) == 4


def test_kms_key_ids_are_trimmed_and_checked() -> None:
    from taskiq_sqs_http.aws import ServerSideEncryption

    assert ServerSideEncryption("aws:kms", " alias/jobs ").kms_key_id == "alias/jobs"
    with pytest.raises(ConfigurationError, match="kms_key_id is 'alias/jöbs'; expected a KMS key id"):
        ServerSideEncryption("aws:kms", "alias/jöbs")
