"""S3Backend against the emulator: round trips, missing results and buckets, bucket creation, progress, key
safety, and the pool it shares with a broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from taskiq.api import run_receiver_task
from taskiq.depends.progress_tracker import TaskProgress, TaskState  # pyright: ignore[reportMissingTypeStubs]
from taskiq.exceptions import ResultIsReadyError
from taskiq.result import TaskiqResult

from taskiq_sqs_http import ResultIsMissingError, S3Backend, S3ResultBackendError, SQSBroker
from taskiq_sqs_http.aws import NoSuchKeyError, RetryPolicy, S3Client
from taskiq_sqs_http.result_backend import ResultBucketMissingError

MakeBackend = Callable[..., "S3Backend[Any]"]


@pytest.fixture
async def make_backend(endpoint_url: str, fake_keys: None) -> AsyncIterator[MakeBackend]:
    backends: list[S3Backend[Any]] = []

    def factory(bucket_name: str, **kwargs: Any) -> S3Backend[Any]:
        backend: S3Backend[Any] = S3Backend(
            bucket_name, endpoint_url=endpoint_url, retry_policy=RetryPolicy.testing(), **kwargs
        )
        backends.append(backend)
        return backend

    yield factory
    for backend in backends:
        await backend.shutdown()


def _result(value: object = "v", log: str | None = "L") -> TaskiqResult[object]:
    return TaskiqResult(is_err=False, log=log, return_value=value, execution_time=0.1)


async def test_set_and_get_result_round_trip(make_backend: MakeBackend, bucket: str, s3: S3Client) -> None:
    backend = make_backend(bucket)
    await backend.startup()
    assert not await backend.is_result_ready("tid")
    await backend.set_result("tid", _result({"a": 1}))
    assert await backend.is_result_ready("tid")
    result = await backend.get_result("tid")
    assert result.return_value == {"a": 1}
    assert result.log is None
    assert (await backend.get_result("tid", with_logs=True)).log == "L"
    # 2.1.1's layout and bytes: the key is the task id, the body orjson of model_dump(mode="json").
    stored = await s3.get_object(bucket, "tid")
    assert stored.body.startswith(b'{"is_err":false')


async def test_base_path_and_hostile_task_ids_stay_inside(
    make_backend: MakeBackend, bucket: str, s3: S3Client
) -> None:
    backend = make_backend(bucket, base_path="/results/")
    await backend.startup()
    await backend.set_result("plain", _result())
    assert (await s3.head_object(bucket, "results/plain")).content_length > 0
    for task_id in ["../escape", "/abs", "..", "a/b", "x\\y"]:
        key = backend.result_key(task_id)
        assert key.startswith("results/~"), key
        assert "/" not in key.removeprefix("results/")
        await backend.set_result(task_id, _result(task_id))
        assert (await backend.get_result(task_id)).return_value == task_id


async def test_missing_result_raises_result_is_missing(make_backend: MakeBackend, bucket: str) -> None:
    backend = make_backend(bucket, base_path="r")
    with pytest.raises(ResultIsMissingError, match="nope"):
        await backend.get_result("nope")


async def test_keep_results_false_deletes_after_read(
    make_backend: MakeBackend, bucket: str, s3: S3Client
) -> None:
    backend = make_backend(bucket, keep_results=False)
    await backend.set_result("once", _result())
    await backend.get_result("once")
    with pytest.raises(NoSuchKeyError):
        await s3.get_object(bucket, "once")


async def test_progress_round_trip(make_backend: MakeBackend, bucket: str) -> None:
    backend = make_backend(bucket)
    assert await backend.get_progress("p") is None
    await backend.set_progress("p", TaskProgress(state=TaskState.STARTED, meta={"done": 3}))
    progress = await backend.get_progress("p")
    assert progress is not None
    assert progress.state == TaskState.STARTED
    assert progress.meta == {"done": 3}


@pytest.mark.parametrize(("sse", "kms"), [("AES256", None), ("aws:kms", "alias/results")])
async def test_server_side_encryption_is_requested(
    make_backend: MakeBackend, bucket: str, s3: S3Client, sse: str, kms: str | None
) -> None:
    """The emulator stores the SSE headers we send; AWS would encrypt with them."""
    backend = make_backend(bucket, server_side_encryption=sse, sse_kms_key_id=kms)
    await backend.set_result("enc", _result())
    assert (await backend.get_result("enc")).return_value == "v"


def _new_bucket_name() -> str:
    return f"nb-{uuid.uuid4().hex[:20]}"


async def test_missing_bucket_is_named_not_a_missing_result(make_backend: MakeBackend) -> None:
    """2.1.1 reported NoSuchBucket; a missing bucket is configuration, never "result is missing"."""
    name = _new_bucket_name()
    backend = make_backend(name)
    await backend.startup()  # create_bucket defaults to False: nothing is checked or created
    for call in (backend.is_result_ready("t"), backend.get_result("t"), backend.set_result("t", _result())):
        with pytest.raises(ResultBucketMissingError, match=name):
            await call


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
async def test_create_bucket_creates_it_once(make_backend: MakeBackend, region: str) -> None:
    name = _new_bucket_name()
    first = make_backend(name, create_bucket=True, region_name=region)
    await first.startup()
    assert not await first.is_result_ready("t")
    await first.set_result("t", _result())
    second = make_backend(name, create_bucket=True, region_name=region)
    await second.startup()  # exists already: left alone
    assert (await second.get_result("t")).return_value == "v"


async def test_worker_and_waiter_see_a_missing_bucket_at_once(
    make_broker: Callable[..., Awaitable[SQSBroker]], unique_name: str, endpoint_url: str
) -> None:
    """The quick start on an empty account used to end in a 30 s TaskiqResultTimeoutError."""
    broker = await make_broker(unique_name, create_queues=True, wait_time_seconds=1, start=False)
    broker.with_result_backend(
        S3Backend(_new_bucket_name(), endpoint_url=endpoint_url, retry_policy=RetryPolicy.testing())
    )

    @broker.task
    async def add(a: int, b: int) -> int:
        return a + b

    await broker.startup()
    task = await add.kiq(1, 2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ResultIsReadyError) as info:  # taskiq wraps what is_result_ready raises
        await task.wait_result(timeout=30)
    assert isinstance(info.value.__cause__, ResultBucketMissingError)
    assert loop.time() - started < 5


async def test_backend_borrows_the_brokers_pool_and_leaves_it_open(
    make_broker: Callable[..., Awaitable[SQSBroker]], unique_name: str, endpoint_url: str
) -> None:
    broker = await make_broker(unique_name, create_queues=True, wait_time_seconds=1, start=False)
    backend: S3Backend[Any] = S3Backend(
        _new_bucket_name(), endpoint_url=endpoint_url, create_bucket=True, retry_policy=RetryPolicy.testing()
    )
    broker.with_result_backend(backend)

    @broker.task
    async def add(a: int, b: int) -> int:
        return a + b

    await broker.startup()
    worker = asyncio.create_task(run_receiver_task(broker))
    try:
        task = await add.kiq(1, 2)
        assert (await task.wait_result(timeout=30)).return_value == 3
        session = backend._client.session  # pyright: ignore[reportPrivateUsage, reportOptionalMemberAccess]
        await backend.shutdown()
        assert not session.closed  # the broker's pool: the broker closes it
        assert (await add.kiq(2, 2)).task_id  # and keeps sending on it
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)


async def test_a_bucket_in_another_region_is_named(make_backend: MakeBackend, bucket: str) -> None:
    """The bucket fixture lives in us-east-1; S3 answers 301 to a client signing for another region."""
    backend = make_backend(bucket, region_name="eu-west-1", create_bucket=True)
    with pytest.raises(S3ResultBackendError, match="not in region 'eu-west-1'"):
        await backend.startup()
