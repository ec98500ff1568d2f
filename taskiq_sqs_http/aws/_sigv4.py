"""AWS Signature Version 4, header and query (presigned URL) forms.

Pure computation: no I/O, no clock other than a ``now`` default, nothing from taskiq. The rules
follow the AWS SigV4 test suites (botocore's copy and aws-c-auth's v4 suite), which the unit tests
replay in full.

The one idea to keep in mind when reading this module: we sign the request *as it goes on the
wire*. The path we are handed is already percent-encoded (that is what httpx sends), so

* for S3 the canonical URI is that wire path verbatim: S3 treats ``.``, ``..`` and ``//`` as key
  text;
* for every other service the path is normalised (dot segments removed, ``//`` collapsed) and then
  percent-encoded *again*, which is why ``%20`` on the wire becomes ``%2520`` in the canonical
  request.

Secrets are only ever used as HMAC keys: they never appear in a ``repr``, an exception or a return
value.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import NamedTuple
from urllib.parse import quote, quote_from_bytes, unquote_to_bytes, urlsplit

import httpx

from ._credentials import Credentials
from ._errors import ConfigurationError, InvalidS3KeyError

__all__ = [
    "ALGORITHM",
    "EMPTY_SHA256",
    "MAX_PRESIGN_EXPIRES",
    "UNSIGNED_PAYLOAD",
    "PresignDetails",
    "SigV4Signer",
    "SignatureDetails",
    "build_query",
    "encode_s3_key",
    "uri_encode",
]

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_PRESIGN_EXPIRES = 604_800  # 7 days: SigV4's hard limit for X-Amz-Expires

# Headers that proxies, HTTP clients or tracing middleware may add, drop or rewrite after we sign;
# signing them would make the signature depend on things we do not control. Same set as botocore's
# SIGNED_HEADERS_BLACKLIST, plus the SDK bookkeeping headers botocore adds only after signing.
_UNSIGNABLE_HEADERS = frozenset(
    {
        "amz-sdk-invocation-id",
        "amz-sdk-request",
        "baggage",
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "traceparent",
        "tracestate",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "x-amzn-trace-id",
        # The signer owns these two: a stale value from a previous attempt must never be re-signed.
        "authorization",
        "x-amz-date",
    }
)

_DEFAULT_PORTS = {"http": 80, "https": 443}

_KEY_CACHE: dict[tuple[str, str], tuple[str, str, bytes]] = {}
"""(region, service) -> (secret, yyyymmdd, signing key).

Deriving the key costs four HMACs and only changes once a day, so it is cached. Only the latest
key per scope is kept: a rotated secret or a new day simply replaces the entry, so the cache never
grows beyond the handful of (region, service) pairs a process talks to. Module level so that
signers built per credential snapshot still share it.
"""


def uri_encode(value: str, *, keep_slash: bool) -> str:
    """Percent-encode every UTF-8 byte except ``A-Za-z0-9-_.~`` (and ``/`` when ``keep_slash``).

    This is SigV4's UriEncode, not form encoding: space is ``%20`` (never ``+``) and ``+`` is
    ``%2B``, so a value means the same thing to us, to httpx and to AWS.
    """
    return quote(value, safe="/" if keep_slash else "")


def encode_s3_key(key: str) -> str:
    """The wire form of an S3 object key, without a leading ``/``.

    Append it to ``/`` (virtual-hosted) or ``/bucket/`` (path-style). S3 signs the path exactly as
    sent, so the key is encoded once here and that same string is both sent and signed. Keys with
    ``.`` or ``..`` segments are refused: httpx removes dot segments from every URL (RFC 3986), so
    such a request would silently read or write a *different* object.
    """
    if not key:
        raise InvalidS3KeyError("S3 object key must not be empty")
    for segment in key.split("/"):
        if segment in (".", ".."):
            raise InvalidS3KeyError(
                f"S3 object key {key!r} contains a {segment!r} path segment; httpx removes dot "
                "segments from URLs, so the request would address a different object. "
                "Rename the key."
            )
    return quote(key, safe="/")


def build_query(params: Sequence[tuple[str, str]]) -> str:
    """``k=v&...`` with SigV4 UriEncode, in the given order.

    httpx's ``params=`` form-encodes (space as ``+``), which AWS would decode differently from
    what we signed; building the query ourselves keeps the wire and the signature in agreement.
    """
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)


def _canonical_query_pairs(query: str) -> list[tuple[str, str]]:
    """Decode then re-encode each pair, so raw and pre-encoded input canonicalise identically."""
    pairs: list[tuple[str, str]] = []
    if not query:
        return pairs
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append(
            (
                quote_from_bytes(unquote_to_bytes(name), safe=""),
                quote_from_bytes(unquote_to_bytes(value), safe=""),
            )
        )
    return pairs


def _join_query(pairs: list[tuple[str, str]]) -> str:
    # Sort the (name, value) tuples, not the joined "name=value" strings: "Param-3=" would
    # otherwise sort before "Param=" ('-' < '='), the trap get-vanilla-query-order-encoded checks.
    pairs.sort()
    return "&".join(f"{name}={value}" for name, value in pairs)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4, plus the AWS rule that empty segments (``//``) collapse."""
    parts = path.split("/")
    kept: list[str] = []
    for segment in parts:
        if segment == "..":
            if kept:
                kept.pop()
        elif segment and segment != ".":
            kept.append(segment)
    result = "/" + "/".join(kept)
    # A final "", "." or ".." segment means the path names a directory: keep its trailing slash.
    if kept and parts[-1] in ("", ".", ".."):
        result += "/"
    return result


def _amz_date(now: datetime | None) -> str:
    if now is None:
        now = datetime.now(timezone.utc)
    elif now.tzinfo is not None:
        now = now.astimezone(timezone.utc)
    # A naive datetime is taken to be UTC already (the only sane reading for a signing clock).
    return f"{now.year:04d}{now.month:02d}{now.day:02d}T{now.hour:02d}{now.minute:02d}{now.second:02d}Z"


def _header_items(
    headers: Mapping[str, str] | Sequence[tuple[str, str]],
) -> Iterable[tuple[str, str]]:
    if isinstance(headers, httpx.Headers):
        # ``items()`` would merge repeats with ", "; SigV4 wants each wire value, joined with ",".
        return headers.multi_items()
    if isinstance(headers, Mapping):
        return headers.items()
    return headers


class SignatureDetails(NamedTuple):
    """Everything a header signature is made of; ``headers`` is what to add to the request."""

    headers: dict[str, str]
    canonical_request: str
    string_to_sign: str
    signature: str


class PresignDetails(NamedTuple):
    """A presigned URL and the intermediate values it was made from."""

    url: str
    canonical_request: str
    string_to_sign: str
    signature: str


class _ParsedURL(NamedTuple):
    host: str
    canonical_uri: str
    raw_query: str
    base: str  # scheme://netloc/path, for rebuilding a presigned URL


class SigV4Signer:
    """Signs requests for one (credentials, region, service).

    Cheap to build; create one per credentials snapshot so that key, secret and token always come
    from the same generation. ``service == "s3"`` switches on the S3 rules: verbatim path, and a
    signed ``X-Amz-Content-SHA256`` header.
    """

    __slots__ = (
        "_access_key_id",
        "_content_sha256_header",
        "_credentials",
        "_is_s3",
        "_last_url",
        "_normalize_path",
        "_region",
        "_service",
    )

    def __init__(
        self,
        credentials: Credentials,
        region: str,
        service: str,
        *,
        normalize_path: bool | None = None,
        content_sha256_header: bool | None = None,
    ) -> None:
        """``normalize_path`` (default: every service but S3) and ``content_sha256_header``
        (default: S3 only) can be overridden because the SigV4 test suites exercise S3's rules
        under a service named "service"; the client never needs to.
        """
        if not region:
            raise ConfigurationError("region must not be empty")
        if not service:
            raise ConfigurationError("service must not be empty")
        self._credentials = credentials
        self._access_key_id = credentials.access_key_id
        self._region = region
        self._service = service
        self._is_s3 = service == "s3"
        self._normalize_path = not self._is_s3 if normalize_path is None else normalize_path
        self._content_sha256_header = self._is_s3 if content_sha256_header is None else content_sha256_header
        # The SQS client signs the same URL on every call; remember the last parse.
        self._last_url: tuple[str, _ParsedURL] | None = None

    def __repr__(self) -> str:
        return (
            f"SigV4Signer(access_key_id={self._access_key_id!r}, region={self._region!r}, "
            f"service={self._service!r})"
        )

    @property
    def region(self) -> str:
        return self._region

    @property
    def service(self) -> str:
        return self._service

    # -- public API ----------------------------------------------------------------------------

    def sign(
        self,
        method: str,
        url: str | httpx.URL,
        headers: Mapping[str, str] | Sequence[tuple[str, str]],
        body: bytes = b"",
        now: datetime | None = None,
        *,
        unsigned_payload: bool = False,
        body_sha256: str | None = None,
    ) -> dict[str, str]:
        """The headers to add to the request: ``Authorization``, ``X-Amz-Date`` and, as applicable,
        ``X-Amz-Security-Token`` and ``X-Amz-Content-SHA256``.

        ``body_sha256`` is the hex SHA-256 of ``body`` when the caller already has it (a request
        re-signed for a retry), so a large body is hashed once per request, not once per attempt.

        ``headers`` are the headers that will be sent; all are signed except hop-by-hop and tracing
        headers that intermediaries may change.

        ``url`` must be what goes on the wire, and the same value must be handed to httpx. An
        ``httpx.URL`` is read through ``raw_path``, so it is always in wire form. A ``str`` is taken
        verbatim and must already be percent-encoded (``encode_s3_key``, ``build_query``): httpx
        would encode a raw space or non-ASCII character *after* we signed it, and we deliberately do
        not guess (the SigV4 suites feed raw, logical paths through exactly this verbatim route).
        """
        return self.sign_details(
            method, url, headers, body, now, unsigned_payload=unsigned_payload, body_sha256=body_sha256
        ).headers

    def presign_url(
        self,
        method: str,
        url: str | httpx.URL,
        expires_in: int,
        now: datetime | None = None,
    ) -> str:
        """A URL that carries its own signature in the query, valid for ``expires_in`` seconds."""
        return self.presign_details(method, url, expires_in, now).url

    # -- detailed forms (tests, debugging, callers that need the suite's knobs) ----------------

    def sign_details(
        self,
        method: str,
        url: str | httpx.URL,
        headers: Mapping[str, str] | Sequence[tuple[str, str]],
        body: bytes = b"",
        now: datetime | None = None,
        *,
        unsigned_payload: bool = False,
        sign_session_token: bool = True,
        body_sha256: str | None = None,
    ) -> SignatureDetails:
        """``sign`` plus the canonical request and string to sign.

        ``sign_session_token=False`` adds the token after signing; only a few services accept
        that (the suite's post-sts-header-after), so the client never uses it.
        """
        parsed = self._parse_url(url)
        amz_date = _amz_date(now)
        if unsigned_payload:
            payload_hash = UNSIGNED_PAYLOAD
        else:
            payload_hash = body_sha256 or hashlib.sha256(body).hexdigest()
        token = self._credentials.session_token

        merged: dict[str, str] = {}
        for name, value in _header_items(headers):
            lname = name.lower()
            if lname in _UNSIGNABLE_HEADERS:
                continue
            value = " ".join(value.split())
            previous = merged.get(lname)
            merged[lname] = value if previous is None else f"{previous},{value}"
        if "host" not in merged:
            merged["host"] = parsed.host
        merged["x-amz-date"] = amz_date
        added: dict[str, str] = {"X-Amz-Date": amz_date}
        if token:
            added["X-Amz-Security-Token"] = token
            if sign_session_token:
                merged["x-amz-security-token"] = token
            else:
                merged.pop("x-amz-security-token", None)
        if self._content_sha256_header:
            merged["x-amz-content-sha256"] = payload_hash
            added["X-Amz-Content-SHA256"] = payload_hash

        names = sorted(merged)
        signed_headers = ";".join(names)
        canonical_headers = "".join([f"{name}:{merged[name]}\n" for name in names])
        canonical_query = _join_query(_canonical_query_pairs(parsed.raw_query))
        canonical_request = (
            f"{method.upper()}\n{parsed.canonical_uri}\n{canonical_query}\n"
            f"{canonical_headers}\n{signed_headers}\n{payload_hash}"
        )
        datestamp = amz_date[:8]
        string_to_sign, signature = self._signature(canonical_request, amz_date, datestamp)
        added["Authorization"] = (
            f"{ALGORITHM} Credential={self._access_key_id}/{datestamp}/{self._region}/"
            f"{self._service}/aws4_request, SignedHeaders={signed_headers}, Signature={signature}"
        )
        return SignatureDetails(added, canonical_request, string_to_sign, signature)

    def presign_details(
        self,
        method: str,
        url: str | httpx.URL,
        expires_in: int,
        now: datetime | None = None,
        *,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        sign_session_token: bool = True,
    ) -> PresignDetails:
        """``presign_url`` plus its intermediate values.

        ``headers`` (beyond ``host``) and ``body`` exist for the test suite's presigned POST cases;
        whoever uses the URL must then send exactly those headers and that body.
        """
        if (
            isinstance(expires_in, bool)
            or not isinstance(expires_in, int)  # pyright: ignore[reportUnnecessaryIsInstance]
            or not 1 <= expires_in <= MAX_PRESIGN_EXPIRES
        ):
            raise ConfigurationError(
                "expires_in must be an integer number of seconds between 1 and "
                f"{MAX_PRESIGN_EXPIRES} (7 days), got {expires_in!r}"
            )
        parsed = self._parse_url(url)
        amz_date = _amz_date(now)
        datestamp = amz_date[:8]
        token = self._credentials.session_token

        merged: dict[str, str] = {}
        for name, value in _header_items(headers):
            lname = name.lower()
            if lname in _UNSIGNABLE_HEADERS or lname == "x-amz-security-token":
                continue
            value = " ".join(value.split())
            previous = merged.get(lname)
            merged[lname] = value if previous is None else f"{previous},{value}"
        if "host" not in merged:
            merged["host"] = parsed.host
        names = sorted(merged)
        signed_headers = ";".join(names)
        canonical_headers = "".join([f"{name}:{merged[name]}\n" for name in names])

        scope = f"{datestamp}/{self._region}/{self._service}/aws4_request"
        auth_params = [
            ("X-Amz-Algorithm", ALGORITHM),
            ("X-Amz-Credential", f"{self._access_key_id}/{scope}"),
            ("X-Amz-Date", amz_date),
            ("X-Amz-Expires", str(expires_in)),
            ("X-Amz-SignedHeaders", signed_headers),
        ]
        if token and sign_session_token:
            auth_params.append(("X-Amz-Security-Token", token))
        pairs = _canonical_query_pairs(parsed.raw_query)
        pairs.extend((quote(k, safe=""), quote(v, safe="")) for k, v in auth_params)
        canonical_query = _join_query(pairs)
        payload_hash = UNSIGNED_PAYLOAD if self._is_s3 else hashlib.sha256(body).hexdigest()
        canonical_request = (
            f"{method.upper()}\n{parsed.canonical_uri}\n{canonical_query}\n"
            f"{canonical_headers}\n{signed_headers}\n{payload_hash}"
        )
        string_to_sign, signature = self._signature(canonical_request, amz_date, datestamp)
        query = canonical_query
        if token and not sign_session_token:
            query += f"&X-Amz-Security-Token={quote(token, safe='')}"
        query += f"&X-Amz-Signature={signature}"
        return PresignDetails(f"{parsed.base}?{query}", canonical_request, string_to_sign, signature)

    # -- internals -----------------------------------------------------------------------------

    def _signature(self, canonical_request: str, amz_date: str, datestamp: str) -> tuple[str, str]:
        string_to_sign = (
            f"{ALGORITHM}\n{amz_date}\n{datestamp}/{self._region}/{self._service}/aws4_request\n"
            f"{hashlib.sha256(canonical_request.encode()).hexdigest()}"
        )
        key = self._signing_key(datestamp)
        signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        return string_to_sign, signature

    def _signing_key(self, datestamp: str) -> bytes:
        secret = self._credentials.secret_access_key
        scope = (self._region, self._service)
        cached = _KEY_CACHE.get(scope)
        if cached is not None and cached[1] == datestamp and cached[0] == secret:
            return cached[2]
        key = hmac.digest(f"AWS4{secret}".encode(), datestamp.encode(), "sha256")
        key = hmac.digest(key, self._region.encode(), "sha256")
        key = hmac.digest(key, self._service.encode(), "sha256")
        key = hmac.digest(key, b"aws4_request", "sha256")
        _KEY_CACHE[scope] = (secret, datestamp, key)
        return key

    def _parse_url(self, url: str | httpx.URL) -> _ParsedURL:
        last = self._last_url
        if isinstance(url, str):
            if last is not None and last[0] == url:
                return last[1]
            parsed = self._parse_str_url(url)
            self._last_url = (url, parsed)
            return parsed
        raw_path = url.raw_path.decode("ascii")
        path, _, query = raw_path.partition("?")
        netloc = url.netloc.decode("ascii")
        base = f"{url.scheme}://{netloc}{path}"
        return _ParsedURL(netloc, self._canonical_uri(path), query, base)

    def _parse_str_url(self, url: str) -> _ParsedURL:
        parts = urlsplit(url)
        hostname = parts.hostname or ""
        if not hostname.isascii():
            # Internationalised host: let httpx apply IDNA exactly as it will when sending.
            return self._parse_url(httpx.URL(url))
        if ":" in hostname:
            hostname = f"[{hostname}]"
        port = parts.port
        host = (
            hostname if port is None or port == _DEFAULT_PORTS.get(parts.scheme) else (f"{hostname}:{port}")
        )
        path = parts.path
        base = f"{parts.scheme}://{parts.netloc}{path}"
        return _ParsedURL(host, self._canonical_uri(path), parts.query, base)

    def _canonical_uri(self, path: str) -> str:
        if not path or path == "/":
            return "/"
        if not self._normalize_path:
            return path
        if "/." in path or "//" in path or path.startswith("."):
            path = _remove_dot_segments(path)
        return quote(path, safe="/")
