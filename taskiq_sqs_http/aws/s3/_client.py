"""S3Client: the handful of REST operations a broker and a result backend need.

Keys are percent-encoded once, by us, and that exact string is both sent and signed; httpx would otherwise
re-interpret it. Keys with ``.`` or ``..`` segments are refused (see `encode_s3_key`) because httpx removes
those segments and the object would silently be written under another key.

User metadata travels in ``x-amz-meta-*`` headers, which carry ASCII only: names and values that are not
printable ASCII are refused before sending, naming the key (encode such values yourself, e.g. base64 or
RFC 2047, if you need them). Surrounding whitespace is trimmed, as SigV4 trims it when signing.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import httpx

from .._credentials import CredentialsLike
from .._errors import ConfigurationError, MalformedResponseError, ServiceError, parse_s3_error
from .._http import HTTPSession, RawResponse, Timeouts
from .._retry import RetryPolicy, RetryQuota
from .._service import ServiceClient, check_type
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
        if self.kms_key_id is not None:
            key_id = self.kms_key_id.strip()
            if not key_id.isascii() or not key_id.isprintable():
                raise ConfigurationError(
                    f"kms_key_id is {self.kms_key_id!r}; expected a KMS key id, alias or ARN "
                    "(printable ASCII)"
                )
            object.__setattr__(self, "kms_key_id", key_id or None)
        if self.kms_key_id and self.algorithm == "AES256":
            raise ConfigurationError("kms_key_id is set but the algorithm is 'AES256'; use 'aws:kms'")

    def headers(self) -> list[tuple[str, str]]:
        out = [("x-amz-server-side-encryption", self.algorithm)]
        if self.kms_key_id:
            out.append(("x-amz-server-side-encryption-aws-kms-key-id", self.kms_key_id))
        return out


@dataclass(frozen=True, slots=True)
class HeadObjectResult:
    """What HeadObject tells about an object without reading it."""

    content_length: int
    etag: str | None
    content_type: str | None
    metadata: dict[str, str] = field(default_factory=dict[str, str])


@dataclass(frozen=True, slots=True)
class GetObjectResult:
    """An object read from S3: its bytes and the headers that describe it."""

    body: bytes
    etag: str | None
    content_type: str | None
    metadata: dict[str, str] = field(default_factory=dict[str, str])


@dataclass(frozen=True, slots=True)
class DeleteObjectsResult:
    """Per-key outcome of DeleteObjects: the keys deleted and those that failed, with why."""

    deleted: list[str]
    errors: dict[str, str]


def _metadata(headers: Mapping[str, str]) -> dict[str, str]:
    return {k[len(_META_PREFIX) :]: v for k, v in headers.items() if k.startswith(_META_PREFIX)}


_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _metadata_headers(metadata: Mapping[str, str]) -> list[tuple[str, str]]:
    """``x-amz-meta-*`` headers, trimmed; a clear error naming the key for anything HTTP cannot carry."""
    out: list[tuple[str, str]] = []
    for key, value in metadata.items():
        if not isinstance(key, str) or not _TOKEN.match(key):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ConfigurationError(
                f"metadata key {key!r} is not allowed; keys must be non-empty ASCII letters, digits and "
                "'-' (an HTTP header name)"
            )
        if not isinstance(value, str):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ConfigurationError(
                f"metadata value of key {key!r} is a {type(value).__name__}; expected a str"
            )
        trimmed = value.strip()
        if not trimmed.isascii() or not trimmed.isprintable():
            raise ConfigurationError(
                f"metadata value of key {key!r} contains non-ASCII or control characters; S3 user "
                "metadata travels in HTTP headers, which carry printable ASCII only (encode the value, "
                "e.g. base64 or RFC 2047, before passing it)"
            )
        out.append((_META_PREFIX + key.lower(), trimmed))
    return out


class _Address(NamedTuple):
    """Where a request goes: the URL, and the Host header sent and signed with it."""

    url: str
    host: str


class S3Client(ServiceClient):
    """Async S3 client. Path-style addressing for custom endpoints, virtual-hosted for AWS."""

    service = "s3"

    def __init__(
        self,
        *,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        credentials: CredentialsLike | None = None,
        session: HTTPSession | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeouts: Timeouts | None = None,
        retry_policy: RetryPolicy | None = None,
        retry_quota: RetryQuota | None = None,
        verify: bool = True,
        environ: Mapping[str, str] | None = None,
        force_path_style: bool | None = None,
    ) -> None:
        """As `SQSClient`, plus ``force_path_style``: True for ``endpoint/bucket/key`` URLs, False for
        ``bucket.endpoint/key``; by default path style for custom endpoints, virtual-hosted for AWS."""
        check_type("force_path_style", force_path_style, bool)
        super().__init__(
            region_name=region_name,
            endpoint_url=endpoint_url,
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            aws_session_token=aws_session_token,
            credentials=credentials,
            session=session,
            http_client=http_client,
            transport=transport,
            timeouts=timeouts,
            retry_policy=retry_policy,
            retry_quota=retry_quota,
            verify=verify,
            environ=environ,
        )
        self._path_style = (
            force_path_style if force_path_style is not None else self._endpoint.source != "default"
        )

    # -- addressing -------------------------------------------------------------------------------
    def _url(self, bucket: str, key: str | None = None, query: str = "") -> _Address:
        """The address of a bucket or an object; the host is sent and signed as given."""
        if not bucket or "/" in bucket:
            raise ConfigurationError(f"bucket name is {bucket!r}; it must be non-empty without '/'")
        path = "/" + encode_s3_key(key) if key is not None else ""
        suffix = f"?{query}" if query else ""
        if self._path_style or not _DNS_BUCKET.match(bucket):
            base = f"{self._endpoint_scheme}://{self._endpoint_netloc}{self._endpoint_path}"
            return _Address(f"{base}/{bucket}{path}{suffix}", self._endpoint_netloc)
        host = f"{bucket}.{self._endpoint_netloc}"
        return _Address(f"{self._endpoint_scheme}://{host}{self._endpoint_path}{path or '/'}{suffix}", host)

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
        unsigned_payload: bool = False,
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
            unsigned_payload=unsigned_payload,
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
            content_type = content_type.strip()
            if not content_type.isascii() or not content_type.isprintable():
                raise ConfigurationError(
                    f"content_type is {content_type!r}; expected printable ASCII such as 'application/json'"
                )
            headers.append(("content-type", content_type))
        if metadata:
            headers.extend(_metadata_headers(metadata))
        if encryption is not None:
            headers.extend(encryption.headers())
        unsigned = self.endpoint_url.startswith("https://") and len(body) >= _UNSIGNED_FROM
        if unsigned:
            # Over TLS a large body need not be hashed for the signature (what the AWS SDKs do): S3 checks
            # this CRC32 instead, about ten times cheaper per byte than SHA-256.
            headers.append(("x-amz-checksum-crc32", _crc32(body)))
        response = await self._s3(
            "PUT", bucket, key, operation="PutObject", body=body, headers=headers, unsigned_payload=unsigned
        )
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


# Bodies from this size up are sent with UNSIGNED-PAYLOAD and a CRC32 over HTTPS; smaller ones are signed.
_UNSIGNED_FROM = 1024 * 1024


def _crc32(body: bytes) -> str:
    return base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode("ascii")
