"""S3Backend request shapes and error paths, against respx routes for the S3 REST API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import respx
from taskiq.result import TaskiqResult

from taskiq_sqs_http import (
    BrokerConfigError,
    ResultAccessDeniedError,
    ResultIsMissingError,
    S3Backend,
    S3ResultBackendError,
)
from taskiq_sqs_http.aws import Credentials, CredentialSourceError, HTTPSession, RetryPolicy, Timeouts
from taskiq_sqs_http.options import ClientOptions
from taskiq_sqs_http.result_backend import (
    ResultBackendUnavailableError,
    ResultBucketMissingError,
    ResultCredentialsError,
)

ENDPOINT = "http://s3.test"
SECRET = "wJalrXUtnFEMI-not-a-real-secret"
MakeBackend = Callable[..., "S3Backend[Any]"]


def s3_error(status: int, code: str) -> httpx.Response:
    body = f"<Error><Code>{code}</Code><Message>{code} says no</Message></Error>".encode()
    return httpx.Response(status, content=body)


@pytest.fixture
def s3() -> respx.Router:
    return respx.Router(base_url=ENDPOINT, assert_all_called=False)


@pytest.fixture
async def make(s3: respx.Router) -> AsyncIterator[MakeBackend]:
    backends: list[S3Backend[Any]] = []
    async with httpx.AsyncClient(transport=httpx.MockTransport(s3.async_handler)) as client:

        def factory(**kwargs: Any) -> S3Backend[Any]:
            options: dict[str, Any] = {
                "endpoint_url": ENDPOINT,
                "region_name": "us-east-1",
                "aws_access_key_id": "AKIDEXAMPLE",
                "aws_secret_access_key": SECRET,
                "http_client": client,
                "retry_policy": RetryPolicy.testing(5),
                **kwargs,
            }
            backend: S3Backend[Any] = S3Backend("bucket", **options)
            backends.append(backend)
            return backend

        yield factory
        for backend in backends:
            await backend.shutdown()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The client's backoff waits, recorded instead of slept."""
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float, result: Any = None) -> Any:
        waits.append(delay)
        return await real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    yield waits


def _result() -> TaskiqResult[int]:
    return TaskiqResult(is_err=False, log=None, return_value=1, execution_time=0.1)


# -- missing results, missing buckets ---------------------------------------------------------------------
async def test_missing_key_is_not_ready_and_one_get_proves_the_bucket(
    s3: respx.Router, make: MakeBackend
) -> None:
    """A HEAD 404 has no body: the first one is asked again with a GET; later ones cost one HEAD."""
    head = s3.head("/bucket/t").respond(404)
    get = s3.get("/bucket/t").mock(return_value=s3_error(404, "NoSuchKey"))
    backend = make()
    assert await backend.is_result_ready("t") is False
    assert await backend.is_result_ready("t") is False
    assert (head.call_count, get.call_count) == (2, 1)


async def test_missing_bucket_is_a_configuration_error_not_a_missing_result(
    s3: respx.Router, make: MakeBackend
) -> None:
    s3.head("/bucket/t").respond(404)
    s3.get("/bucket/t").mock(return_value=s3_error(404, "NoSuchBucket"))
    s3.put("/bucket/t").mock(return_value=s3_error(404, "NoSuchBucket"))
    backend = make()
    for call in (
        backend.is_result_ready("t"),
        backend.get_result("t"),
        backend.set_result("t", _result()),
    ):
        with pytest.raises(ResultBucketMissingError) as info:
            await call
        assert not isinstance(info.value, ResultIsMissingError)
        assert info.value.code == "NoSuchBucket"  # what 2.1.1 reported
        assert "'bucket' does not exist" in str(info.value)
        assert ENDPOINT in str(info.value)
        assert "create_bucket=True" in str(info.value)


async def test_missing_progress_bucket_raises_too(s3: respx.Router, make: MakeBackend) -> None:
    s3.get("/bucket/t~progress").mock(return_value=s3_error(404, "NoSuchBucket"))
    with pytest.raises(ResultBucketMissingError):
        await make().get_progress("t")


async def test_missing_key_after_a_write_costs_one_head(s3: respx.Router, make: MakeBackend) -> None:
    s3.put("/bucket/done").respond(200)
    s3.head("/bucket/other").respond(404)
    get = s3.get("/bucket/other").respond(404)
    backend = make()
    await backend.set_result("done", _result())
    assert await backend.is_result_ready("other") is False
    assert get.call_count == 0


async def test_missing_result_is_missing(s3: respx.Router, make: MakeBackend) -> None:
    s3.get("/bucket/t").mock(return_value=s3_error(404, "NoSuchKey"))
    with pytest.raises(ResultIsMissingError, match="Result for task t is missing"):
        await make().get_result("t")


async def test_keep_results_false_deletes_result_and_progress(s3: respx.Router, make: MakeBackend) -> None:
    s3.get("/bucket/t").respond(200, content=b'{"is_err":false,"return_value":1,"execution_time":0.1}')
    delete = s3.post("/bucket", params={"delete": ""}).respond(200)
    assert (await make(keep_results=False).get_result("t")).return_value == 1
    body = delete.calls.last.request.content
    assert b"<Key>t</Key>" in body
    assert b"<Key>t~progress</Key>" in body


async def test_a_failed_cleanup_does_not_lose_the_result(
    s3: respx.Router, make: MakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    s3.get("/bucket/t").respond(200, content=b'{"is_err":false,"return_value":1,"execution_time":0.1}')
    s3.post("/bucket", params={"delete": ""}).mock(return_value=s3_error(403, "AccessDenied"))
    with caplog.at_level(logging.WARNING, logger="taskiq_sqs_http.result_backend"):
        assert (await make(keep_results=False).get_result("t")).return_value == 1
    assert "s3:DeleteObject" in caplog.text


# -- access denied vs rejected credentials ------------------------------------------------------------------
async def test_head_403_names_the_missing_permission(s3: respx.Router, make: MakeBackend) -> None:
    s3.head("/bucket/res/t").respond(403)
    s3.get("/bucket/res/t").mock(return_value=s3_error(403, "AccessDenied"))
    with pytest.raises(ResultAccessDeniedError) as info:
        await make(base_path="res").is_result_ready("t")
    assert "s3:ListBucket" in str(info.value)
    assert "s3://bucket/res/t" in str(info.value)


@pytest.mark.parametrize(
    "code", ["SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "ExpiredToken"]
)
async def test_rejected_credentials_say_so(s3: respx.Router, make: MakeBackend, code: str) -> None:
    s3.put("/bucket/t").mock(return_value=s3_error(403, code))
    s3.head("/bucket/t").respond(403)
    s3.get("/bucket/t").mock(return_value=s3_error(403, code))
    backend = make()
    for call in (backend.set_result("t", _result()), backend.is_result_ready("t"), backend.get_result("t")):
        with pytest.raises(ResultCredentialsError) as info:
            await call
        message = str(info.value)
        assert not isinstance(info.value, ResultAccessDeniedError)
        assert info.value.code == code
        assert code in message
        assert "credentials" in message
        assert "credentials from arguments" in message  # where they came from
        assert "s3:ListBucket" not in message
        assert "s3:PutObject" not in message
        assert SECRET not in message


async def test_credentials_missing_from_the_chain_are_credential_errors(
    s3: respx.Router, make: MakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(ResultCredentialsError, match="NoCredentialsError"):
        await make(aws_access_key_id=None, aws_secret_access_key=None).set_result("t", _result())


async def test_a_credential_source_that_does_not_answer_is_transient(make: MakeBackend) -> None:
    async def unreachable() -> Credentials:
        raise CredentialSourceError("connection refused", source="container endpoint")

    backend = make(aws_access_key_id=None, aws_secret_access_key=None, credentials=unreachable)
    with pytest.raises(ResultBackendUnavailableError, match="container endpoint"):
        await backend.set_result("t", _result())


async def test_expired_explicit_credentials_are_credential_errors(make: MakeBackend) -> None:
    past = datetime.now(timezone.utc) - timedelta(minutes=1)
    expired = Credentials("AKID", SECRET, "token", expiration=past)
    backend = make(aws_access_key_id=None, aws_secret_access_key=None, credentials=expired)
    with pytest.raises(ResultCredentialsError) as info:
        await backend.set_result("t", _result())
    assert SECRET not in str(info.value)


# -- transient vs permanent ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "ceilings"),
    [("ServiceUnavailable", [0.25, 0.5, 1.0, 2.0]), ("SlowDown", [1.0, 2.0, 4.0, 4.0])],
)
async def test_transient_errors_get_five_attempts_with_growing_backoff(
    s3: respx.Router, make: MakeBackend, sleeps: list[float], code: str, ceilings: list[float]
) -> None:
    """Without a retry_policy, results get 5 attempts; throttling waits longer than a 503."""
    put = s3.put("/bucket/t").mock(return_value=s3_error(503, code))
    backend = make(retry_policy=None)
    with pytest.raises(ResultBackendUnavailableError) as info:
        await backend.set_result("t", _result())
    assert put.call_count == 5
    assert all(0 <= wait <= ceiling for wait, ceiling in zip(sleeps, ceilings, strict=True))
    assert isinstance(info.value, S3ResultBackendError)
    assert info.value.code == code
    assert "transient" in str(info.value)
    assert "s3://bucket/t" in str(info.value)


async def test_a_brief_outage_is_absorbed(s3: respx.Router, make: MakeBackend) -> None:
    put = s3.put("/bucket/t")
    put.side_effect = [httpx.Response(503), httpx.Response(500), httpx.Response(503), httpx.Response(200)]
    await make().set_result("t", _result())
    assert put.call_count == 4


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), s3_error(500, "InternalError")],
    ids=["connect", "timeout", "500"],
)
async def test_reads_that_keep_failing_are_transient(
    s3: respx.Router, make: MakeBackend, failure: Exception | httpx.Response
) -> None:
    get = s3.get("/bucket/t")
    if isinstance(failure, httpx.Response):
        get.mock(return_value=failure)
    else:
        get.mock(side_effect=failure)
    with pytest.raises(ResultBackendUnavailableError):
        await make().get_result("t")
    assert get.call_count == 5


async def test_other_errors_are_plain_backend_errors(s3: respx.Router, make: MakeBackend) -> None:
    get = s3.get("/bucket/t").mock(return_value=s3_error(400, "InvalidRequest"))
    with pytest.raises(S3ResultBackendError, match="InvalidRequest") as info:
        await make().get_result("t")
    assert type(info.value) is S3ResultBackendError
    assert get.call_count == 1  # permanent: not retried


# -- create_bucket ------------------------------------------------------------------------------------------
async def test_create_bucket_is_off_by_default(s3: respx.Router, make: MakeBackend) -> None:
    await make().startup()
    assert not s3.calls


async def test_create_bucket_creates_a_missing_bucket(s3: respx.Router, make: MakeBackend) -> None:
    s3.head("/bucket").respond(404)
    create = s3.put("/bucket").respond(200)
    await make(create_bucket=True).startup()
    assert create.call_count == 1
    assert create.calls.last.request.content == b""  # us-east-1 takes no LocationConstraint


async def test_create_bucket_sends_the_region_elsewhere(s3: respx.Router, make: MakeBackend) -> None:
    s3.head("/bucket").respond(404)
    create = s3.put("/bucket").respond(200)
    await make(create_bucket=True, region_name="eu-west-1").startup()
    assert b"<LocationConstraint>eu-west-1</LocationConstraint>" in create.calls.last.request.content


async def test_create_bucket_leaves_an_existing_bucket_alone(s3: respx.Router, make: MakeBackend) -> None:
    s3.head("/bucket").respond(200)
    create = s3.put("/bucket").respond(200)
    s3.head("/bucket/t").respond(404)
    get = s3.get("/bucket/t").respond(404)
    backend = make(create_bucket=True)
    await backend.startup()
    assert create.call_count == 0
    assert await backend.is_result_ready("t") is False
    assert get.call_count == 0  # the bucket is known to exist: a 404 is the key


async def test_create_bucket_race_already_owned_is_fine(s3: respx.Router, make: MakeBackend) -> None:
    s3.head("/bucket").respond(404)
    s3.put("/bucket").mock(return_value=s3_error(409, "BucketAlreadyOwnedByYou"))
    await make(create_bucket=True, region_name="eu-west-1").startup()


async def test_create_bucket_name_of_another_account(s3: respx.Router, make: MakeBackend) -> None:
    s3.head("/bucket").respond(404)
    s3.put("/bucket").mock(return_value=s3_error(409, "BucketAlreadyExists"))
    with pytest.raises(S3ResultBackendError, match="another AWS account"):
        await make(create_bucket=True).startup()


async def test_create_bucket_denied_head_warns_and_does_not_create(
    s3: respx.Router, make: MakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    s3.head("/bucket").respond(403)
    create = s3.put("/bucket").respond(200)
    with caplog.at_level(logging.WARNING, logger="taskiq_sqs_http.result_backend"):
        await make(create_bucket=True).startup()
    assert create.call_count == 0
    assert "s3:ListBucket" in caplog.text


async def test_create_bucket_with_rejected_credentials(s3: respx.Router, make: MakeBackend) -> None:
    s3.head("/bucket").respond(404)
    s3.put("/bucket").mock(return_value=s3_error(403, "InvalidAccessKeyId"))
    with pytest.raises(ResultCredentialsError, match="CreateBucket"):
        await make(create_bucket=True).startup()


async def test_a_bucket_in_another_region_is_named(s3: respx.Router, make: MakeBackend) -> None:
    s3.head("/bucket").respond(301)
    s3.get("/bucket/t").mock(return_value=s3_error(301, "PermanentRedirect"))
    with pytest.raises(S3ResultBackendError, match="not in region 'eu-west-1'; set region_name"):
        await make(create_bucket=True, region_name="eu-west-1").startup()
    with pytest.raises(S3ResultBackendError, match="PermanentRedirect: bucket 'bucket' is not in region"):
        await make(region_name="eu-west-1").get_result("t")


@pytest.mark.parametrize(("name", "value"), [("create_bucket", "yes"), ("keep_results", 1)])
def test_flags_must_be_bools(name: str, value: Any) -> None:
    with pytest.raises(BrokerConfigError, match=name):
        S3Backend("bucket", **{name: value})


# -- pools and secrets ------------------------------------------------------------------------------------
async def test_a_lent_session_is_never_closed_by_the_backend(s3: respx.Router) -> None:
    s3.put("/bucket/t").respond(200)
    async with HTTPSession(transport=httpx.MockTransport(s3.async_handler)) as session:
        backend: S3Backend[int] = S3Backend(
            "bucket", endpoint_url=ENDPOINT, aws_access_key_id="AK", aws_secret_access_key=SECRET
        )
        backend.use_session(session)
        await backend.startup()
        await backend.set_result("t", _result())
        await backend.shutdown()
        assert not session.closed
        assert s3.calls.call_count == 1


async def test_own_timeouts_keep_a_pool_of_their_own(s3: respx.Router) -> None:
    s3.put("/bucket/t").respond(200)
    async with HTTPSession(transport=httpx.MockTransport(s3.async_handler)) as session:
        backend: S3Backend[int] = S3Backend(
            "bucket",
            endpoint_url=ENDPOINT,
            aws_access_key_id="AK",
            aws_secret_access_key=SECRET,
            timeouts=Timeouts(read=2),
        )
        backend.use_session(session)
        await backend.startup()
        assert backend._client.session is not session  # pyright: ignore[reportPrivateUsage, reportOptionalMemberAccess]
        await backend.shutdown()


async def test_the_backend_closes_the_pool_it_opened(make: MakeBackend) -> None:
    backend = make()
    await backend.startup()
    session = backend._client.session  # pyright: ignore[reportPrivateUsage, reportOptionalMemberAccess]
    await backend.shutdown()
    assert session.closed


async def test_a_closed_lent_session_is_not_used(s3: respx.Router, make: MakeBackend) -> None:
    s3.put("/bucket/t").respond(200)
    closed = HTTPSession(transport=httpx.MockTransport(s3.async_handler))
    await closed.aclose()
    backend = make()
    backend.use_session(closed)
    await backend.set_result("t", _result())  # on a pool of its own


def test_secrets_are_not_kept_in_plain_attributes() -> None:
    backend: S3Backend[Any] = S3Backend(
        "bucket", aws_access_key_id="AKID", aws_secret_access_key=SECRET, aws_session_token="TOKEN-xyz"
    )
    assert SECRET not in repr(vars(backend))
    assert "TOKEN-xyz" not in repr(vars(backend))


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"aws_access_key_id": "AK"}, "aws_secret_access_key"),
        ({"aws_secret_access_key": SECRET}, "aws_access_key_id"),
        ({"aws_secret_access_key": 123}, "aws_secret_access_key"),
    ],
)
def test_incomplete_keys_are_refused_at_construction(options: dict[str, Any], named: str) -> None:
    with pytest.raises(BrokerConfigError, match=named) as info:
        S3Backend("bucket", **options)
    assert SECRET not in str(info.value)


async def test_client_options_can_be_shared_with_the_broker(s3: respx.Router) -> None:
    put = s3.put("/bucket/t").respond(200)
    async with httpx.AsyncClient(transport=httpx.MockTransport(s3.async_handler)) as client:
        options = ClientOptions.from_arguments(
            endpoint_url=ENDPOINT,
            region_name="eu-west-1",
            credentials=Credentials("AK", SECRET),
            http_client=client,
        )
        backend: S3Backend[int] = S3Backend("bucket", client_options=options)
        await backend.set_result("t", _result())
        await backend.shutdown()
    assert "eu-west-1/s3/aws4_request" in put.calls.last.request.headers["authorization"]
    assert backend.region_name == "eu-west-1"


def test_client_options_or_flat_arguments_not_both() -> None:
    with pytest.raises(BrokerConfigError, match="client_options or"):
        S3Backend("bucket", client_options=ClientOptions(), endpoint_url=ENDPOINT)


def test_a_bad_endpoint_is_refused_at_construction() -> None:
    with pytest.raises(BrokerConfigError, match="endpoint_url"):
        S3Backend("bucket", endpoint_url="not a url")


# -- request shapes ------------------------------------------------------------------------------------------
async def test_put_sends_encryption_headers(s3: respx.Router, make: MakeBackend) -> None:
    put = s3.put("/bucket/t").respond(200)
    await make(server_side_encryption="aws:kms", sse_kms_key_id="alias/k").set_result("t", _result())
    request = put.calls.last.request
    assert request.headers["x-amz-server-side-encryption"] == "aws:kms"
    assert request.headers["x-amz-server-side-encryption-aws-kms-key-id"] == "alias/k"
    assert request.content.startswith(b'{"is_err":false')


async def test_sse_s3(s3: respx.Router, make: MakeBackend) -> None:
    put = s3.put("/bucket/t").respond(200)
    await make(server_side_encryption="AES256").set_result("t", _result())
    headers = put.calls.last.request.headers
    assert headers["x-amz-server-side-encryption"] == "AES256"
    assert "x-amz-server-side-encryption-aws-kms-key-id" not in headers


@pytest.mark.parametrize(
    ("base_path", "task_id", "key"),
    [
        ("", "abc", "abc"),
        ("results", "abc", "results/abc"),
        ("/results/", "abc", "results/abc"),
        ("a\\b", "abc", "a/b/abc"),
        ("results", "../x", "results/~Li4veA"),
        ("results", "..", "results/~Li4"),
        ("results", "/etc/passwd", "results/~L2V0Yy9wYXNzd2Q"),
        ("results", "~abc", "results/~fmFiYw"),
    ],
)
def test_keys_never_escape_base_path(base_path: str, task_id: str, key: str) -> None:
    assert S3Backend("bucket", base_path=base_path).result_key(task_id) == key


@pytest.mark.parametrize("base_path", ["a/../b", "./x", "a//b"])
def test_dot_segments_in_base_path_are_refused(base_path: str) -> None:
    with pytest.raises(BrokerConfigError, match="base_path"):
        S3Backend("bucket", base_path=base_path)


def test_default_serializer_and_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-north-1")
    backend: S3Backend[Any] = S3Backend("bucket")
    assert backend.region_name == "eu-north-1"
    assert backend.keep_results is True
