"""Large uploads over HTTPS are not hashed for the signature: S3 checks a CRC32 instead, as the SDKs do."""

from __future__ import annotations

import base64
import zlib

import httpx
import respx

from taskiq_sqs_http.aws import HTTPSession, S3Client

BIG = b"x" * (2 * 1024 * 1024)


async def _put(endpoint: str, body: bytes) -> httpx.Request:
    router = respx.Router(assert_all_called=False)
    route = router.put(url__regex=r".*/bucket/key$").mock(
        return_value=httpx.Response(200, headers={"etag": '"e"'})
    )
    async with (
        HTTPSession(transport=httpx.MockTransport(router.async_handler)) as session,
        S3Client(
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="not-a-secret",
            session=session,
        ) as s3,
    ):
        assert await s3.put_object("bucket", "key", body) == '"e"'
    return route.calls.last.request


async def test_a_large_body_over_https_is_sent_unsigned_with_a_crc32() -> None:
    request = await _put("https://s3.test", BIG)
    assert request.headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    expected = base64.b64encode(zlib.crc32(BIG).to_bytes(4, "big")).decode()
    assert request.headers["x-amz-checksum-crc32"] == expected
    assert "x-amz-checksum-crc32" in request.headers["authorization"]  # the checksum itself is signed


async def test_small_bodies_and_plain_http_stay_signed() -> None:
    for endpoint, body in (("https://s3.test", b"small"), ("http://s3.test", BIG)):
        request = await _put(endpoint, body)
        assert request.headers["x-amz-content-sha256"] != "UNSIGNED-PAYLOAD"
        assert "x-amz-checksum-crc32" not in request.headers
