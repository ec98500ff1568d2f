"""S3Backend request shapes and error paths against a scripted endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from taskiq.result import TaskiqResult

from taskiq_sqs_http import BrokerConfigError, ResultAccessDeniedError, S3Backend, S3ResultBackendError
from taskiq_sqs_http.aws import RetryPolicy

from .fakes import ENDPOINT, FakeAWS

MakeBackend = Callable[..., S3Backend]


@pytest.fixture
async def make(aws: FakeAWS) -> AsyncIterator[MakeBackend]:
    backends: list[S3Backend] = []
    async with aws.client() as client:

        def factory(**kwargs: Any) -> S3Backend:
            backend: S3Backend = S3Backend(
                "bucket",
                endpoint_url=ENDPOINT,
                region_name="us-east-1",
                aws_access_key_id="AKIDEXAMPLE",
                aws_secret_access_key="secret",
                http_client=client,
                retry_policy=RetryPolicy.testing(),
                **kwargs,
            )
            backends.append(backend)
            return backend

        yield factory
        for backend in backends:
            await backend.shutdown()


@pytest.fixture
def aws() -> FakeAWS:
    return FakeAWS()


def _result() -> TaskiqResult[int]:
    return TaskiqResult(is_err=False, log=None, return_value=1, execution_time=0.1)


async def test_head_403_names_the_missing_permission(aws: FakeAWS, make: MakeBackend) -> None:
    aws.s3_responder = lambda r: httpx.Response(403)
    backend = make(base_path="res")
    with pytest.raises(ResultAccessDeniedError) as info:
        await backend.is_result_ready("t")
    assert "s3:ListBucket" in str(info.value)
    assert "s3://bucket/res/t" in str(info.value)


async def test_head_404_is_not_ready(aws: FakeAWS, make: MakeBackend) -> None:
    aws.s3_responder = lambda r: httpx.Response(404)
    assert await make().is_result_ready("t") is False
    assert aws.s3_requests[0].method == "HEAD"
    assert aws.s3_requests[0].url.path == "/bucket/t"


async def test_other_errors_are_backend_errors(aws: FakeAWS, make: MakeBackend) -> None:
    aws.s3_responder = lambda r: httpx.Response(
        400, content=b"<Error><Code>InvalidRequest</Code><Message>bad</Message></Error>"
    )
    with pytest.raises(S3ResultBackendError, match="InvalidRequest"):
        await make().get_result("t")


async def test_put_sends_encryption_headers(aws: FakeAWS, make: MakeBackend) -> None:
    await make(server_side_encryption="aws:kms", sse_kms_key_id="alias/k").set_result("t", _result())
    (put,) = aws.s3_requests
    assert put.method == "PUT"
    assert put.headers["x-amz-server-side-encryption"] == "aws:kms"
    assert put.headers["x-amz-server-side-encryption-aws-kms-key-id"] == "alias/k"
    assert put.content.startswith(b'{"is_err":false')


async def test_sse_s3(aws: FakeAWS, make: MakeBackend) -> None:
    await make(server_side_encryption="AES256").set_result("t", _result())
    assert aws.s3_requests[0].headers["x-amz-server-side-encryption"] == "AES256"
    assert "x-amz-server-side-encryption-aws-kms-key-id" not in aws.s3_requests[0].headers


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
