"""The fault proxy itself (fast, part of ``make test``): forwarding, counting, each fault kind, seeding."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from taskiq_sqs_http.aws import (
    HTTPSession,
    RequestTimeoutError,
    RetryPolicy,
    S3Client,
    SendMessageEntry,
    ServiceError,
    SQSClient,
    Timeouts,
    TransportError,
)

from .proxy import FaultPlan, FaultProxy, running_proxy
from .support import unique


@pytest.fixture
def proxy(emulator: str) -> Iterator[FaultProxy]:
    with running_proxy(emulator) as running:
        yield running


@pytest.fixture
async def sqs(proxy: FaultProxy, fake_keys: None) -> AsyncIterator[SQSClient]:
    async with SQSClient(endpoint_url=proxy.url, retry_policy=RetryPolicy.testing(max_attempts=1)) as c:
        yield c


@pytest.fixture
async def s3(proxy: FaultProxy, fake_keys: None) -> AsyncIterator[S3Client]:
    async with S3Client(endpoint_url=proxy.url, retry_policy=RetryPolicy.testing(max_attempts=1)) as c:
        yield c


async def _count(sqs: SQSClient, url: str) -> int:
    attrs = await sqs.get_queue_attributes(url, ["ApproximateNumberOfMessages"])
    return int(attrs["ApproximateNumberOfMessages"])


def test_upstream_must_be_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy("http://example.com:4566")
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy("https://127.0.0.1:4566")
    with pytest.raises(ValueError, match="unknown fault kinds"):
        FaultPlan(kinds=("explode",))


async def test_forwards_sqs_and_s3_and_counts_by_operation(
    proxy: FaultProxy, sqs: SQSClient, s3: S3Client
) -> None:
    url = await sqs.create_queue(unique("fwd"))
    assert url.startswith(proxy.url), "queue URLs must keep traffic on the proxy"
    await sqs.send_message(url, "hello")
    (message,) = await sqs.receive_message(url, wait_time_seconds=1)
    assert message.body == "hello"
    bucket = unique("b")
    await s3.create_bucket(bucket)
    await s3.put_object(bucket, "k/a b.json", b"x" * 100_000)
    assert (await s3.get_object(bucket, "k/a b.json")).body == b"x" * 100_000
    await s3.head_object(bucket, "k/a b.json")
    await s3.delete_object(bucket, "k/a b.json")
    assert proxy.requests["CreateQueue"] == 1
    assert proxy.requests["SendMessage"] == 1
    assert proxy.requests["ReceiveMessage"] == 1
    for op in ("S3.CreateBucket", "S3.PutObject", "S3.GetObject", "S3.HeadObject", "S3.DeleteObject"):
        assert proxy.requests[op] == 1, op
    assert proxy.total_faults() == 0


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("500", 500, "InternalError"),
        ("503", 503, "ServiceUnavailable"),
        ("throttle", 400, "ThrottlingException"),
    ],
)
async def test_error_answers_are_not_forwarded(
    proxy: FaultProxy, sqs: SQSClient, kind: str, status: int, code: str
) -> None:
    url = await sqs.create_queue(unique("err"))
    proxy.set_plan(FaultPlan(scripted={"SendMessage": (kind,)}))
    with pytest.raises(ServiceError) as info:
        await sqs.send_message(url, "x")
    assert (info.value.status, info.value.code) == (status, code)
    assert await _count(sqs, url) == 0
    assert proxy.faults_by_kind() == {kind: 1}


async def test_s3_throttling_is_slow_down(proxy: FaultProxy, s3: S3Client) -> None:
    bucket = unique("b")
    await s3.create_bucket(bucket)
    proxy.set_plan(FaultPlan(scripted={"S3.PutObject": ("throttle",)}))
    with pytest.raises(ServiceError) as info:
        await s3.put_object(bucket, "k", b"v")
    assert (info.value.status, info.value.code) == (503, "SlowDown")


async def test_drop_before_is_not_applied_and_drop_after_is(proxy: FaultProxy, sqs: SQSClient) -> None:
    url = await sqs.create_queue(unique("drop"))
    proxy.set_plan(FaultPlan(scripted={"SendMessage": ("drop_before", "drop_after")}))
    with pytest.raises(TransportError):
        await sqs.send_message(url, "never applied")
    assert await _count(sqs, url) == 0
    with pytest.raises(TransportError):
        await sqs.send_message(url, "applied, but the client cannot know")
    assert await _count(sqs, url) == 1
    assert proxy.faults_by_kind() == {"drop_before": 1, "drop_after": 1}


async def test_delay_outlasts_the_read_timeout(proxy: FaultProxy, fake_keys: None) -> None:
    name = unique("delay")
    async with SQSClient(endpoint_url=proxy.url) as admin:
        await admin.create_queue(name)  # with normal timeouts: a loaded machine may take over 0.5 s
    proxy.set_plan(FaultPlan(delay_seconds=3.0, scripted={"GetQueueUrl": ("delay",)}))
    async with (
        HTTPSession(timeouts=Timeouts(read=1.0)) as session,
        SQSClient(
            endpoint_url=proxy.url, session=session, retry_policy=RetryPolicy.testing(max_attempts=1)
        ) as sqs,
    ):
        with pytest.raises(RequestTimeoutError):
            await sqs.get_queue_url(name)
    # The next request, on a fresh connection, goes through.
    async with SQSClient(endpoint_url=proxy.url) as sqs:
        await sqs.get_queue_url(name)
    assert proxy.faults_by_kind() == {"delay": 1}


async def test_fail_entries_really_drops_those_entries(proxy: FaultProxy, sqs: SQSClient) -> None:
    url = await sqs.create_queue(unique("fail"))
    script = {"SendMessageBatch": ("fail_entries", "fail_entries")}
    proxy.set_plan(FaultPlan(failed_entries=2, scripted=script))
    entries = [SendMessageEntry(str(i), f"m{i}") for i in range(3)]
    result = await sqs.send_message_batch(url, entries)
    assert len(result.successful) == 1
    assert len(result.failed) == 2
    assert all(not f.sender_fault and f.code == "InternalError" for f in result.failed)
    assert await _count(sqs, url) == 1
    # A batch whose every entry fails is answered by the proxy alone.
    result = await sqs.send_message_batch(url, entries[:1])
    assert (len(result.successful), len(result.failed)) == (0, 1)
    assert await _count(sqs, url) == 1


async def test_clock_skew_is_refused_once_then_learned(proxy: FaultProxy, fake_keys: None) -> None:
    proxy.set_plan(FaultPlan(clock_skew=3600))
    async with (
        SQSClient(endpoint_url=proxy.url, retry_policy=RetryPolicy.testing(max_attempts=1)) as sqs,
        S3Client(endpoint_url=proxy.url, retry_policy=RetryPolicy.testing(max_attempts=1)) as s3,
    ):
        name = unique("skew")
        await sqs.create_queue(name)
        for _ in range(3):
            await sqs.get_queue_url(name)
        bucket = unique("b")
        await s3.create_bucket(bucket)
        await s3.put_object(bucket, "k", b"v")
    # One refusal per client: each corrects its clock from the Date header and re-signs.
    assert proxy.faults_by_kind() == {"skew": 2}


async def test_expired_credentials_are_refused(proxy: FaultProxy, sqs: SQSClient) -> None:
    proxy.set_plan(FaultPlan(credentials_valid=lambda key: key != "test"))
    with pytest.raises(ServiceError) as info:
        await sqs.create_queue(unique("expired"))
    assert info.value.code == "ExpiredToken"
    # ExpiredToken makes the client refresh once and retry; static keys cannot help, so it raises.
    assert proxy.faults_by_kind() == {"expired": 2}


async def test_random_faults_are_reproducible_with_a_seed(proxy: FaultProxy, sqs: SQSClient) -> None:
    def outcomes() -> list[str]:
        proxy.set_plan(FaultPlan(rate=0.5, kinds=("500", "503"), seed=7))
        return [proxy._decide("GetQueueUrl") or "-" for _ in range(40)]  # pyright: ignore[reportPrivateUsage]

    first = outcomes()
    assert first == outcomes()
    assert 5 < sum(o != "-" for o in first) < 35


async def test_retries_ride_through_a_fault_storm(proxy: FaultProxy, fake_keys: None) -> None:
    """With the SDK-standard policy, 10% faults of every kind never reach the caller of idempotent calls."""
    kinds = ("500", "503", "throttle", "drop_before")
    proxy.set_plan(FaultPlan(rate=0.1, kinds=kinds, operations=frozenset({"GetQueueUrl"}), seed=1))
    policy = RetryPolicy(max_attempts=5, base_delay=0.01, throttling_base_delay=0.01)
    async with SQSClient(endpoint_url=proxy.url, retry_policy=policy) as sqs:
        name = unique("storm")
        await sqs.create_queue(name)
        for _ in range(100):
            await sqs.get_queue_url(name)
    assert proxy.requests["GetQueueUrl"] == 100 + proxy.total_faults()
    assert proxy.total_faults() > 0
