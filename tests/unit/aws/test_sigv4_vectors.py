"""The signer against published vectors: both SigV4 test suites, the S3 API reference examples,
and requests captured from real botocore clients.

The suites are read in place from ``../shared/sigv4-testsuite`` (override: ``SIGV4_TESTSUITE_DIR``).
Every case of both suites runs; the only skip is for a checkout where the folder does not exist.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from taskiq_sqs_http.aws._credentials import Credentials
from taskiq_sqs_http.aws._errors import ConfigurationError, InvalidS3KeyError
from taskiq_sqs_http.aws._sigv4 import (
    EMPTY_SHA256,
    UNSIGNED_PAYLOAD,
    SigV4Signer,
    build_query,
    encode_s3_key,
    uri_encode,
)

# --------------------------------------------------------------------------------------------------
# Suite location and constants
# --------------------------------------------------------------------------------------------------


def _suite_root() -> Path:
    override = os.environ.get("SIGV4_TESTSUITE_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[3] / ".." / "shared" / "sigv4-testsuite"


SUITE_ROOT = _suite_root()
BOTOCORE_DIR = SUITE_ROOT / "botocore-aws4_testsuite"
CRT_DIR = SUITE_ROOT / "aws-c-auth-signing-test-suite-v4"

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SUITE_TIME = datetime(2015, 8, 30, 12, 36, 0, tzinfo=timezone.utc)
SUITE_REGION = "us-east-1"
SUITE_SERVICE = "service"
SHORT_TOKEN = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"
STS_TOKEN = (
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfp"
    "SPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDY"
    "wT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqK"
    "mlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
)

# Case counts from the reference note (section 1.1); fewer means a case was lost.
BOTOCORE_CASE_COUNT = 34
CRT_CASE_COUNT = 38


def _botocore_cases() -> list[Path]:
    if not BOTOCORE_DIR.is_dir():
        return []
    return sorted(p.parent for p in BOTOCORE_DIR.rglob("*.req"))


def _crt_cases() -> list[Path]:
    if not CRT_DIR.is_dir():
        return []
    return sorted(p.parent for p in CRT_DIR.glob("*/context.json"))


BOTOCORE_CASES = _botocore_cases()
CRT_CASES = _crt_cases()


def _require_suite() -> None:
    if not SUITE_ROOT.is_dir():
        pytest.skip(f"SigV4 test suite folder not present: {SUITE_ROOT}")


def _case_params(cases: list[Path], root: Path) -> list[object]:
    if not cases:  # folder absent: one placeholder that skips, so the absence is visible
        return [pytest.param(None, id="suite-absent")]
    return [pytest.param(case, id=case.relative_to(root).as_posix()) for case in cases]


# --------------------------------------------------------------------------------------------------
# Request-file parsing (the traps of section 1.1)
# --------------------------------------------------------------------------------------------------


@dataclass
class ParsedRequest:
    method: str
    path: str  # logical (unencoded) path, as written in the request line
    query: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def host(self) -> str:
        return next(v for n, v in self.headers if n.lower() == "host").strip()

    def url(self, *, normalize: bool) -> str:
        """The URL to hand the signer for this case.

        The suites write *logical* request targets and expect the path to be URI-encoded exactly
        once in the canonical request. Under the normalising (non-S3) rules the signer itself
        encodes the path it is given, so it gets the logical path verbatim. Under the S3 rules the
        signer uses the wire path as-is, so the harness encodes the logical path once to obtain
        the wire path -- what httpx would send.
        """
        path = self.path if normalize else uri_encode(self.path, keep_slash=True)
        url = f"https://{self.host}{path}"
        return f"{url}?{self.query}" if self.query else url


def parse_request(text: str) -> ParsedRequest:
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    request_line = lines[0]
    # Split on the first and last space: get-space has a raw space inside the target.
    method, _, rest = request_line.partition(" ")
    target, _, _version = rest.rpartition(" ")
    path, _, query = target.partition("?")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":  # obs-fold continuation: part of the previous header's value
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, _, value = line.partition(":")
        headers.append((name, value))
    return ParsedRequest(method, path, query, headers, body.encode())


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_request_parser_handles_the_suite_traps() -> None:
    parsed = parse_request("GET /example space/ HTTP/1.1\nHost:h\nA:v1\n  v2\n     v3\nA:x")
    assert parsed.path == "/example space/"
    assert parsed.headers == [("Host", "h"), ("A", "v1 v2 v3"), ("A", "x")]
    assert parsed.url(normalize=False) == "https://h/example%20space/"
    assert parsed.url(normalize=True) == "https://h/example space/"


# --------------------------------------------------------------------------------------------------
# botocore copy of the suite (.req/.creq/.sts/.authz)
# --------------------------------------------------------------------------------------------------


def _botocore_token(name: str) -> str | None:
    if name == "get-vanilla-with-session-token":
        return SHORT_TOKEN
    if name.startswith("post-sts-header-"):
        return STS_TOKEN
    return None


def test_suites_are_complete() -> None:
    _require_suite()
    assert len(BOTOCORE_CASES) == BOTOCORE_CASE_COUNT
    assert len(CRT_CASES) == CRT_CASE_COUNT
    readme = _read(BOTOCORE_DIR / "post-sts-token" / "readme.txt")
    assert STS_TOKEN in readme


@pytest.mark.parametrize("case", _case_params(BOTOCORE_CASES, BOTOCORE_DIR))
def test_botocore_suite(case: Path | None) -> None:
    _require_suite()
    assert case is not None
    name = case.name
    request = parse_request(_read(case / f"{name}.req"))
    token = _botocore_token(name)
    signer = SigV4Signer(Credentials(ACCESS_KEY, SECRET_KEY, token), SUITE_REGION, SUITE_SERVICE)
    details = signer.sign_details(
        request.method,
        request.url(normalize=True),
        request.headers,
        request.body,
        SUITE_TIME,
        sign_session_token=name != "post-sts-header-after",
    )
    assert details.canonical_request == _read(case / f"{name}.creq")
    assert details.string_to_sign == _read(case / f"{name}.sts")
    assert details.headers["Authorization"] == _read(case / f"{name}.authz")
    assert details.headers["X-Amz-Date"] == "20150830T123600Z"
    if token is not None:
        assert details.headers["X-Amz-Security-Token"] == token
    assert "X-Amz-Content-SHA256" not in details.headers
    # The signed request file carries the same Authorization line -- except in one case, whose
    # .sreq in this copy of the suite holds a garbled signature (the .authz, and aws-c-auth's
    # copy of the same case, agree with us).
    sreq = _read(case / f"{name}.sreq")
    if name != "get-vanilla-with-session-token":
        assert f"Authorization: {details.headers['Authorization']}" in sreq


# --------------------------------------------------------------------------------------------------
# aws-c-auth v4 suite: header and query (presigned) forms
# --------------------------------------------------------------------------------------------------


@dataclass
class CrtContext:
    credentials: Credentials
    region: str
    service: str
    normalize: bool
    sign_body: bool
    omit_session_token: bool
    expires: int
    now: datetime


def _crt_context(case: Path) -> CrtContext:
    raw = json.loads(_read(case / "context.json"))
    creds = raw["credentials"]
    return CrtContext(
        credentials=Credentials(creds["access_key_id"], creds["secret_access_key"], creds.get("token")),
        region=raw["region"],
        service=raw["service"],
        normalize=raw["normalize"],
        sign_body=raw["sign_body"],
        omit_session_token=raw.get("omit_session_token", False),
        expires=raw["expiration_in_seconds"],
        now=datetime.strptime(raw["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc),
    )


def _crt_signer(ctx: CrtContext) -> SigV4Signer:
    return SigV4Signer(
        ctx.credentials,
        ctx.region,
        ctx.service,
        normalize_path=ctx.normalize,
        content_sha256_header=ctx.sign_body,
    )


@pytest.mark.parametrize("case", _case_params(CRT_CASES, CRT_DIR))
def test_crt_suite_header(case: Path | None) -> None:
    _require_suite()
    assert case is not None
    ctx = _crt_context(case)
    request = parse_request(_read(case / "request.txt"))
    details = _crt_signer(ctx).sign_details(
        request.method,
        request.url(normalize=ctx.normalize),
        request.headers,
        request.body,
        ctx.now,
        sign_session_token=not ctx.omit_session_token,
    )
    assert details.canonical_request == _read(case / "header-canonical-request.txt")
    assert details.string_to_sign == _read(case / "header-string-to-sign.txt")
    assert details.signature == _read(case / "header-signature.txt")
    signed_request = _read(case / "header-signed-request.txt")
    assert f"Authorization:{details.headers['Authorization']}\n" in signed_request
    assert f"X-Amz-Date:{details.headers['X-Amz-Date']}\n" in signed_request
    if ctx.credentials.session_token:
        assert f"X-Amz-Security-Token:{details.headers['X-Amz-Security-Token']}\n" in (signed_request)
    if ctx.sign_body:
        assert f"x-amz-content-sha256:{details.headers['X-Amz-Content-SHA256']}\n" in signed_request
    else:
        assert "X-Amz-Content-SHA256" not in details.headers


def _query_pairs(query: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for part in query.split("&"):
        name, _, value = part.partition("=")
        pairs.append((unquote(name), unquote(value)))
    return sorted(pairs)


@pytest.mark.parametrize("case", _case_params(CRT_CASES, CRT_DIR))
def test_crt_suite_query(case: Path | None) -> None:
    _require_suite()
    assert case is not None
    ctx = _crt_context(case)
    request = parse_request(_read(case / "request.txt"))
    details = _crt_signer(ctx).presign_details(
        request.method,
        request.url(normalize=ctx.normalize),
        ctx.expires,
        ctx.now,
        headers=request.headers,
        body=request.body,
        sign_session_token=not ctx.omit_session_token,
    )
    assert details.canonical_request == _read(case / "query-canonical-request.txt")
    assert details.string_to_sign == _read(case / "query-string-to-sign.txt")
    assert details.signature == _read(case / "query-signature.txt")

    # The signed URL: same path as given, same parameters as the suite's signed request (the
    # suite orders them differently; order is not significant), signature last.
    expected = parse_request(_read(case / "query-signed-request.txt"))
    base, _, query = details.url.partition("?")
    assert base == request.url(normalize=ctx.normalize).partition("?")[0]
    assert _query_pairs(query) == _query_pairs(expected.query)
    assert details.url.endswith(f"&X-Amz-Signature={details.signature}")


# --------------------------------------------------------------------------------------------------
# S3 API reference worked examples (section 2.4)
# --------------------------------------------------------------------------------------------------

DOC_CREDS = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
DOC_TIME = datetime(2013, 5, 24, tzinfo=timezone.utc)
DOC_HOST = "https://examplebucket.s3.amazonaws.com"


def _signature_of(authorization: str) -> tuple[str, str]:
    signed = authorization.split("SignedHeaders=")[1].split(",")[0]
    return signed, authorization.rsplit("Signature=", 1)[1]


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "signed_headers", "signature"),
    [
        pytest.param(
            "GET",
            "/test.txt",
            {"Range": "bytes=0-9"},
            b"",
            "host;range;x-amz-content-sha256;x-amz-date",
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
            id="get-object",
        ),
        pytest.param(
            "PUT",
            "/test%24file.text",
            {
                "Date": "Fri, 24 May 2013 00:00:00 GMT",
                "x-amz-storage-class": "REDUCED_REDUNDANCY",
            },
            b"Welcome to Amazon S3.",
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
            id="put-object",
        ),
        pytest.param(
            "GET",
            "/?lifecycle",
            {},
            b"",
            "host;x-amz-content-sha256;x-amz-date",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
            id="get-bucket-lifecycle",
        ),
        pytest.param(
            "GET",
            "/?max-keys=2&prefix=J",
            {},
            b"",
            "host;x-amz-content-sha256;x-amz-date",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
            id="list-objects",
        ),
    ],
)
def test_s3_doc_examples(
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    signed_headers: str,
    signature: str,
) -> None:
    signer = SigV4Signer(DOC_CREDS, "us-east-1", "s3")
    added = signer.sign(method, DOC_HOST + path, headers, body, DOC_TIME)
    assert _signature_of(added["Authorization"]) == (signed_headers, signature)
    assert added["Authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
    )
    assert added["X-Amz-Date"] == "20130524T000000Z"
    assert set(added) == {"Authorization", "X-Amz-Date", "X-Amz-Content-SHA256"}


def test_s3_doc_example_canonical_lifecycle_query() -> None:
    signer = SigV4Signer(DOC_CREDS, "us-east-1", "s3")
    details = signer.sign_details("GET", DOC_HOST + "/?lifecycle", {}, b"", DOC_TIME)
    assert details.canonical_request.split("\n")[2] == "lifecycle="


def test_s3_doc_example_presigned() -> None:
    signer = SigV4Signer(DOC_CREDS, "us-east-1", "s3")
    url = signer.presign_url("GET", DOC_HOST + "/test.txt", 86400, DOC_TIME)
    assert url == (
        "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )
    details = signer.presign_details("GET", DOC_HOST + "/test.txt", 86400, DOC_TIME)
    assert details.canonical_request.endswith(f"\nhost\n{UNSIGNED_PAYLOAD}")


# --------------------------------------------------------------------------------------------------
# Golden requests captured from botocore 1.44.8 (section 2.5)
# --------------------------------------------------------------------------------------------------

GOLDEN_KEY = "photos/a b+c%d~e$f&g=h,i;j:k@l!m*n'o(p)q/\u1234.jpg"
GOLDEN_PATH = "/photos/a%20b%2Bc%25d~e%24f%26g%3Dh%2Ci%3Bj%3Ak%40l%21m%2An%27o%28p%29q/%E1%88%B4.jpg"
GOLDEN_TOKEN = "AQoDYXdzEXAMPLEtoken/+="
SQS_QUEUE_BODY = '{"QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/MyQueue", '


@dataclass
class Golden:
    service: str
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    signed_headers: str
    signature: str
    token: str | None = None
    unsigned_payload: bool = False


GOLDEN = {
    "s3-put-awkward-key": Golden(
        "s3",
        "PUT",
        "https://examplebucket.s3.amazonaws.com" + GOLDEN_PATH,
        {},
        b"hello",
        "host;x-amz-content-sha256;x-amz-date",
        "7aa3fde79929d29e15f1b23b30845a0a81494d3f8d90a14472b78a0782831dac",
    ),
    "s3-get-path-style": Golden(
        "s3",
        "GET",
        "https://s3.amazonaws.com/examplebucket" + GOLDEN_PATH,
        {"x-amz-checksum-mode": "ENABLED"},
        b"",
        "host;x-amz-checksum-mode;x-amz-content-sha256;x-amz-date",
        "8c22c085d1ad63bc59e1fa97b92f448b0c235690bc9ac7322229f90541389cf9",
    ),
    "s3-get-not-normalised": Golden(
        "s3",
        "GET",
        "https://examplebucket.s3.amazonaws.com/a//b/./c/../d",
        {"x-amz-checksum-mode": "ENABLED"},
        b"",
        "host;x-amz-checksum-mode;x-amz-content-sha256;x-amz-date",
        "d8fe773ca7a42b7691d7dd70c136cc943f70f7695ceac43325b684dfb38585d9",
    ),
    "s3-list-objects": Golden(
        "s3",
        "GET",
        "https://examplebucket.s3.amazonaws.com/?list-type=2&prefix=a%20b%2Fc%2Bd"
        "&delimiter=%2F&max-keys=10&encoding-type=url",
        {},
        b"",
        "host;x-amz-content-sha256;x-amz-date",
        "4f7e685e252c3b3bca2cf0f6adb9542117198a700c10da1881edf2d409f1d3b0",
    ),
    "s3-get-session-token": Golden(
        "s3",
        "GET",
        "https://examplebucket.s3.amazonaws.com/k",
        {"x-amz-checksum-mode": "ENABLED"},
        b"",
        "host;x-amz-checksum-mode;x-amz-content-sha256;x-amz-date;x-amz-security-token",
        "fa0af7c9a3ebc0591ac45b875fffbecd5cb0168467194c671f15b4a1d7bebeff",
        token=GOLDEN_TOKEN,
    ),
    "s3-put-unsigned-payload": Golden(
        "s3",
        "PUT",
        "https://examplebucket.s3.amazonaws.com/k",
        {},
        b"hello",
        "host;x-amz-content-sha256;x-amz-date",
        "f6d1b4095274f9c299047f80074e5c6dae6cb8969e87dc9356ba38d3ad342e07",
        unsigned_payload=True,
    ),
    "sqs-send-message": Golden(
        "sqs",
        "POST",
        "https://sqs.us-east-1.amazonaws.com/",
        {
            "X-Amz-Target": "AmazonSQS.SendMessage",
            "Content-Type": "application/x-amz-json-1.0",
            "x-amzn-query-mode": "true",
            "User-Agent": "Botocore/1.44.8",
            "Content-Length": "91",
            "amz-sdk-invocation-id": "0b3b2a1c-0000-4000-8000-000000000000",
            "amz-sdk-request": "attempt=1",
        },
        (SQS_QUEUE_BODY + '"MessageBody": "hello"}').encode(),
        "content-type;host;x-amz-date;x-amz-target;x-amzn-query-mode",
        "c3886375a173a0ecff4fecdc743d31083434656d718591f18e6570d49e918662",
    ),
    "sqs-receive-message": Golden(
        "sqs",
        "POST",
        "https://sqs.us-east-1.amazonaws.com/",
        {
            "X-Amz-Target": "AmazonSQS.ReceiveMessage",
            "Content-Type": "application/x-amz-json-1.0",
            "x-amzn-query-mode": "true",
        },
        (SQS_QUEUE_BODY + '"MaxNumberOfMessages": 10, "WaitTimeSeconds": 20}').encode(),
        "content-type;host;x-amz-date;x-amz-target;x-amzn-query-mode",
        "fdf7934ad3c0e803b5bd7783a4690a31bc543af2c13804f86792c8ac7553b846",
    ),
}


@pytest.mark.parametrize("name", list(GOLDEN))
def test_botocore_golden_requests(name: str) -> None:
    g = GOLDEN[name]
    # Content-Length is in botocore's request but not signed by it: drop it like botocore's
    # capture does (it is not in the signed list above).
    headers = {k: v for k, v in g.headers.items() if k.lower() != "content-length"}
    signer = SigV4Signer(Credentials(ACCESS_KEY, SECRET_KEY, g.token), SUITE_REGION, g.service)
    added = signer.sign(g.method, g.url, headers, g.body, SUITE_TIME, unsigned_payload=g.unsigned_payload)
    assert _signature_of(added["Authorization"]) == (g.signed_headers, g.signature)
    if g.service == "s3":
        expected_hash = UNSIGNED_PAYLOAD if g.unsigned_payload else _sha256(g.body)
        assert added["X-Amz-Content-SHA256"] == expected_hash
    else:
        assert "X-Amz-Content-SHA256" not in added
    assert added.get("X-Amz-Security-Token") == g.token


def test_golden_key_encodes_to_golden_path() -> None:
    assert "/" + encode_s3_key(GOLDEN_KEY) == GOLDEN_PATH
    # ...and httpx sends exactly that path, so what we sign is what goes on the wire.
    url = httpx.URL("https://examplebucket.s3.amazonaws.com/" + encode_s3_key(GOLDEN_KEY))
    assert url.raw_path.decode() == GOLDEN_PATH


def test_golden_via_httpx_url_matches_str() -> None:
    g = GOLDEN["s3-put-awkward-key"]
    signer = SigV4Signer(Credentials(ACCESS_KEY, SECRET_KEY), SUITE_REGION, "s3")
    from_url = signer.sign(g.method, httpx.URL(g.url), {}, g.body, SUITE_TIME)
    from_str = signer.sign(g.method, g.url, {}, g.body, SUITE_TIME)
    assert from_url == from_str


PRESIGN_URL = "https://examplebucket.s3.amazonaws.com/a%20b/%E1%88%B4.txt"


def test_botocore_golden_presigned() -> None:
    signer = SigV4Signer(Credentials(ACCESS_KEY, SECRET_KEY), SUITE_REGION, "s3")
    assert signer.presign_url("GET", PRESIGN_URL, 3600, SUITE_TIME) == (
        PRESIGN_URL + "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20150830T123600Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=f86b172f5aa0757d97bbc2deaf2da5393cc63c9c5cee207e7dda442c8277cdc6"
    )


def test_botocore_golden_presigned_with_token() -> None:
    signer = SigV4Signer(Credentials(ACCESS_KEY, SECRET_KEY, GOLDEN_TOKEN), SUITE_REGION, "s3")
    url = signer.presign_url("GET", PRESIGN_URL, 3600, SUITE_TIME)
    query = httpx.URL(url).query.decode()
    assert "X-Amz-Security-Token=AQoDYXdzEXAMPLEtoken%2F%2B%3D" in query.split("&")
    assert url.endswith("&X-Amz-Signature=9bea91b9fda80a62fb8a6dd1bd14076188c6b17ad525f2abe7feae983c861c7f")


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------------
# encode_s3_key / uri_encode / build_query
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "encoded"),
    [
        ("plain.txt", "plain.txt"),
        ("dir/sub/file", "dir/sub/file"),
        ("a b", "a%20b"),
        ("\u1234", "%E1%88%B4"),
        ("caf\u00e9/\U0001f600", "caf%C3%A9/%F0%9F%98%80"),
        ("a+b", "a%2Bb"),
        ("a=b", "a%3Db"),
        ("a&b", "a%26b"),
        ("a?b", "a%3Fb"),
        ("a#b", "a%23b"),
        ("a%b", "a%25b"),
        ("a%20b", "a%2520b"),
        ("a~b", "a~b"),
        ("-_.~", "-_.~"),
        ("a..b", "a..b"),
        (".hidden", ".hidden"),
        ("dir/.hidden", "dir/.hidden"),
        ("a//b", "a//b"),
        ("...", "..."),
        ("a/.../b", "a/.../b"),
        ("trailing/", "trailing/"),
        ("taskiq/results/3f2a:1", "taskiq/results/3f2a%3A1"),
    ],
)
def test_encode_s3_key(key: str, encoded: str) -> None:
    assert encode_s3_key(key) == encoded
    # httpx must send the encoded key unchanged (no dot-segment removal, no re-encoding).
    url = httpx.URL("https://bucket.s3.amazonaws.com/" + encoded)
    assert url.raw_path.decode() == "/" + encoded


@pytest.mark.parametrize("key", ["a/../b", "./x", "x/.", "..", ".", "a/./b", "x/..", "../x"])
def test_encode_s3_key_rejects_dot_segments(key: str) -> None:
    with pytest.raises(InvalidS3KeyError) as info:
        encode_s3_key(key)
    message = str(info.value)
    assert repr(key) in message
    assert "segment" in message
    assert isinstance(info.value, ConfigurationError)


def test_encode_s3_key_rejects_empty() -> None:
    with pytest.raises(InvalidS3KeyError):
        encode_s3_key("")


def test_uri_encode() -> None:
    assert uri_encode("a b/c+d=e~", keep_slash=True) == "a%20b/c%2Bd%3De~"
    assert uri_encode("a b/c+d=e~", keep_slash=False) == "a%20b%2Fc%2Bd%3De~"
    assert uri_encode("AZaz09-_.~", keep_slash=False) == "AZaz09-_.~"
    assert uri_encode("!*'();:@&$,?#[]%", keep_slash=False) == (
        "%21%2A%27%28%29%3B%3A%40%26%24%2C%3F%23%5B%5D%25"
    )
    assert uri_encode("\u1234", keep_slash=False) == "%E1%88%B4"


def test_build_query() -> None:
    assert build_query([]) == ""
    assert (
        build_query([("prefix", "a b/c+d"), ("delimiter", "/"), ("empty", ""), ("k\u1234", "=&")])
        == "prefix=a%20b%2Fc%2Bd&delimiter=%2F&empty=&k%E1%88%B4=%3D%26"
    )
    # Order is the caller's; only the signer sorts.
    assert build_query([("b", "1"), ("a", "2")]) == "b=1&a=2"
    # httpx leaves it untouched on the wire.
    query = build_query([("prefix", "a b/c+d~")])
    assert httpx.URL(f"https://h/?{query}").query.decode() == query


# --------------------------------------------------------------------------------------------------
# Behaviour of the public API
# --------------------------------------------------------------------------------------------------

SECRET = "sEcReT/ValUe+never+shown0123456789abcdefg"
TOKEN = "ToKeN/value+never+logged=="


def test_sign_returns_only_headers_to_add() -> None:
    plain = SigV4Signer(Credentials(ACCESS_KEY, SECRET), "eu-west-1", "sqs")
    assert set(plain.sign("POST", "https://sqs.eu-west-1.amazonaws.com/", {}, b"{}")) == {
        "Authorization",
        "X-Amz-Date",
    }
    with_token = SigV4Signer(Credentials(ACCESS_KEY, SECRET, TOKEN), "eu-west-1", "s3")
    added = with_token.sign("GET", "https://b.s3.eu-west-1.amazonaws.com/k", {})
    assert set(added) == {
        "Authorization",
        "X-Amz-Date",
        "X-Amz-Security-Token",
        "X-Amz-Content-SHA256",
    }
    assert added["X-Amz-Content-SHA256"] == EMPTY_SHA256
    assert "x-amz-security-token" in added["Authorization"]


def test_host_includes_non_default_port_only() -> None:
    signer = SigV4Signer(Credentials(ACCESS_KEY, SECRET), "us-east-1", "sqs")
    for url, host in [
        ("http://127.0.0.1:4566/", "127.0.0.1:4566"),
        ("https://sqs.us-east-1.amazonaws.com:443/", "sqs.us-east-1.amazonaws.com"),
        ("http://LocalHost:80/", "localhost"),
        ("http://[::1]:4566/", "[::1]:4566"),
        ("https://user:pw@example.com:8443/", "example.com:8443"),
    ]:
        details = signer.sign_details("POST", url, {}, b"", SUITE_TIME)
        assert f"\nhost:{host}\n" in details.canonical_request, url
        # httpx sends exactly this Host header.
        assert httpx.Request("POST", url).headers["host"] == host


def test_explicit_host_header_wins() -> None:
    signer = SigV4Signer(Credentials(ACCESS_KEY, SECRET), "us-east-1", "sqs")
    details = signer.sign_details("POST", "http://127.0.0.1:4566/", {"Host": "sqs.local"}, b"", SUITE_TIME)
    assert "\nhost:sqs.local\n" in details.canonical_request


def test_caller_auth_headers_are_replaced_not_resigned() -> None:
    signer = SigV4Signer(Credentials(ACCESS_KEY, SECRET), "us-east-1", "sqs")
    base = signer.sign("POST", "https://sqs.us-east-1.amazonaws.com/", {}, b"", SUITE_TIME)
    again = signer.sign(
        "POST",
        "https://sqs.us-east-1.amazonaws.com/",
        {**base, "User-Agent": "x", "Expect": "100-continue", "traceparent": "00-a-b-01"},
        b"",
        SUITE_TIME,
    )
    assert again == base


def test_header_forms_are_equivalent() -> None:
    signer = SigV4Signer(Credentials(ACCESS_KEY, SECRET), "us-east-1", "service")
    pairs = [("My-Header", "b"), ("my-header", " a  c "), ("X-Other", "1")]
    as_list = signer.sign("GET", "https://example.amazonaws.com/", pairs, b"", SUITE_TIME)
    as_httpx = signer.sign("GET", "https://example.amazonaws.com/", httpx.Headers(pairs), b"", SUITE_TIME)
    assert as_list == as_httpx
    details = signer.sign_details("GET", "https://example.amazonaws.com/", pairs, b"", SUITE_TIME)
    assert "\nmy-header:b,a c\n" in details.canonical_request


def test_now_accepts_aware_and_naive_datetimes() -> None:
    signer = SigV4Signer(Credentials(ACCESS_KEY, SECRET), "us-east-1", "sqs")
    url = "https://sqs.us-east-1.amazonaws.com/"
    utc = signer.sign("POST", url, {}, b"", SUITE_TIME)
    plus_two = SUITE_TIME.astimezone(timezone(timedelta(hours=2)))
    assert signer.sign("POST", url, {}, b"", plus_two) == utc
    assert signer.sign("POST", url, {}, b"", SUITE_TIME.replace(tzinfo=None)) == utc
    now = signer.sign("POST", url, {}, b"")
    stamp = datetime.strptime(now["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    assert abs((datetime.now(timezone.utc) - stamp).total_seconds()) < 60


def test_signing_key_cache_follows_date_and_secret() -> None:
    url = "https://sqs.us-east-1.amazonaws.com/"

    def sign(secret: str, when: datetime) -> str:
        signer = SigV4Signer(Credentials(ACCESS_KEY, secret), "us-east-1", "sqs")
        return signer.sign("POST", url, {}, b"", when)["Authorization"]

    day1 = sign(SECRET, SUITE_TIME)
    day2 = sign(SECRET, SUITE_TIME + timedelta(days=1))
    rotated = sign(SECRET + "x", SUITE_TIME)
    assert len({day1, day2, rotated}) == 3
    # Back to the first inputs: the same answer as computed cold.
    assert sign(SECRET, SUITE_TIME) == day1


def test_non_s3_path_is_normalised_and_double_encoded() -> None:
    signer = SigV4Signer(Credentials(ACCESS_KEY, SECRET), "us-east-1", "service")
    details = signer.sign_details(
        "GET", httpx.URL("https://example.amazonaws.com/a%20b//c/"), {}, b"", SUITE_TIME
    )
    assert details.canonical_request.split("\n")[1] == "/a%2520b/c/"


def test_str_and_httpx_url_agree_on_wire_form_urls() -> None:
    for service in ("s3", "sqs"):
        signer = SigV4Signer(Credentials(ACCESS_KEY, SECRET), "us-east-1", service)
        url = "http://127.0.0.1:4566/b/" + encode_s3_key("a b/\u1234+%") + "?x=" + "%2F%20"
        assert signer.sign("GET", url, {}, b"", SUITE_TIME) == signer.sign(
            "GET", httpx.URL(url), {}, b"", SUITE_TIME
        )


@pytest.mark.parametrize("expires", [0, -1, 604801, 10**9])
def test_presign_expiry_out_of_range(expires: int) -> None:
    signer = SigV4Signer(Credentials(ACCESS_KEY, SECRET, TOKEN), "us-east-1", "s3")
    with pytest.raises(ConfigurationError) as info:
        signer.presign_url("GET", "https://b.s3.amazonaws.com/k", expires, SUITE_TIME)
    message = str(info.value)
    assert "expires_in" in message
    assert repr(expires) in message
    assert "604800" in message
    assert SECRET not in message
    assert TOKEN not in message


def test_presign_expiry_rejects_non_int() -> None:
    signer = SigV4Signer(Credentials(ACCESS_KEY, SECRET), "us-east-1", "s3")
    with pytest.raises(ConfigurationError):
        signer.presign_url("GET", "https://b.s3.amazonaws.com/k", True, SUITE_TIME)
    with pytest.raises(ConfigurationError):
        signer.presign_url("GET", "https://b.s3.amazonaws.com/k", 1.5, SUITE_TIME)  # type: ignore[arg-type]


@pytest.mark.parametrize("expires", [1, 604800])
def test_presign_expiry_bounds_accepted(expires: int) -> None:
    signer = SigV4Signer(Credentials(ACCESS_KEY, SECRET), "us-east-1", "s3")
    url = signer.presign_url("GET", "https://b.s3.amazonaws.com/k", expires, SUITE_TIME)
    assert f"X-Amz-Expires={expires}&" in url


def test_presign_keeps_existing_query_and_signs_non_s3_with_empty_hash() -> None:
    signer = SigV4Signer(Credentials(ACCESS_KEY, SECRET), "us-east-1", "service")
    details = signer.presign_details("GET", "https://example.amazonaws.com/?b=2&a=x%20y", 60, SUITE_TIME)
    assert details.canonical_request.endswith(f"\nhost\n{EMPTY_SHA256}")
    query = httpx.URL(details.url).query.decode()
    assert query.startswith("X-Amz-Algorithm=")
    assert "&a=x%20y&b=2&X-Amz-Signature=" in query


def test_no_secret_in_repr_or_errors() -> None:
    signer = SigV4Signer(Credentials(ACCESS_KEY, SECRET, TOKEN), "us-east-1", "s3")
    text = repr(signer) + str(signer)
    assert ACCESS_KEY in text
    assert SECRET not in text
    assert TOKEN not in text
    for bad in (lambda: encode_s3_key("a/../b"), lambda: signer.presign_url("GET", "h", 0)):
        with pytest.raises(ConfigurationError) as info:
            bad()
        rendered = str(info.value) + repr(info.value)
        assert SECRET not in rendered
        assert TOKEN not in rendered
    added = signer.sign("GET", "https://b.s3.amazonaws.com/k", {}, b"", SUITE_TIME)
    assert SECRET not in repr(added)


def test_empty_region_or_service_rejected() -> None:
    creds = Credentials(ACCESS_KEY, SECRET)
    with pytest.raises(ConfigurationError):
        SigV4Signer(creds, "", "sqs")
    with pytest.raises(ConfigurationError):
        SigV4Signer(creds, "us-east-1", "")
