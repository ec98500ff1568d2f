"""Extended payloads: both pointer formats, size decisions by bytes, trusted buckets, missing objects."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from taskiq_sqs_http.aws import Credentials, RetryPolicy, S3Client
from taskiq_sqs_http.aws.sqs import Message, MessageAttributeValue, SendMessageEntry
from taskiq_sqs_http.extended import (
    OffloadBucketMissingError,
    PayloadFormat,
    PayloadStore,
    PayloadUnavailableError,
    PointerError,
    S3Pointer,
    decode_pointer,
    encode_pointer,
)

ENDPOINT = "http://127.0.0.1:1"


def s3_client(router: respx.Router) -> S3Client:
    return S3Client(
        endpoint_url=ENDPOINT,
        credentials=Credentials("a", "b"),
        transport=httpx.MockTransport(router.async_handler),
        retry_policy=RetryPolicy.testing(),
    )


def message(body: str, attributes: dict[str, MessageAttributeValue] | None = None) -> Message:
    return Message("mid", "rh", body, message_attributes=attributes or {})


def test_pointer_aio_sqs_format_is_byte_identical_to_2_1_1() -> None:
    """Our default pointer is exactly what taskiq-aio-sqs writes."""
    body, attributes = encode_pointer("b", "id.json", 5, PayloadFormat.AIO_SQS)
    assert body == '{"s3_bucket": "b", "s3_key": "id.json"}'
    assert attributes["s3_extended_message"].string_value == "True"
    assert decode_pointer(body, attributes) == S3Pointer("b", "id.json", PayloadFormat.AIO_SQS)


def test_pointer_aws_format_round_trip_and_legacy_names() -> None:
    """The AWS extended client format, current and legacy class and attribute names."""
    body, attributes = encode_pointer("b", "k", 2_000_000, PayloadFormat.AWS)
    assert json.loads(body) == [
        "software.amazon.payloadoffloading.PayloadS3Pointer",
        {"s3BucketName": "b", "s3Key": "k"},
    ]
    assert attributes["ExtendedPayloadSize"].string_value == "2000000"
    assert decode_pointer(body, attributes) == S3Pointer("b", "k", PayloadFormat.AWS)
    legacy = json.dumps(
        ["com.amazon.sqs.javamessaging.MessageS3Pointer", {"s3BucketName": "b", "s3Key": "k"}]
    )
    assert decode_pointer(legacy, {"SQSLargePayloadSize": MessageAttributeValue.number(1)}) == S3Pointer(
        "b", "k", PayloadFormat.AWS
    )


@pytest.mark.parametrize(
    ("body", "attributes"),
    [
        ("not json", {"s3_extended_message": MessageAttributeValue.string("True")}),
        ("[1, 2]", {"s3_extended_message": MessageAttributeValue.string("true")}),
        ('{"s3_bucket": "b"}', {"s3_extended_message": MessageAttributeValue.string("True")}),
        ('["Other", {}]', {"ExtendedPayloadSize": MessageAttributeValue.number(1)}),
        (
            '["software.amazon.payloadoffloading.PayloadS3Pointer", {"s3Key": "k"}]',
            {"ExtendedPayloadSize": MessageAttributeValue.number(1)},
        ),
    ],
)
def test_pointer_malformed_is_an_error(body: str, attributes: dict[str, MessageAttributeValue]) -> None:
    """A message that announces a pointer but carries a broken one is never run as a task body."""
    with pytest.raises(PointerError):
        decode_pointer(body, attributes)


def test_pointer_plain_message_is_not_a_pointer() -> None:
    """Ordinary messages (even JSON with look-alike keys) are not pointers."""
    assert decode_pointer('{"s3_bucket": "b", "s3_key": "k"}', {}) is None


async def test_store_offloads_by_utf8_bytes_not_characters() -> None:
    """A multibyte body under the threshold in characters but over it in bytes is offloaded."""
    router = respx.Router()
    put = router.put(url__regex=r"/bucket/task-1-[0-9a-f]{12}\.json$").mock(return_value=httpx.Response(200))
    async with s3_client(router) as s3:
        store = PayloadStore(s3, "bucket", threshold=1000)
        small = SendMessageEntry("task-0", "é" * 499)  # 998 bytes
        big = SendMessageEntry("task-1", "é" * 501)  # 1002 bytes, 501 characters
        assert await store.offload(small) is small
        offloaded = await store.offload(big)
    assert put.call_count == 1
    assert put.calls.last.request.content == ("é" * 501).encode()
    pointer = decode_pointer(offloaded.body, offloaded.message_attributes or {})
    assert pointer is not None and pointer.bucket == "bucket"


async def test_store_without_bucket_fails_before_network() -> None:
    """Oversize without a bucket raises OffloadBucketMissingError and sends nothing."""
    router = respx.Router()
    route = router.route()
    async with s3_client(router) as s3:
        store = PayloadStore(s3, None, threshold=10)
        with pytest.raises(OffloadBucketMissingError, match="s3_extended_bucket_name"):
            await store.offload(SendMessageEntry("t", "x" * 11))
    assert route.call_count == 0


async def test_store_refuses_untrusted_bucket_and_reports_missing_object() -> None:
    """Pointers into other buckets are refused; a missing object is a PointerError, not a crash."""
    router = respx.Router()
    router.get(f"{ENDPOINT}/bucket/present").mock(return_value=httpx.Response(200, content=b"\x80payload"))
    router.get(f"{ENDPOINT}/bucket/gone").mock(
        return_value=httpx.Response(404, content=b"<Error><Code>NoSuchKey</Code></Error>")
    )
    async with s3_client(router) as s3:
        store = PayloadStore(s3, "bucket", trusted_buckets=["partner"])
        attrs = {"s3_extended_message": MessageAttributeValue.string("True")}

        def pointer_of(body: str) -> S3Pointer:
            pointer = decode_pointer(body, attrs)
            assert pointer is not None
            return pointer

        assert (
            await store.fetch(pointer_of('{"s3_bucket": "bucket", "s3_key": "present"}'), "m")
            == b"\x80payload"
        )
        with pytest.raises(PointerError, match="untrusted bucket 'secrets'"):
            await store.fetch(pointer_of('{"s3_bucket": "secrets", "s3_key": "k"}'), "m")
        with pytest.raises(PointerError, match="missing"):
            await store.fetch(pointer_of('{"s3_bucket": "bucket", "s3_key": "gone"}'), "m")


async def test_store_tells_a_transient_s3_failure_from_a_poison_pointer() -> None:
    """A 503 is worth waiting out (the message stays valid); access denied is not."""
    router = respx.Router()
    router.get(f"{ENDPOINT}/bucket/busy").mock(
        return_value=httpx.Response(503, content=b"<Error><Code>SlowDown</Code></Error>")
    )
    router.get(f"{ENDPOINT}/bucket/secret").mock(
        return_value=httpx.Response(403, content=b"<Error><Code>AccessDenied</Code></Error>")
    )
    async with s3_client(router) as s3:
        store = PayloadStore(s3, "bucket")
        with pytest.raises(PayloadUnavailableError, match="unavailable") as caught:
            await store.fetch(S3Pointer("bucket", "busy", PayloadFormat.AIO_SQS), "m")
        assert "SlowDown" in str(caught.value.cause)
        with pytest.raises(PointerError, match="AccessDenied"):
            await store.fetch(S3Pointer("bucket", "secret", PayloadFormat.AIO_SQS), "m")


def test_store_validates_settings() -> None:
    """Threshold and format are range-checked with clear messages."""
    with pytest.raises(ValueError, match="extended_payload_threshold is 0"):
        PayloadStore(None, "b", threshold=0)
    with pytest.raises(ValueError, match="extended_payload_format is 'xml'"):
        PayloadStore(None, "b", payload_format="xml")
