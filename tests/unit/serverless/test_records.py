"""Lambda SQS records to client-layer messages: the exact shape Lambda sends, and what can go wrong."""

from __future__ import annotations

from typing import Any

import pytest

from taskiq_sqs_http.aws import MessageAttributeValue
from taskiq_sqs_http.serverless import LambdaEventError, parse_event

from .support import binary_attribute, event, queue_arn, record, string_attribute


def test_a_documented_record_converts_field_by_field() -> None:
    raw = record(
        '{"x": 1}',
        queue="jobs.fifo",
        receive_count=4,
        group_id="g-1",
        message_attributes={
            "s": string_attribute("v"),
            "n": string_attribute("12.5", "Number"),
            "custom": string_attribute("w", "String.custom"),
            "b": binary_attribute(b"\x00\xff"),
        },
    )
    (parsed,) = parse_event(event(raw))
    message = parsed.message

    assert parsed.problem is None
    assert parsed.source_arn == queue_arn("jobs.fifo")
    assert parsed.queue_name == "jobs.fifo"
    assert parsed.group_id == "g-1"
    assert message.message_id == raw["messageId"]
    assert message.receipt_handle == raw["receiptHandle"]
    assert message.body == '{"x": 1}'
    assert message.md5_of_body == raw["md5OfBody"]
    assert message.receive_count == 4
    assert message.attributes["MessageDeduplicationId"] == raw["attributes"]["MessageDeduplicationId"]
    assert message.message_attributes == {
        "s": MessageAttributeValue("String", string_value="v"),
        "n": MessageAttributeValue("Number", string_value="12.5"),
        "custom": MessageAttributeValue("String.custom", string_value="w"),
        "b": MessageAttributeValue("Binary", binary_value=b"\x00\xff"),
    }


def test_standard_queue_records_have_no_group() -> None:
    (parsed,) = parse_event(event(record("b")))
    assert parsed.group_id is None


def test_api_spelling_of_attributes_is_accepted() -> None:
    raw = record("b", message_attributes={"a": {"DataType": "String", "StringValue": "x"}})
    (parsed,) = parse_event(event(raw))
    assert parsed.message.message_attributes["a"] == MessageAttributeValue("String", string_value="x")


def test_minimal_record_without_optional_fields() -> None:
    raw: dict[str, Any] = {
        "messageId": "m",
        "receiptHandle": "rh",
        "body": "b",
        "eventSourceARN": queue_arn("q"),
    }
    (parsed,) = parse_event({"Records": [raw]})
    assert parsed.problem is None
    assert parsed.message.attributes == {}
    assert parsed.message.message_attributes == {}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"eventSourceARN": "queue"}, "eventSourceARN"),
        ({"receiptHandle": ""}, "receiptHandle"),
        ({"body": None}, "body"),
        ({"attributes": []}, "attributes"),
        ({"messageAttributes": "x"}, "messageAttributes"),
        ({"messageAttributes": {"a": {"dataType": "Binary", "binaryValue": "***"}}}, "base64"),
        ({"messageAttributes": {"a": {"stringValue": "x"}}}, "dataType"),
        ({"messageAttributes": {"a": {"dataType": "String", "stringValue": 5}}}, "stringValue"),
        ({"messageAttributes": {"a": "x"}}, "not an object"),
    ],
)
def test_broken_fields_make_a_reportable_problem(change: dict[str, Any], problem: str) -> None:
    raw = record("b")
    raw.update(change)
    (parsed,) = parse_event(event(raw))
    assert parsed.problem is not None and problem in parsed.problem
    assert parsed.message_id == raw["messageId"]


@pytest.mark.parametrize(
    ("bad_event", "message"),
    [
        ([], "JSON object"),
        ({}, "Records"),
        ({"Records": {}}, "Records"),
        ({"Records": ["x"]}, r"Records\[0\] is not an object"),
        ({"Records": [{"messageId": ""}]}, "messageId"),
        ({"Records": [{"messageId": "m", "eventSource": "aws:sns"}]}, "aws:sns"),
    ],
)
def test_events_that_cannot_be_answered_record_by_record(bad_event: object, message: str) -> None:
    with pytest.raises(LambdaEventError, match=message):
        parse_event(bad_event)
