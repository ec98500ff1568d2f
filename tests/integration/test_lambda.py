"""Serverless workers on MiniStack's Lambda: a zip built by scripts/lambda_zip.py, an SQS event source mapping
with ReportBatchItemFailures, tasks kicked with SQSBroker, results read from S3.

MiniStack runs Python functions as local subprocesses under its own interpreter (3.11 here, so the zip's
binary wheels are built for it) and keeps them warm between invocations. Lambda needs ``lambda`` in
MiniStack's SERVICES: when the emulator of the run lacks it (``make test`` starts ``sqs,s3`` unless
MINISTACK_SERVICES says otherwise), this module starts a private one with it, stopped by PID afterwards.
botocore is the test-only oracle used to deploy the function and to list buckets.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from taskiq import AsyncTaskiqDecoratedTask

from taskiq_sqs_http import S3Backend, SQSBroker, SQSQueue
from taskiq_sqs_http.aws import RetryPolicy, SQSClient

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import lambda_zip  # noqa: E402
import with_ministack  # noqa: E402

botocore_session = pytest.importorskip("botocore.session")

REGION = "us-east-1"
KEYS: dict[str, Any] = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
FUNCTION_TIMEOUT = 20
# The function's app: one broker serving a standard queue (with a DLQ) and a FIFO queue.
APP = textwrap.dedent(
    '''
    """Test app deployed to MiniStack's Lambda."""
    import logging
    import os
    import sys
    import time

    from taskiq import Context, TaskiqDepends

    from taskiq_sqs_http import S3Backend, SQSBroker, SQSQueue
    from taskiq_sqs_http.serverless import lambda_handler

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)

    broker = (
        SQSBroker(
            os.environ["TASKS_QUEUE"],
            s3_extended_bucket_name=os.environ["PAYLOAD_BUCKET"],
            redeliver_failed=True,
            redelivery_delay=1,
            expose_message_metadata=True,
        )
        .with_queues(SQSQueue(name=os.environ["FIFO_QUEUE"]))
        .with_result_backend(S3Backend(os.environ["RESULTS_BUCKET"]))
    )


    @broker.task(task_name="app:add")
    async def add(a: int, b: int) -> int:
        return a + b


    @broker.task(task_name="app:size")
    async def size(data: str) -> int:
        return len(data)


    @broker.task(task_name="app:fail")
    async def fail() -> None:
        raise RuntimeError("this task always fails")


    @broker.task(task_name="app:step")
    async def step(group: str, n: int, fail_first_at: int = -1, context: Context = TaskiqDepends()) -> int:
        """Returns when it ran (ns); fails on its first delivery when n == fail_first_at."""
        count = int(context.message.labels.get("sqs_approximate_receive_count") or 1)
        if n == fail_first_at and count == 1:
            raise RuntimeError(f"{group}/{n} fails on its first delivery")
        return time.time_ns()


    @broker.task(task_name="app:where")
    async def where() -> dict:
        import httpx
        import taskiq_sqs_http

        return {
            "pid": os.getpid(),
            "invocations": handler.invocations,
            "httpx": httpx.__file__,
            "package": taskiq_sqs_http.__file__,
            "task_root": os.environ.get("LAMBDA_TASK_ROOT", ""),
            "modules_outside_zip": sorted(
                name
                for name in ("httpx", "taskiq", "pydantic", "orjson", "aiohttp", "taskiq_sqs_http")
                if not sys.modules[name].__file__.startswith(os.environ.get("LAMBDA_TASK_ROOT", "/"))
            ),
        }


    handler = lambda_handler(broker, max_concurrency=10, time_margin=1.0)
    '''
)


@dataclass(frozen=True)
class Deployment:
    zip_names: frozenset[str]
    endpoint: str
    queue: str
    fifo: str
    dlq_url: str
    results: str
    payloads: str


def _services(endpoint: str) -> set[str]:
    with urllib.request.urlopen(endpoint + "/_ministack/health", timeout=5) as resp:  # noqa: S310 - local
        return set(json.load(resp).get("services", {}))


@pytest.fixture(scope="module")
def lambda_endpoint() -> Iterator[str]:
    """The run's MiniStack when it emulates Lambda, else a private one that does."""
    endpoint = os.environ.get("TEST_AWS_ENDPOINT_URL", "")
    if endpoint and "lambda" in _services(endpoint):
        yield endpoint
        return
    executable = os.environ.get("MINISTACK", str(ROOT / ".venv-ministack/bin/ministack"))
    if not Path(executable).exists():
        pytest.skip(f"MiniStack with Lambda needed and {executable} is missing (make ministack)")
    with with_ministack.ministack(executable, services="sqs,s3,lambda") as url:
        yield url


@pytest.fixture(scope="module")
def deployment(lambda_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Queues, buckets, the function (zip built by the script) and its two event source mappings."""
    app_dir = tmp_path_factory.mktemp("app")
    (app_dir / "lambda_app.py").write_text(APP)
    built = lambda_zip.build(
        "lambda_app",
        app_dir=app_dir,
        arch="x86_64",
        python_version=f"{sys.version_info[0]}.{sys.version_info[1]}",
        out=app_dir / "lambda_app.zip",
        compile_pyc=False,
    )
    session = botocore_session.get_session()
    options: dict[str, Any] = {"region_name": REGION, "endpoint_url": lambda_endpoint, **KEYS}
    sqs = session.create_client("sqs", **options)
    s3 = session.create_client("s3", **options)
    lam = session.create_client("lambda", **options)
    suffix = uuid.uuid4().hex[:10]
    dlq_url = sqs.create_queue(QueueName=f"lam-dlq-{suffix}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue = f"lam-tasks-{suffix}"
    fifo = f"lam-fifo-{suffix}.fifo"
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
    # Visibility timeout six times the function timeout, as AWS advises for Lambda sources.
    visibility = str(6 * FUNCTION_TIMEOUT)
    queue_url = sqs.create_queue(
        QueueName=queue, Attributes={"VisibilityTimeout": visibility, "RedrivePolicy": redrive}
    )["QueueUrl"]
    fifo_url = sqs.create_queue(
        QueueName=fifo,
        Attributes={
            "FifoQueue": "true",
            "ContentBasedDeduplication": "true",
            "VisibilityTimeout": visibility,
        },
    )["QueueUrl"]
    results, payloads = f"lam-results-{suffix}", f"lam-payloads-{suffix}"
    s3.create_bucket(Bucket=results)
    s3.create_bucket(Bucket=payloads)
    function = f"lam-fn-{suffix}"
    lam.create_function(
        FunctionName=function,
        Runtime=f"python{sys.version_info[0]}.{sys.version_info[1]}",
        Role="arn:aws:iam::000000000000:role/taskiq-worker",
        Handler="lambda_app.handler",
        Code={"ZipFile": built.path.read_bytes()},
        Timeout=FUNCTION_TIMEOUT,
        MemorySize=256,
        Environment={
            "Variables": {
                "TASKS_QUEUE": queue,
                "FIFO_QUEUE": fifo,
                "RESULTS_BUCKET": results,
                "PAYLOAD_BUCKET": payloads,
                "AWS_ENDPOINT_URL": lambda_endpoint,
            }
        },
    )
    for url, batch in ((queue_url, 10), (fifo_url, 10)):
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        lam.create_event_source_mapping(
            EventSourceArn=arn,
            FunctionName=function,
            BatchSize=batch,
            FunctionResponseTypes=["ReportBatchItemFailures"],
        )
    with zipfile.ZipFile(built.path) as archive:
        names = frozenset(archive.namelist())
    yield Deployment(names, lambda_endpoint, queue, fifo, dlq_url, results, payloads)
    for mapping in lam.list_event_source_mappings(FunctionName=function).get("EventSourceMappings", []):
        lam.delete_event_source_mapping(UUID=mapping["UUID"])
    lam.delete_function(FunctionName=function)


@pytest.fixture
async def kicker(deployment: Deployment, fake_keys: None) -> AsyncIterator[SQSBroker]:
    """The producer side: a broker with the same queues and buckets, results read from S3."""
    broker = (
        SQSBroker(
            deployment.queue,
            endpoint_url=deployment.endpoint,
            s3_extended_bucket_name=deployment.payloads,
            extended_payload_threshold=64 * 1024,
            retry_policy=RetryPolicy.testing(),
        )
        .with_queues(SQSQueue(name=deployment.fifo))
        .with_result_backend(S3Backend(deployment.results, endpoint_url=deployment.endpoint))
    )
    await broker.startup()
    yield broker
    await broker.shutdown()


def declare(broker: SQSBroker, name: str) -> AsyncTaskiqDecoratedTask[..., Any]:
    """The producer's stub of a task the function defines."""

    async def stub(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("runs on Lambda only")

    return broker.task(task_name=name)(stub)


async def eventually(check: Any, timeout: float = 60.0, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value {value!r})")
        await asyncio.sleep(interval)


async def test_tasks_run_on_lambda_and_results_land_in_s3(kicker: SQSBroker, deployment: Deployment) -> None:
    add = declare(kicker, "app:add")
    size = declare(kicker, "app:size")
    tasks = [await add.kiq(n, 1000) for n in range(8)]
    big = await size.kiq("x" * 300_000)  # offloaded to S3 (aio-sqs pointer format)

    values = [(await t.wait_result(timeout=60)).return_value for t in tasks]
    assert values == [n + 1000 for n in range(8)]
    big_result = await big.wait_result(timeout=60)
    assert big_result.return_value == 300_000

    # Offloaded payloads are deleted after success, as in the worker.
    session = botocore_session.get_session()
    s3 = session.create_client("s3", region_name=REGION, endpoint_url=deployment.endpoint, **KEYS)

    async def payloads_gone() -> bool:
        listing = s3.list_objects_v2(Bucket=deployment.payloads)
        return listing.get("KeyCount", 0) == 0

    await eventually(payloads_gone, timeout=20)


async def test_the_zip_is_self_contained_and_invocations_stay_warm(
    kicker: SQSBroker, deployment: Deployment
) -> None:
    tops = {name.split("/", 1)[0] for name in deployment.zip_names}
    assert {"taskiq_sqs_http", "taskiq", "httpx", "pydantic", "orjson", "lambda_app.py"} <= tops
    assert not tops & {"botocore", "boto3", "aiobotocore", "s3transfer"}
    where = declare(kicker, "app:where")
    seen: list[dict[str, Any]] = []
    for _ in range(3):
        result = await (await where.kiq()).wait_result(timeout=60)
        assert not result.is_err, result.error
        seen.append(result.return_value)
    for info in seen:
        assert info["task_root"]
        assert info["httpx"].startswith(info["task_root"]), info
        assert info["package"].startswith(info["task_root"]), info
        # (MiniStack's own bootstrap imports its botocore; the function's code never needs it.)
        assert info["modules_outside_zip"] == []
    # MiniStack keeps the worker warm: the same process served later invocations, and the handler
    # (its loop, pool and started broker) counted them.
    by_pid: dict[int, list[int]] = {}
    for info in seen:
        by_pid.setdefault(info["pid"], []).append(info["invocations"])
    assert any(len(v) > 1 and v == sorted(v) and v[-1] > v[0] for v in by_pid.values()), seen


async def test_failing_task_with_redeliver_failed_ends_in_the_dlq(
    kicker: SQSBroker, deployment: Deployment
) -> None:
    fail = declare(kicker, "app:fail")
    kicked = await fail.kiq()

    async with SQSClient(endpoint_url=deployment.endpoint, region_name=REGION, **KEYS) as sqs:

        async def in_dlq() -> list[str]:
            messages = await sqs.receive_message(
                deployment.dlq_url, max_number_of_messages=10, wait_time_seconds=1
            )
            for message in messages:
                await sqs.change_message_visibility(deployment.dlq_url, message.receipt_handle, 0)
            return [m.body for m in messages if kicked.task_id in m.body]

        bodies = await eventually(in_dlq, timeout=60)
    assert len(bodies) == 1
    # Each delivery stored the error as the result, as the worker does.
    result = await kicked.wait_result(timeout=5)
    assert result.is_err


async def test_poison_message_is_never_deleted_and_ends_in_the_dlq(
    kicker: SQSBroker, deployment: Deployment
) -> None:
    marker = f"not a task {uuid.uuid4().hex}"
    async with SQSClient(endpoint_url=deployment.endpoint, region_name=REGION, **KEYS) as sqs:
        url = kicker.queue_urls[deployment.queue]
        await sqs.send_message(url, marker)

        async def in_dlq() -> bool:
            messages = await sqs.receive_message(
                deployment.dlq_url, max_number_of_messages=10, wait_time_seconds=1
            )
            for message in messages:
                await sqs.change_message_visibility(deployment.dlq_url, message.receipt_handle, 0)
            return any(m.body == marker for m in messages)

        assert await eventually(in_dlq, timeout=60)


async def test_fifo_groups_keep_their_order_also_across_a_failure(
    kicker: SQSBroker, deployment: Deployment
) -> None:
    step = declare(kicker, "app:step")
    kicked: dict[str, list[Any]] = {"g1": [], "g2": [], "g3": []}
    for n in range(6):
        for group in kicked:
            fail_first_at = 2 if group == "g3" else -1
            task = (
                await step.kicker()
                .with_labels(queue=deployment.fifo, group_id=group)
                .kiq(group, n, fail_first_at=fail_first_at)
            )
            kicked[group].append(task)

    for group, tasks in kicked.items():
        times: list[int] = []
        for task in tasks:
            # g3's third task stores an error on its first delivery, then succeeds when redelivered.
            result = await eventually(lambda t=task: _succeeded(t), timeout=90)
            times.append(result.return_value)
        assert times == sorted(times), f"group {group} ran out of order: {times}"


async def _succeeded(task: Any) -> Any:
    if not await task.is_ready():
        return None
    result = await task.get_result()
    return None if result.is_err else result


@pytest.fixture
def aiosqs_python() -> str:
    python = os.environ.get("TEST_AIOSQS_PYTHON", str(ROOT / ".venv-aiosqs/bin/python"))
    if not Path(python).exists():
        pytest.skip("taskiq-aio-sqs 2.1.1 venv missing (make aiosqs)")
    return python


def _task_body(task_id: str, task_name: str, *args: Any) -> str:
    message = {
        "task_id": task_id,
        "task_name": task_name,
        "labels": {},
        "labels_types": {},
        "args": list(args),
    }
    return base64.b64encode(json.dumps({**message, "kwargs": {}}).encode()).decode()


def _kick_with_aiosqs(python: str, endpoint: str, request: dict[str, Any]) -> None:
    env = {
        **os.environ,
        "TEST_AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": KEYS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": KEYS["aws_secret_access_key"],
    }
    done = subprocess.run(
        [python, str(Path(__file__).with_name("aiosqs_peer.py"))],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]


async def test_tasks_kicked_by_taskiq_aio_sqs_run_on_lambda(
    kicker: SQSBroker, deployment: Deployment, aiosqs_python: str
) -> None:
    """The wire format holds across libraries: 2.1.1 producers (plain and S3-offloaded) feed the function."""
    small, big = uuid.uuid4().hex, uuid.uuid4().hex
    request = {
        "action": "kick",
        "queue": deployment.queue,
        "bucket": deployment.payloads,
        "messages": [
            {"task_id": small, "task_name": "app:add", "body": _task_body(small, "app:add", 40, 2)},
            # Over 1 MiB: 2.1.1 puts it in S3 and sends its pointer format.
            {"task_id": big, "task_name": "app:size", "body": _task_body(big, "app:size", "y" * 1_100_000)},
        ],
    }
    await asyncio.to_thread(_kick_with_aiosqs, aiosqs_python, deployment.endpoint, request)
    backend = kicker.result_backend

    async def result_of(task_id: str) -> Any:
        if not await backend.is_result_ready(task_id):
            return None
        return await backend.get_result(task_id)

    assert (await eventually(lambda: result_of(small))).return_value == 42
    assert (await eventually(lambda: result_of(big))).return_value == 1_100_000
