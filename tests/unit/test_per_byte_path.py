"""The per-byte work of one send, counted: a regression here is a copy, encode or hash of the whole body.

Timings are noisy and belong in benchmarks (scripts/bench_bytes.py); counts are exact. Every call that
touches an object at least half the payload's size is recorded: methods called on such a str or bytes
(seen through ``sys.setprofile``'s ``c_call`` events, so ``.encode()``, ``.decode()``, ``.translate()``
and the like are caught wherever they happen), plus the JSON encoder, the hashes and base64, patched.

The budget for one unbatched send of a text body (issue 13): the formatter's one ``str.encode`` (taskiq's,
not ours), one UTF-8 decode to the body text, one JSON escape, one SHA-256 for the signature. Nothing
else may pass over the body: no size measured by encoding, no second hash on a retry-free send, no MD5.
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import httpx
import orjson
import pytest

from taskiq_sqs_http import SQSBroker
from taskiq_sqs_http.aws import Credentials, RetryPolicy, SQSClient
from taskiq_sqs_http.aws.sqs._models import SendMessageEntry, utf8_size
from taskiq_sqs_http.aws.sqs._wire import sqs_text
from taskiq_sqs_http.broker._envelope import (
    BODY_ENCODING_ATTRIBUTE,
    encode_body,
)

ENDPOINT = "http://sqs.test"
QUEUE_URL = f"{ENDPOINT}/123456789012/q"
PAYLOAD_KB = 256
# Not counted: methods that cost O(1) whatever the length (CPython keeps "is ASCII" in the string's
# header), and the body check's memchr searches, which read but neither copy nor transform (their cost is
# bounded by the chunked scan in `sqs_text`, and skipped altogether for taskiq's default formatter).
_NOT_COUNTED = frozenset({"str.isascii", "bytes.find"})


def payload_text(size: int) -> str:
    unit = 'The quick brown fox jumps over the "lazy" dog 0123456789. '
    return (unit * (size // len(unit) + 1))[:size]


class PerByteWork:
    """Counts calls that touch an object of at least ``threshold`` bytes or characters."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, threshold: int) -> None:
        self.threshold = threshold
        self.counts: Counter[str] = Counter()
        self._wrap(monkeypatch, orjson, "dumps", "orjson.dumps", by_result=True)
        for name in ("sha256", "md5", "sha1"):
            self._wrap(monkeypatch, hashlib, name, f"hashlib.{name}")
        for name in ("b64encode", "b64decode"):
            self._wrap(monkeypatch, base64, name, f"base64.{name}")

    def _large(self, value: object) -> bool:
        return isinstance(value, (str, bytes, bytearray)) and len(value) >= self.threshold

    def _wrap(
        self, monkeypatch: pytest.MonkeyPatch, module: Any, attr: str, label: str, by_result: bool = False
    ) -> None:
        original: Callable[..., Any] = getattr(module, attr)

        def counting(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            if any(self._large(a) for a in args) or (by_result and self._large(result)):
                self.counts[label] += 1
            return result

        monkeypatch.setattr(module, attr, counting)

    def _profile(self, frame: FrameType, event: str, arg: Any) -> None:
        del frame
        if event != "c_call":
            return
        owner = getattr(arg, "__self__", None)
        if self._large(owner):
            name = f"{type(owner).__name__}.{getattr(arg, '__name__', '?')}"
            if name not in _NOT_COUNTED:
                self.counts[name] += 1

    @contextmanager
    def watching(self) -> Generator[Counter[str], None, None]:
        previous = sys.getprofile()
        sys.setprofile(self._profile)
        try:
            yield self.counts
        finally:
            sys.setprofile(previous)


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> PerByteWork:
    return PerByteWork(monkeypatch, threshold=PAYLOAD_KB * 1024 // 2)


def _sqs_handler(request: httpx.Request) -> httpx.Response:
    """Answers without reading the body, so the server's work is not counted."""
    action = request.headers["x-amz-target"].rpartition(".")[2]
    if action == "GetQueueUrl":
        return httpx.Response(200, json={"QueueUrl": QUEUE_URL})
    if action == "GetQueueAttributes":
        return httpx.Response(200, json={"Attributes": {"VisibilityTimeout": "30"}})
    return httpx.Response(200, json={"MessageId": "m-1"})


async def test_one_kiq_of_a_large_text_task_passes_over_its_body_the_budgeted_times(
    work: PerByteWork,
) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(_sqs_handler)) as client:
        broker = SQSBroker(
            "q",
            endpoint_url=ENDPOINT,
            region_name="us-east-1",
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="secret",
            http_client=client,
            retry_policy=RetryPolicy.testing(),
        )

        @broker.task(task_name="tests:large")
        async def large(data: str) -> None:
            del data

        await broker.startup()
        try:
            text = payload_text(PAYLOAD_KB * 1024)
            await large.kiq(text)  # warm: first-use imports and caches are not per-byte work
            work.counts.clear()
            with work.watching() as counts:
                await large.kiq(text)
        finally:
            await broker.shutdown()
    assert dict(counts) == {
        "str.encode": 1,  # taskiq's formatter: json.dumps(...).encode()
        "bytes.decode": 1,  # ours: the payload as body text
        "orjson.dumps": 1,  # the one JSON escape, into the SendMessage request
        "hashlib.sha256": 1,  # the payload hash SigV4 signs
    }


async def test_a_batch_of_large_tasks_passes_over_each_body_the_budgeted_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Batched: per task one encode (taskiq) and one decode; per SendMessageBatch one escape and one hash."""
    work = PerByteWork(monkeypatch, threshold=64 * 1024)
    async with httpx.AsyncClient(transport=httpx.MockTransport(_sqs_batch_handler)) as client:
        broker = SQSBroker(
            "q",
            endpoint_url=ENDPOINT,
            region_name="us-east-1",
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="secret",
            http_client=client,
            retry_policy=RetryPolicy.testing(),
            enable_batching=True,
            batch_size=2,
            batch_timeout=30.0,
        )

        @broker.task(task_name="tests:large")
        async def large(data: str) -> None:
            del data

        await broker.startup()
        text = payload_text(128 * 1024)
        with work.watching() as counts:
            await large.kiq(text)
            await large.kiq(text)
            await broker.shutdown()
    assert dict(counts) == {
        "str.encode": 2,
        "bytes.decode": 2,
        "orjson.dumps": 1,
        "hashlib.sha256": 1,
    }


def _sqs_batch_handler(request: httpx.Request) -> httpx.Response:
    action = request.headers["x-amz-target"].rpartition(".")[2]
    if action == "SendMessageBatch":
        ids = [entry["Id"] for entry in orjson.loads(request.content)["Entries"]]
        return httpx.Response(200, json={"Successful": [{"Id": i, "MessageId": i} for i in ids]})
    return _sqs_handler(request)


async def test_one_send_message_hashes_and_escapes_the_body_once_and_copies_it_never(
    work: PerByteWork,
) -> None:
    sqs = SQSClient(
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        credentials=Credentials("AKIDEXAMPLE", "secret"),
        transport=httpx.MockTransport(_sqs_handler),
    )
    async with sqs:
        body = payload_text(PAYLOAD_KB * 1024)
        await sqs.send_message(QUEUE_URL, body)
        work.counts.clear()
        with work.watching() as counts:
            await sqs.send_message(QUEUE_URL, body)
    assert dict(counts) == {"orjson.dumps": 1, "hashlib.sha256": 1}


async def test_a_retried_send_hashes_its_body_once() -> None:
    """The payload hash is computed per request, not per attempt."""
    attempts = 0

    def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            return httpx.Response(500, json={"__type": "InternalError", "message": "try again"})
        return httpx.Response(200, json={"MessageId": "m-1"})

    hashed: list[int] = []
    original = hashlib.sha256

    def counting(data: bytes = b"", **kwargs: Any) -> Any:
        if len(data) > 4096:
            hashed.append(len(data))
        return original(data, **kwargs)

    sqs = SQSClient(
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        credentials=Credentials("AKIDEXAMPLE", "secret"),
        transport=httpx.MockTransport(flaky),
        retry_policy=RetryPolicy.testing(),
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hashlib, "sha256", counting)
        async with sqs:
            await sqs.send_message(QUEUE_URL, payload_text(64 * 1024))
    assert attempts == 2
    assert len(hashed) == 1


# -- the body check that replaced a regex over every character ------------------------------------------
# What SQS accepts (XML 1.0 Char): the old implementation, kept here as the oracle.
_SQS_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _oracle(payload: bytes) -> str | None:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if _SQS_CHARS.search(text) else text


def _interesting_code_points() -> Iterator[int]:
    yield from range(0x0, 0x800)
    for edge in (0xD7FF, 0xE000, 0xFFFD, 0xFFFE, 0xFFFF, 0x10000, 0x10FFFF):
        yield from range(max(edge - 2, 0), min(edge + 3, 0x110000))
    yield from range(0x800, 0x110000, 997)  # a spread of everything else


@pytest.mark.parametrize("padding", [0, 8192], ids=["short", "long"])
def test_sqs_text_accepts_and_refuses_exactly_what_sqs_does(padding: int) -> None:
    """Short bodies take the translate path, long ones the memchr path; both agree with the XML rule."""
    pad = b"a" * padding
    for code_point in _interesting_code_points():
        if 0xD800 <= code_point <= 0xDFFF:
            raw = chr(code_point).encode("utf-8", "surrogatepass")  # invalid UTF-8: never text
        else:
            raw = chr(code_point).encode()
        for payload in (pad + raw, raw + pad):
            assert sqs_text(payload) == _oracle(payload), hex(code_point)


@pytest.mark.parametrize(
    "payload",
    [b"", b"plain", b'{"a": "caf\xc3\xa9"}', b"\x80\x81", b"tab\tnew\nline\r", b"nul\x00", b"\xef\xbf\xbe"],
)
def test_sqs_text_on_everyday_payloads(payload: bytes) -> None:
    assert sqs_text(payload) == _oracle(payload)
    assert sqs_text(payload * 2000) == _oracle(payload * 2000)


def test_encode_body_keeps_text_verbatim_and_base64s_the_rest() -> None:
    text = payload_text(10_000).encode()
    assert encode_body(text) == (text.decode(), {})
    body, attributes = encode_body(text + b"\x01")
    assert base64.b64decode(body) == text + b"\x01"
    assert BODY_ENCODING_ATTRIBUTE in attributes


@pytest.mark.parametrize("text", ["", "ascii only", "caf\u00e9", "\u4e2d\u6587", "\U0001f600", "x" * 5000])
def test_wire_size_counts_utf8_bytes(text: str) -> None:
    assert utf8_size(text) == len(text.encode())
    assert SendMessageEntry("1", text).wire_size() == len(text.encode())
