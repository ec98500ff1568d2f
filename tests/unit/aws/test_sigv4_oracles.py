"""Differential tests: same request in, same Authorization out, against independent signers.

* botocore (test-only dependency) is the reference implementation every AWS SDK agrees with; it is
  fed realistic SQS JSON 1.0 requests and S3 object requests with awkward keys.
* aws-requests-auth 0.4.3 only signs ``host;x-amz-date(;x-amz-security-token)`` and has known
  canonicalisation bugs, so it is used only on requests it can express correctly.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from taskiq_sqs_http.aws._credentials import Credentials
from taskiq_sqs_http.aws._sigv4 import SigV4Signer, build_query, encode_s3_key

botocore_auth = pytest.importorskip("botocore.auth")
botocore_awsrequest = pytest.importorskip("botocore.awsrequest")
botocore_credentials = pytest.importorskip("botocore.credentials")

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE//////////token+with/slashes=="
NOW = datetime(2024, 2, 29, 23, 59, 58, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _freeze_botocore_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    def frozen(remove_tzinfo: bool = True) -> datetime:
        return NOW.replace(tzinfo=None) if remove_tzinfo else NOW

    monkeypatch.setattr(botocore_auth, "get_current_datetime", frozen)


def _boto_creds(token: str | None) -> Any:
    return botocore_credentials.Credentials(ACCESS_KEY, SECRET_KEY, token)


def _botocore_sign(
    auth_cls: Any,
    service: str,
    region: str,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    token: str | None,
    *,
    payload_signing: bool | None = None,
) -> dict[str, str]:
    request = botocore_awsrequest.AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    if payload_signing is not None:
        request.context["client_config"] = SimpleNamespace(s3={"payload_signing_enabled": payload_signing})
    auth_cls(_boto_creds(token), service, region).add_auth(request)
    return dict(request.headers.items())


# --------------------------------------------------------------------------------------------------
# SQS, JSON 1.0 protocol
# --------------------------------------------------------------------------------------------------

QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/taskiq-queue.fifo"


def _sqs_body(operation: str) -> bytes:
    payloads: dict[str, dict[str, Any]] = {
        "SendMessage": {
            "QueueUrl": QUEUE,
            "MessageBody": '{"task": "caf\u00e9 \u1234", "args": [1, 2]}',
            "MessageGroupId": "g1",
            "MessageDeduplicationId": "d/1+2=3",
            "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}},
        },
        "ReceiveMessage": {
            "QueueUrl": QUEUE,
            "MaxNumberOfMessages": 10,
            "WaitTimeSeconds": 20,
            "MessageSystemAttributeNames": ["All"],
        },
        "DeleteMessage": {"QueueUrl": QUEUE, "ReceiptHandle": "AQEB+abc/def=="},
        "GetQueueUrl": {"QueueName": "taskiq-queue.fifo"},
        "ChangeMessageVisibility": {
            "QueueUrl": QUEUE,
            "ReceiptHandle": "AQEB+abc/def==",
            "VisibilityTimeout": 0,
        },
    }
    return json.dumps(payloads[operation], ensure_ascii=False, separators=(",", ":")).encode()


SQS_ENDPOINTS = [
    ("https://sqs.eu-west-1.amazonaws.com/", "eu-west-1"),
    ("https://sqs.us-east-1.amazonaws.com:443/", "us-east-1"),
    ("http://127.0.0.1:4566/", "us-east-1"),
    ("http://localhost:4566", "eu-central-1"),
    ("https://vpce-0123-abcd.sqs.eu-west-1.vpce.amazonaws.com/", "eu-west-1"),
]


@pytest.mark.parametrize("token", [None, TOKEN], ids=["static", "session-token"])
@pytest.mark.parametrize(("endpoint", "region"), SQS_ENDPOINTS, ids=[e for e, _ in SQS_ENDPOINTS])
@pytest.mark.parametrize(
    "operation",
    ["SendMessage", "ReceiveMessage", "DeleteMessage", "GetQueueUrl", "ChangeMessageVisibility"],
)
def test_sqs_json_matches_botocore(operation: str, endpoint: str, region: str, token: str | None) -> None:
    headers = {
        "X-Amz-Target": f"AmazonSQS.{operation}",
        "Content-Type": "application/x-amz-json-1.0",
        "x-amzn-query-mode": "true",
        "User-Agent": "taskiq-sqs-http/0.1 httpx/0.28",
    }
    body = _sqs_body(operation)
    expected = _botocore_sign(botocore_auth.SigV4Auth, "sqs", region, "POST", endpoint, headers, body, token)
    ours = SigV4Signer(Credentials(ACCESS_KEY, SECRET_KEY, token), region, "sqs").sign(
        "POST", endpoint, headers, body, NOW
    )
    assert ours["Authorization"] == expected["Authorization"]
    assert ours["X-Amz-Date"] == expected["X-Amz-Date"]
    assert ours.get("X-Amz-Security-Token") == expected.get("X-Amz-Security-Token")
    assert "X-Amz-Content-SHA256" not in ours


@pytest.mark.parametrize(
    "path",
    ["/", "/123456789012/q", "/a%20b//c/", "/x/./y/../z", "/%E1%88%B4/~tilde", "/a+b=c"],
)
def test_non_s3_path_rules_match_botocore(path: str) -> None:
    url = f"https://sqs.us-east-1.amazonaws.com{path}?Action=ListQueues&Version=2012-11-05"
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    expected = _botocore_sign(botocore_auth.SigV4Auth, "sqs", "us-east-1", "GET", url, headers, b"", None)
    ours = SigV4Signer(Credentials(ACCESS_KEY, SECRET_KEY), "us-east-1", "sqs").sign(
        "GET", url, headers, b"", NOW
    )
    assert ours["Authorization"] == expected["Authorization"]


# --------------------------------------------------------------------------------------------------
# S3 object requests
# --------------------------------------------------------------------------------------------------

AWKWARD_KEYS = [
    "simple.txt",
    "taskiq/results/0f1e2d3c-4b5a:result",
    "with space/and+plus=equals&amp?query#hash%percent~tilde",
    "unicode/caf\u00e9/\u1234/\U0001f600.bin",
    "a..b/.hidden/a//double",
    "trailing/",
    "!$'()*,;:@[]{}^`|\\\"<>",
]

S3_BASES = [
    ("https://examplebucket.s3.eu-west-1.amazonaws.com/", "eu-west-1"),
    ("https://s3.amazonaws.com/example.bucket/", "us-east-1"),
    ("http://127.0.0.1:4566/bucket/", "us-east-1"),
]


@pytest.mark.parametrize("token", [None, TOKEN], ids=["static", "session-token"])
@pytest.mark.parametrize(("base", "region"), S3_BASES, ids=[b for b, _ in S3_BASES])
@pytest.mark.parametrize("key", AWKWARD_KEYS)
@pytest.mark.parametrize(
    ("method", "body", "extra"),
    [
        ("PUT", b"hello \x00\xff world", {"Content-Type": "application/octet-stream"}),
        ("GET", b"", {"Range": "bytes=0-9", "x-amz-checksum-mode": "ENABLED"}),
        ("HEAD", b"", {}),
        ("DELETE", b"", {}),
    ],
    ids=["PUT", "GET", "HEAD", "DELETE"],
)
def test_s3_object_requests_match_botocore(
    method: str,
    body: bytes,
    extra: dict[str, str],
    key: str,
    base: str,
    region: str,
    token: str | None,
) -> None:
    url = base + encode_s3_key(key)
    headers = {**extra, "User-Agent": "taskiq-sqs-http/0.1", "Expect": "100-continue"}
    expected = _botocore_sign(botocore_auth.S3SigV4Auth, "s3", region, method, url, headers, body, token)
    ours = SigV4Signer(Credentials(ACCESS_KEY, SECRET_KEY, token), region, "s3").sign(
        method, url, headers, body, NOW
    )
    assert ours["Authorization"] == expected["Authorization"]
    assert ours["X-Amz-Content-SHA256"] == expected["X-Amz-Content-SHA256"]
    assert ours.get("X-Amz-Security-Token") == expected.get("X-Amz-Security-Token")


@pytest.mark.parametrize(
    "query",
    [
        [("list-type", "2"), ("prefix", "a b/c+d"), ("delimiter", "/"), ("max-keys", "1000")],
        [("uploads", "")],
        [("partNumber", "3"), ("uploadId", "VXBsb2FkIElE+/=")],
        [("delete", "")],
        [("continuation-token", "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="), ("x", "\u1234")],
    ],
    ids=["list", "uploads", "upload-part", "delete-objects", "continuation"],
)
def test_s3_query_requests_match_botocore(query: list[tuple[str, str]]) -> None:
    url = "https://examplebucket.s3.eu-west-1.amazonaws.com/" + encode_s3_key("k e y") + "?"
    url += build_query(query)
    expected = _botocore_sign(
        botocore_auth.S3SigV4Auth, "s3", "eu-west-1", "POST", url, {}, b"<Delete/>", TOKEN
    )
    ours = SigV4Signer(Credentials(ACCESS_KEY, SECRET_KEY, TOKEN), "eu-west-1", "s3").sign(
        "POST", url, {}, b"<Delete/>", NOW
    )
    assert ours["Authorization"] == expected["Authorization"]


def test_s3_unsigned_payload_matches_botocore() -> None:
    url = "https://examplebucket.s3.eu-west-1.amazonaws.com/" + encode_s3_key("big file.bin")
    expected = _botocore_sign(
        botocore_auth.S3SigV4Auth,
        "s3",
        "eu-west-1",
        "PUT",
        url,
        {},
        b"x" * 1000,
        None,
        payload_signing=False,
    )
    ours = SigV4Signer(Credentials(ACCESS_KEY, SECRET_KEY), "eu-west-1", "s3").sign(
        "PUT", url, {}, b"x" * 1000, NOW, unsigned_payload=True
    )
    assert expected["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    assert ours["Authorization"] == expected["Authorization"]
    assert ours["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"


# --------------------------------------------------------------------------------------------------
# Presigned URLs
# --------------------------------------------------------------------------------------------------


def _botocore_presign(auth_cls: Any, service: str, region: str, url: str, token: str | None) -> str:
    request = botocore_awsrequest.AWSRequest(method="GET", url=url)
    auth_cls(_boto_creds(token), service, region, expires=900).add_auth(request)
    return str(request.url)


def _split_presigned(url: str) -> tuple[str, list[tuple[str, str]]]:
    parts = urlsplit(url)
    return parts.path, sorted(parse_qsl(parts.query, keep_blank_values=True))


@pytest.mark.parametrize("token", [None, TOKEN], ids=["static", "session-token"])
@pytest.mark.parametrize("key", AWKWARD_KEYS)
def test_s3_presign_matches_botocore(key: str, token: str | None) -> None:
    url = "https://examplebucket.s3.eu-west-1.amazonaws.com/" + encode_s3_key(key)
    expected = _botocore_presign(botocore_auth.S3SigV4QueryAuth, "s3", "eu-west-1", url, token)
    ours = SigV4Signer(Credentials(ACCESS_KEY, SECRET_KEY, token), "eu-west-1", "s3").presign_url(
        "GET", url, 900, NOW
    )
    assert _split_presigned(ours) == _split_presigned(expected)


def test_s3_presign_with_existing_query_matches_botocore() -> None:
    url = (
        "https://examplebucket.s3.eu-west-1.amazonaws.com/"
        + encode_s3_key("report 2024.pdf")
        + "?"
        + build_query([("response-content-disposition", 'attachment; filename="r 1.pdf"')])
    )
    expected = _botocore_presign(botocore_auth.S3SigV4QueryAuth, "s3", "eu-west-1", url, TOKEN)
    ours = SigV4Signer(Credentials(ACCESS_KEY, SECRET_KEY, TOKEN), "eu-west-1", "s3").presign_url(
        "GET", url, 900, NOW
    )
    assert _split_presigned(ours) == _split_presigned(expected)


def test_non_s3_presign_matches_botocore() -> None:
    url = "https://sqs.eu-west-1.amazonaws.com/123456789012/q?Action=ReceiveMessage"
    expected = _botocore_presign(botocore_auth.SigV4QueryAuth, "sqs", "eu-west-1", url, TOKEN)
    ours = SigV4Signer(Credentials(ACCESS_KEY, SECRET_KEY, TOKEN), "eu-west-1", "sqs").presign_url(
        "GET", url, 900, NOW
    )
    assert _split_presigned(ours) == _split_presigned(expected)


# --------------------------------------------------------------------------------------------------
# aws-requests-auth, on the requests it can express (only host;x-amz-date[;x-amz-security-token])
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def requests_auth(monkeypatch: pytest.MonkeyPatch) -> Any:
    aws_auth = pytest.importorskip("aws_requests_auth.aws_auth")

    class FrozenDatetime:
        @staticmethod
        def utcnow() -> datetime:
            return NOW.replace(tzinfo=None)

    monkeypatch.setattr(aws_auth, "datetime", SimpleNamespace(datetime=FrozenDatetime))
    return aws_auth


@pytest.mark.parametrize(
    ("method", "url", "host", "body", "token"),
    [
        (
            "GET",
            "https://search-d.eu-west-1.es.amazonaws.com/my-index/_search?q=hello&size=10",
            "search-d.eu-west-1.es.amazonaws.com",
            b"",
            None,
        ),
        (
            "GET",
            "https://sqs.eu-west-1.amazonaws.com/123456789012/q?Action=GetQueueAttributes"
            "&AttributeName.1=All&Version=2012-11-05",
            "sqs.eu-west-1.amazonaws.com",
            b"",
            TOKEN,
        ),
        (
            "POST",
            "https://search-d.eu-west-1.es.amazonaws.com/my-index/_doc/a%20b",
            "search-d.eu-west-1.es.amazonaws.com",
            b'{"field": "value \xc3\xa9"}',
            TOKEN,
        ),
        (
            "GET",
            "http://localhost:9200/_cluster/health?level=indices",
            "localhost:9200",
            b"",
            None,
        ),
    ],
    ids=["es-search", "sqs-query-token", "es-post-encoded-path", "local-port"],
)
def test_matches_aws_requests_auth(
    requests_auth: Any, method: str, url: str, host: str, body: bytes, token: str | None
) -> None:
    service = "sqs" if ".sqs." in url or "//sqs." in url else "es"
    region = "eu-west-1"
    prepared = SimpleNamespace(method=method, url=url, body=body)
    auth = requests_auth.AWSRequestsAuth(ACCESS_KEY, SECRET_KEY, host, region, service, token)
    expected = auth.get_aws_request_headers(prepared, ACCESS_KEY, SECRET_KEY, token)
    ours = SigV4Signer(Credentials(ACCESS_KEY, SECRET_KEY, token), region, service).sign(
        method, url, {}, body, NOW
    )
    assert ours["Authorization"] == expected["Authorization"]
    assert ours["X-Amz-Date"] == expected["x-amz-date"]
    assert ours.get("X-Amz-Security-Token") == expected.get("X-Amz-Security-Token")
