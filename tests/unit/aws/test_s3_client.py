"""S3Client against respx: addressing, key encoding, signing headers, XML errors, HEAD errors."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
import respx

from taskiq_sqs_http.aws import (
    Credentials,
    InvalidS3KeyError,
    MalformedResponseError,
    NoSuchBucketError,
    NoSuchKeyError,
    RetryPolicy,
    S3Client,
    S3Error,
    ServerSideEncryption,
)
from taskiq_sqs_http.aws._errors import ConfigurationError

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def make_client(router: respx.Router, **kwargs: Any) -> S3Client:
    kwargs.setdefault("region_name", "eu-west-1")
    return S3Client(
        credentials=Credentials("AKIDEXAMPLE", SECRET),
        transport=httpx.MockTransport(router.async_handler),
        retry_policy=RetryPolicy.testing(),
        **kwargs,
    )


def xml_error(code: str, status: int) -> httpx.Response:
    body = f"<Error><Code>{code}</Code><Message>{code} msg</Message><RequestId>r-9</RequestId></Error>"
    return httpx.Response(status, content=body.encode(), headers={"x-amz-request-id": "r-9"})


async def test_s3_virtual_hosted_on_aws_with_encoded_key() -> None:
    """AWS endpoints use virtual-hosted URLs; the key is percent-encoded once and signed as sent."""
    router = respx.Router(assert_all_called=True)
    key = "dir/a b+c=d&e?f#g%h~i/ሴ.json"
    wire = "/dir/a%20b%2Bc%3Dd%26e%3Ff%23g%25h~i/%E1%88%B4.json"
    route = router.put(url__regex=r"^https://bucket\.s3\.eu-west-1\.amazonaws\.com/").mock(
        return_value=httpx.Response(200, headers={"ETag": '"abc"'})
    )
    async with make_client(router) as s3:
        etag = await s3.put_object("bucket", key, b"hello", content_type="application/json")
    assert etag == '"abc"'
    request = route.calls.last.request
    assert request.url.raw_path.decode() == wire
    assert request.headers["host"] == "bucket.s3.eu-west-1.amazonaws.com"
    assert request.headers["x-amz-content-sha256"] == hashlib.sha256(b"hello").hexdigest()
    assert "x-amz-content-sha256" in request.headers["authorization"]
    assert request.content == b"hello"


async def test_s3_path_style_for_custom_endpoint() -> None:
    """A custom endpoint gets path-style URLs with its port in the signed host."""
    router = respx.Router(assert_all_called=True)
    route = router.get("http://127.0.0.1:4566/my-bucket/k%20ey").mock(
        return_value=httpx.Response(
            200,
            content=b"data",
            headers={"content-type": "text/plain", "x-amz-meta-owner": "me", "etag": '"e"'},
        )
    )
    async with make_client(router, endpoint_url="http://127.0.0.1:4566") as s3:
        result = await s3.get_object("my-bucket", "k ey")
    assert result.body == b"data" and result.metadata == {"owner": "me"}
    assert route.calls.last.request.headers["host"] == "127.0.0.1:4566"


async def test_s3_force_path_style_and_dotted_bucket() -> None:
    """force_path_style, and buckets with dots, use path-style even on AWS."""
    router = respx.Router(assert_all_called=True)
    router.head("https://s3.eu-west-1.amazonaws.com/b/k").mock(
        return_value=httpx.Response(200, headers={"content-length": "12"})
    )
    router.head("https://s3.eu-west-1.amazonaws.com/my.dotted.bucket/k").mock(
        return_value=httpx.Response(200, headers={"content-length": "3"})
    )
    async with make_client(router, force_path_style=True) as s3:
        assert (await s3.head_object("b", "k")).content_length == 12
    async with make_client(router) as s3:
        assert (await s3.head_object("my.dotted.bucket", "k")).content_length == 3


@pytest.mark.parametrize("key", ["a/../b", "./x", "x/.", "..", "a/./b", "."])
async def test_s3_refuses_dot_segment_keys(key: str) -> None:
    """Keys httpx would rewrite to another object are refused before sending."""
    router = respx.Router()
    route = router.route()
    async with make_client(router) as s3:
        with pytest.raises(InvalidS3KeyError):
            await s3.put_object("bucket", key, b"x")
    assert route.call_count == 0


async def test_s3_xml_errors_map_to_classes() -> None:
    """NoSuchKey / NoSuchBucket come from the <Error> XML with message and request id."""
    router = respx.Router()
    router.get(url__regex=r"/missing$").mock(return_value=xml_error("NoSuchKey", 404))
    router.put(url__regex=r"/nobucket/").mock(return_value=xml_error("NoSuchBucket", 404))
    async with make_client(router, endpoint_url="http://127.0.0.1:1") as s3:
        with pytest.raises(NoSuchKeyError) as info:
            await s3.get_object("b", "missing")
        with pytest.raises(NoSuchBucketError):
            await s3.put_object("nobucket", "k", b"")
    assert info.value.request_id == "r-9" and info.value.status == 404


@pytest.mark.parametrize("status", [403, 404])
async def test_s3_head_errors_use_status_code(status: int) -> None:
    """HEAD errors have no body: the code is the status."""
    router = respx.Router()
    router.head(url__regex=".*").mock(return_value=httpx.Response(status))
    async with make_client(router, endpoint_url="http://127.0.0.1:1") as s3:
        with pytest.raises(S3Error) as info:
            await s3.head_object("b", "k")
        with pytest.raises(S3Error):
            await s3.head_bucket("b")
    assert info.value.code == str(status)


async def test_s3_malformed_xml_error_is_typed() -> None:
    """A truncated XML error body becomes MalformedResponseError, never a crash."""
    router = respx.Router()
    router.get(url__regex=".*").mock(return_value=httpx.Response(400, content=b"<Error><Co"))
    async with make_client(router, endpoint_url="http://127.0.0.1:1") as s3:
        with pytest.raises(MalformedResponseError):
            await s3.get_object("b", "k")


async def test_s3_retries_slowdown() -> None:
    """SlowDown (503) is throttling and is retried."""
    router = respx.Router()
    route = router.get(url__regex=".*").mock(
        side_effect=[xml_error("SlowDown", 503), httpx.Response(200, content=b"ok")]
    )
    async with make_client(router, endpoint_url="http://127.0.0.1:1") as s3:
        assert (await s3.get_object("b", "k")).body == b"ok"
    assert route.call_count == 2


async def test_s3_encryption_headers_are_sent_and_signed() -> None:
    """SSE-KMS settings travel as signed x-amz-server-side-encryption headers."""
    router = respx.Router()
    route = router.put(url__regex=".*").mock(return_value=httpx.Response(200))
    sse = ServerSideEncryption("aws:kms", kms_key_id="alias/results")
    async with make_client(router, endpoint_url="http://127.0.0.1:1") as s3:
        await s3.put_object("b", "k", b"x", encryption=sse, metadata={"Task": "1"})
    request = route.calls.last.request
    assert request.headers["x-amz-server-side-encryption"] == "aws:kms"
    assert request.headers["x-amz-server-side-encryption-aws-kms-key-id"] == "alias/results"
    assert request.headers["x-amz-meta-task"] == "1"
    assert "x-amz-server-side-encryption" in request.headers["authorization"]


def test_s3_encryption_settings_are_validated() -> None:
    """Unknown algorithms and a KMS key with AES256 are configuration errors."""
    with pytest.raises(ConfigurationError, match="'rot13'"):
        ServerSideEncryption("rot13")
    with pytest.raises(ConfigurationError, match="kms_key_id"):
        ServerSideEncryption("AES256", kms_key_id="k")


async def test_s3_delete_objects_parses_result() -> None:
    """DeleteObjects sends Content-MD5 and returns per-key errors."""
    router = respx.Router()
    result_xml = (
        b'<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Deleted><Key>a</Key></Deleted>"
        b"<Error><Key>b&amp;c</Key><Code>AccessDenied</Code><Message>no</Message></Error>"
        b"</DeleteResult>"
    )
    route = router.post(url__regex=r"/b\?delete=$").mock(return_value=httpx.Response(200, content=result_xml))
    async with make_client(router, endpoint_url="http://127.0.0.1:1") as s3:
        result = await s3.delete_objects("b", ["a", "b&c"])
        with pytest.raises(ConfigurationError, match="keys has 0 entries"):
            await s3.delete_objects("b", [])
    assert result.deleted == ["a"] and result.errors == {"b&c": "AccessDenied"}
    request = route.calls.last.request
    assert "content-md5" in request.headers
    assert b"<Key>b&amp;c</Key>" in request.content


async def test_s3_create_bucket_location_outside_us_east_1() -> None:
    """Buckets outside us-east-1 carry a LocationConstraint."""
    router = respx.Router()
    route = router.put(url__regex=".*").mock(return_value=httpx.Response(200))
    deleted = router.delete("http://127.0.0.1:1/b/k").mock(return_value=httpx.Response(204))
    async with make_client(router, endpoint_url="http://127.0.0.1:1") as s3:
        await s3.create_bucket("b")
        await s3.delete_object("b", "k")
    assert deleted.call_count == 1
    request = route.calls.last.request  # the only call
    assert b"<LocationConstraint>eu-west-1</LocationConstraint>" in request.content


async def test_s3_invalid_bucket_name() -> None:
    """A bucket with a slash is refused before sending."""
    router = respx.Router()
    async with make_client(router) as s3:
        with pytest.raises(ConfigurationError, match="bucket name"):
            await s3.get_object("a/b", "k")
