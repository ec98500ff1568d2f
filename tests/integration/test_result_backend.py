"""S3Backend against the emulator: round trips, missing results, progress, key safety."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from taskiq.depends.progress_tracker import TaskProgress, TaskState
from taskiq.result import TaskiqResult

from taskiq_sqs_http import ResultIsMissingError, S3Backend
from taskiq_sqs_http.aws import NoSuchKeyError, RetryPolicy, S3Client

# Shared fixtures (queue, fifo_queue, bucket, sqs, s3, make_broker).
pytest_plugins = ["tests.integration.broker_support"]


MakeBackend = Callable[..., S3Backend]


@pytest.fixture
async def make_backend(endpoint_url: str, fake_keys: None) -> AsyncIterator[MakeBackend]:
    backends: list[S3Backend] = []

    def factory(bucket_name: str, **kwargs: object) -> S3Backend:
        backend: S3Backend = S3Backend(
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
