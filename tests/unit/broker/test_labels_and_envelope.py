"""Label parsing and the wire format, without any network."""

from __future__ import annotations

import base64
import json

import pytest
from taskiq import TaskiqMessage
from taskiq.brokers.inmemory_broker import InMemoryBroker
from taskiq.formatters.proxy_formatter import ProxyFormatter

from taskiq_sqs_http import IntTaskLabelConfigError, SQSMessageMetadata, StrTaskLabelConfigError
from taskiq_sqs_http.aws import MessageAttributeValue
from taskiq_sqs_http.broker._envelope import (
    MalformedMessageError,
    MetadataUnwrappingFormatter,
    decode_body,
    encode_body,
    encode_envelope,
    not_before,
    try_decode_envelope,
)
from taskiq_sqs_http.broker._labels import label_bool, parse_delay, parse_group_id, retry_count


@pytest.mark.parametrize("value", ["False", "false", "0", "", " no ", False, 0, None])
def test_label_bool_false_strings(value: object) -> None:
    assert label_bool(value) is False


@pytest.mark.parametrize("value", ["True", "true", "1", "yes", True, 1])
def test_label_bool_true(value: object) -> None:
    assert label_bool(value) is True


def test_parse_delay() -> None:
    assert parse_delay("5") == 5
    assert parse_delay("2.5") == 2.5
    assert parse_delay(None) == 0
    assert parse_delay("0") == 0
    assert parse_delay(3600) == 3600


@pytest.mark.parametrize("raw", ["not-an-integer", "-1", -0.5, "nan", "inf", True, "True"])
def test_bad_delays_are_clear_errors(raw: object) -> None:
    with pytest.raises(IntTaskLabelConfigError, match="must be between 0 and"):
        parse_delay(raw)


def test_a_bad_delay_label_names_the_range_really_accepted() -> None:
    """2.1.1 said "between 0 and 900", but delays up to 14 days are accepted (hidden until due)."""
    with pytest.raises(IntTaskLabelConfigError) as info:
        parse_delay("not-an-integer")
    assert str(info.value) == "'delay' must be between 0 and 1209600, got not-an-integer"


def test_group_id_validation() -> None:
    assert parse_group_id("tasks:add") == "tasks:add"
    with pytest.raises(StrTaskLabelConfigError) as info:
        parse_group_id("a" * 129)
    assert str(info.value).startswith("'MessageGroupId' must be 1-128 characters long, got aaa")
    with pytest.raises(StrTaskLabelConfigError):
        parse_group_id("has space")


def test_retry_count() -> None:
    assert retry_count({}) == 0
    assert retry_count({"_retries": "2"}) == 2
    assert retry_count({"_retries": "x"}) == 0


def test_text_bodies_are_verbatim() -> None:
    body, attributes = encode_body('{"a": "caf\u00e9"}'.encode())
    assert body == '{"a": "caf\u00e9"}'
    assert attributes == {}
    assert decode_body(body, attributes) == '{"a": "caf\u00e9"}'.encode()


@pytest.mark.parametrize("payload", [b"\xff\x00\x81", b"ok\x00nul", b"\x1b[0m"])
def test_non_text_bodies_are_base64_with_an_attribute(payload: bytes) -> None:
    body, attributes = encode_body(payload)
    assert base64.b64decode(body) == payload
    assert attributes["taskiq_body_encoding"].string_value == "base64"
    assert decode_body(body, attributes) == payload


def test_bad_base64_and_unknown_encodings_are_malformed() -> None:
    with pytest.raises(MalformedMessageError):
        decode_body("!!!", {"taskiq_body_encoding": MessageAttributeValue.string("base64")})
    with pytest.raises(MalformedMessageError):
        decode_body("x", {"taskiq_body_encoding": MessageAttributeValue.string("zstd")})


def test_not_before_attribute() -> None:
    assert not_before({}) is None
    assert not_before({"taskiq_not_before": MessageAttributeValue.number("12.5")}) == 12.5
    with pytest.raises(MalformedMessageError):
        not_before({"taskiq_not_before": MessageAttributeValue.string("soon")})


def test_metadata_as_labels_and_envelope_round_trip() -> None:
    full = SQSMessageMetadata("rh", "url", "mid", 3)
    assert full.as_labels() == {
        "sqs_receipt_handle": "rh",
        "sqs_queue_url": "url",
        "sqs_message_id": "mid",
        "sqs_approximate_receive_count": "3",
    }
    assert SQSMessageMetadata("rh", "url").as_labels() == {"sqs_receipt_handle": "rh", "sqs_queue_url": "url"}
    wrapped = encode_envelope(full, b"\x00payload")
    assert try_decode_envelope(wrapped) == (full.as_labels(), b"\x00payload")


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[1]",
        b'{"__taskiq_aio_sqs_metadata__": [], "__taskiq_aio_sqs_body__": ""}',
        b'{"__taskiq_aio_sqs_metadata__": {}, "__taskiq_aio_sqs_body__": 1}',
        b'{"__taskiq_aio_sqs_metadata__": {}, "__taskiq_aio_sqs_body__": "***"}',
    ],
)
def test_non_envelopes_decode_to_none(data: bytes) -> None:
    assert try_decode_envelope(data) is None


def test_unwrapping_formatter_merges_labels() -> None:
    broker = InMemoryBroker()
    formatter = MetadataUnwrappingFormatter(ProxyFormatter(broker))
    message = TaskiqMessage(task_id="t", task_name="n", labels={"a": "1"}, args=[], kwargs={})
    dumped = formatter.dumps(message)
    assert json.loads(dumped.message)["task_id"] == "t"
    assert formatter.loads(dumped.message).labels == {"a": "1"}
    wrapped = encode_envelope(SQSMessageMetadata("rh", "url"), dumped.message)
    assert formatter.loads(wrapped).labels == {"a": "1", "sqs_receipt_handle": "rh", "sqs_queue_url": "url"}
