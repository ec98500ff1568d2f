"""S3Client: the handful of REST operations a broker and a result backend need.

Keys are percent-encoded once, by us, and that exact string is both sent and signed; httpx would otherwise
re-interpret it. Keys with ``.`` or ``..`` segments are refused (see `encode_s3_key`) because httpx removes
those segments and the object would silently be written under another key.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from .._errors import ConfigurationError, MalformedResponseError, ServiceError, parse_s3_error
from .._http import RawResponse
from .._service import ServiceClient
from .._sigv4 import encode_s3_key

__all__ = [
    "DeleteObjectsResult",
    "GetObjectResult",
    "HeadObjectResult",
    "S3Client",
    "ServerSideEncryption",
]

_DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_META_PREFIX = "x-amz-meta-"
_XMLNS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
MAX_DELETE_OBJECTS = 1000


@dataclass(frozen=True, slots=True)
class ServerSideEncryption:
    """Encryption at rest for objects we write: SSE-S3 (``AES256``) or SSE-KMS with an optional key id."""

    algorithm: str = "AES256"
    kms_key_id: str | None = None

    def __post_init__(self) -> None:
        if self.algorithm not in ("AES256", "aws:kms", "aws:kms:dsse"):
            raise ConfigurationError(
                f"server-side encryption algorithm is {self.algorithm!r}; allowed values are "
                "'AES256', 'aws:kms', 'aws:kms:dsse'"
            )
        if self.kms_key_id and self.algorithm == "AES256":
            raise ConfigurationError("kms_key_id is set but the algorithm is 'AES256'; use 'aws:kms'")

    def headers(self) -> list[tuple[str, str]]:
        out = [("x-amz-server-side-encryption", self.algorithm)]
        if self.kms_key_id:
            out.append(("x-amz-server-side-encryption-aws-kms-key-id", self.kms_key_id))
        return out


@dataclass(frozen=True, slots=True)
class HeadObjectResult:
    content_length: int
    etag: str | None
    content_type: str | None
    metadata: dict[str, str] = field(default_factory=dict[str, str])


@dataclass(frozen=True, slots=True)
class GetObjectResult:
    body: bytes
    etag: str | None
    content_type: str | None
    metadata: dict[str, str] = field(default_factory=dict[str, str])


@dataclass(frozen=True, slots=True)
class DeleteObjectsResult:
    deleted: list[str]
    errors: dict[str, str]


def _metadata(headers: Mapping[str, str]) -> dict[str, str]:
    return {k[len(_META_PREFIX) :]: v for k, v in headers.items() if k.startswith(_META_PREFIX)}


class S3Client(ServiceClient):
    """Async S3 client. Path-style addressing for custom endpoints, virtual-hosted for AWS."""

    service = "s3"

    def __init__(self, *, force_path_style: bool | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._path_style = (
            force_path_style if force_path_style is not None else self._endpoint.source != "default"
        )

    # -- addressing -------------------------------------------------------------------------------
    def _url(self, bucket: str, key: str | None = None, query: str = "") -> tuple[str, str]:
        """(url, host) for a bucket or an object; the host is sent and signed as given."""
        if not bucket or "/" in bucket:
            raise ConfigurationError(f"bucket name is {bucket!r}; it must be non-empty without '/'")
        path = "/" + encode_s3_key(key) if key is not None else ""
        suffix = f"?{query}" if query else ""
        if self._path_style or not _DNS_BUCKET.match(bucket):
            base = f"{self._endpoint_scheme}://{self._endpoint_netloc}{self._endpoint_path}"
            return f"{base}/{bucket}{path}{suffix}", self._endpoint_netloc
        host = f"{bucket}.{self._endpoint_netloc}"
        return f"{self._endpoint_scheme}://{host}{self._endpoint_path}{path or '/'}{suffix}", host

    async def _s3(
        self,
        method: str,
        bucket: str,
        key: str | None,
        *,
        operation: str,
        body: bytes = b"",
        query: str = "",
        headers: Sequence[tuple[str, str]] = (),
    ) -> RawResponse:
        url, host = self._url(bucket, key, query)
        head = method == "HEAD"

        def parse(status: int, hdrs: dict[str, str], data: bytes, op: str) -> ServiceError:
            return parse_s3_error(status, hdrs, data, op, head=head)

        return await self._request(
            method,
            url,
            [("host", host), *headers],
            body,
            operation=operation,
            parse_error=parse,
        )

    # -- buckets ----------------------------------------------------------------------------------
    async def create_bucket(self, bucket: str) -> None:
        body = b""
        if self.region != "us-east-1":
            body = (
                '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"<LocationConstraint>{escape(self.region)}</LocationConstraint>"
                "</CreateBucketConfiguration>"
            ).encode()
        await self._s3("PUT", bucket, None, operation="CreateBucket", body=body)

    async def head_bucket(self, bucket: str) -> None:
        """Raises `S3Error` (code "404" / "403") when the bucket is missing or not ours."""
        await self._s3("HEAD", bucket, None, operation="HeadBucket")

    # -- objects ----------------------------------------------------------------------------------
    async def put_object(
        self,
        bucket: str,
        key: str,
        body: bytes,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        encryption: ServerSideEncryption | None = None,
    ) -> str | None:
        """Store ``body``; returns the ETag."""
        headers: list[tuple[str, str]] = []
        if content_type:
            headers.append(("content-type", content_type))
        if metadata:
            headers.extend((_META_PREFIX + k.lower(), v) for k, v in metadata.items())
        if encryption is not None:
            headers.extend(encryption.headers())
        response = await self._s3("PUT", bucket, key, operation="PutObject", body=body, headers=headers)
        return response.headers.get("etag")

    async def get_object(self, bucket: str, key: str) -> GetObjectResult:
        response = await self._s3("GET", bucket, key, operation="GetObject")
        return GetObjectResult(
            body=response.body,
            etag=response.headers.get("etag"),
            content_type=response.headers.get("content-type"),
            metadata=_metadata(response.headers),
        )

    async def head_object(self, bucket: str, key: str) -> HeadObjectResult:
        response = await self._s3("HEAD", bucket, key, operation="HeadObject")
        try:
            length = int(response.headers.get("content-length", "0"))
        except ValueError:
            length = 0
        return HeadObjectResult(
            content_length=length,
            etag=response.headers.get("etag"),
            content_type=response.headers.get("content-type"),
            metadata=_metadata(response.headers),
        )

    async def delete_object(self, bucket: str, key: str) -> None:
        await self._s3("DELETE", bucket, key, operation="DeleteObject")

    async def delete_objects(self, bucket: str, keys: Sequence[str]) -> DeleteObjectsResult:
        """Delete up to 1000 keys in one request; per-key failures are returned, not raised."""
        if not 1 <= len(keys) <= MAX_DELETE_OBJECTS:
            raise ConfigurationError(
                f"keys has {len(keys)} entries; allowed range is 1..{MAX_DELETE_OBJECTS}"
            )
        for key in keys:
            encode_s3_key(key)  # refuse unaddressable keys before sending anything
        objects = "".join(f"<Object><Key>{escape(k)}</Key></Object>" for k in keys)
        body = f"<Delete><Quiet>false</Quiet>{objects}</Delete>".encode()
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()  # noqa: S324 - required by the API
        response = await self._s3(
            "POST",
            bucket,
            None,
            operation="DeleteObjects",
            body=body,
            query="delete=",
            headers=[("content-md5", md5), ("content-type", "application/xml")],
        )
        return _parse_delete_result(response)


def _parse_delete_result(response: RawResponse) -> DeleteObjectsResult:
    if not response.body:
        return DeleteObjectsResult([], {})
    try:
        root = ElementTree.fromstring(response.body)  # noqa: S314 - AWS response
    except ElementTree.ParseError:
        raise MalformedResponseError(
            "MalformedResponse",
            "DeleteObjects response is not XML",
            status=response.status,
            operation="DeleteObjects",
        ) from None
    deleted: list[str] = []
    errors: dict[str, str] = {}
    for element in root:
        tag = element.tag.removeprefix(_XMLNS)
        key = element.findtext(f"{_XMLNS}Key") or element.findtext("Key") or ""
        if tag == "Deleted":
            deleted.append(key)
        elif tag == "Error":
            code = element.findtext(f"{_XMLNS}Code") or element.findtext("Code") or "Error"
            errors[key] = code
    return DeleteObjectsResult(deleted, errors)
