"""Constructor and SQSQueue validation: 2.1.1's defaults, ranges and error classes, clearer messages."""

from __future__ import annotations

import pytest

from taskiq_sqs_http import (
    BrokerConfigError,
    BrokerFloatConfigError,
    BrokerInputConfigError,
    SQSBroker,
    SQSQueue,
)


def test_broker_defaults_match_aiosqs() -> None:
    """Defaults are 2.1.1's; the region is resolved (AWS_REGION here), not hard-coded."""
    broker = SQSBroker("q")
    assert broker.wait_time_seconds == 10
    assert broker.max_number_of_messages == 1
    assert broker.visibility_timeout is None
    assert broker.delay_seconds == 0
    assert broker.use_task_id_for_deduplication is False
    assert broker.s3_extended_bucket_name is None
    assert broker.default_queue == SQSQueue(name="q", max_number_of_messages=1, wait_time_seconds=10)


def test_region_defaults_to_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    assert SQSBroker("q").region_name == "eu-west-3"
    assert SQSBroker("q", region_name="ap-south-1").region_name == "ap-south-1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_number_of_messages": 15}, "'MaxNumberOfMessages' must be between 1 and 10, got 15"),
        ({"max_number_of_messages": 0}, "'MaxNumberOfMessages' must be between 1 and 10, got 0"),
        ({"delay_seconds": 999}, "'DelaySeconds' must be between 0 and 900, got 999"),
        ({"wait_time_seconds": 21}, "'WaitTimeSeconds' must be between 0 and 20, got 21"),
        ({"visibility_timeout": 43201}, "'VisibilityTimeout' must be between 0 and 43200, got 43201"),
        ({"batch_size": 15}, "'BatchSize' must be between 1 and 10, got 15"),
        ({"batch_size": 0}, "'BatchSize' must be between 1 and 10, got 0"),
        ({"max_delay_seconds": 901}, "'max_delay_seconds' must be between 0 and 900, got 901"),
    ],
)
def test_out_of_range_numbers_name_parameter_value_and_range(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(BrokerInputConfigError) as info:
        SQSBroker("q", **kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message
    assert isinstance(info.value, BrokerConfigError)
    assert isinstance(info.value, ValueError)


def test_batch_timeout_minimum() -> None:
    with pytest.raises(BrokerFloatConfigError, match=r"'BatchTimeout' must be at least 0\.1, got 0\.05"):
        SQSBroker("q", batch_timeout=0.05)


def test_lax_numbers_are_accepted_like_pydantic() -> None:
    broker = SQSBroker("q", max_number_of_messages="5", wait_time_seconds=3.0)  # type: ignore[arg-type]
    assert broker.max_number_of_messages == 5
    assert broker.wait_time_seconds == 3


@pytest.mark.parametrize("interval", [0, -1])
def test_heartbeat_interval_must_be_positive(interval: float) -> None:
    with pytest.raises(BrokerConfigError, match="'heartbeat_interval' must be greater than 0"):
        SQSBroker("q", enable_heartbeat=True, heartbeat_interval=interval)


def test_heartbeat_max_extensions_at_least_one() -> None:
    with pytest.raises(BrokerConfigError, match="'heartbeat_max_extensions' must be at least 1, got 0"):
        SQSBroker("q", heartbeat_max_extensions=0)


def test_heartbeat_interval_must_be_below_visibility_timeout() -> None:
    with pytest.raises(BrokerConfigError, match=r"below the visibility timeout .*\(10 s\), got 10"):
        SQSBroker("q", visibility_timeout=10, enable_heartbeat=True, heartbeat_interval=10)
    with pytest.raises(BrokerConfigError, match="above 0"):
        SQSBroker("q", visibility_timeout=0, enable_heartbeat=True)


def test_heartbeat_without_visibility_timeout_is_allowed() -> None:
    SQSBroker("q", enable_heartbeat=True)
    SQSBroker("q", enable_heartbeat=True).with_queues(SQSQueue(name="other"))


def test_fifo_default_queue_with_broker_delay_is_an_error() -> None:
    with pytest.raises(BrokerConfigError, match=r"delay_seconds is 5 but queue 'q.fifo' is FIFO"):
        SQSBroker("q.fifo", delay_seconds=5)


def test_fifo_is_detected_by_suffix_not_substring() -> None:
    assert SQSBroker("jobs.fifo").default_queue.is_fifo
    assert not SQSBroker("a.fifo-b").default_queue.is_fifo
    assert SQSQueue(name="z.fifo").is_fifo


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_number_of_messages": 0}, "'max_number_of_messages' must be between 1 and 10, got 0"),
        ({"max_number_of_messages": 11}, "'max_number_of_messages' must be between 1 and 10, got 11"),
        ({"wait_time_seconds": 21}, "'wait_time_seconds' must be between 0 and 20, got 21"),
        ({"visibility_timeout": -1}, "'visibility_timeout' must be between 0 and 43200, got -1"),
        ({"max_receive_count": 0}, "'max_receive_count' must be between 1 and 1000, got 0"),
    ],
)
def test_sqs_queue_validation_is_a_value_error(kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SQSQueue(name="q", **kwargs)  # type: ignore[arg-type]


def test_sqs_queue_boundaries_and_identity() -> None:
    for n in (1, 10):
        SQSQueue(name="q", max_number_of_messages=n)
    for w in (0, 20):
        SQSQueue(name="q", wait_time_seconds=w)
    queue = SQSQueue(name="q")
    assert str(queue) == "q"
    assert hash(queue) == hash("q")
    with pytest.raises(AttributeError):
        queue.name = "x"  # type: ignore[misc]


def test_sqs_queue_by_url_and_owner() -> None:
    queue = SQSQueue(name="https://sqs.eu-west-1.amazonaws.com/123456789012/jobs.fifo")
    assert queue.name == "jobs.fifo"
    assert queue.url == "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs.fifo"
    assert queue.is_fifo
    assert not queue.creatable()
    with pytest.raises(BrokerConfigError, match="12 digits"):
        SQSQueue(name="jobs", owner_account_id="12")
    with pytest.raises(BrokerConfigError, match="does not match"):
        SQSQueue(name="jobs", url="https://sqs.x/123456789012/other")
    with pytest.raises(BrokerConfigError, match=r"end in '\.fifo'"):
        SQSQueue(name="jobs", is_fifo=True)
    with pytest.raises(BrokerConfigError, match="must be a FIFO queue"):
        SQSQueue(name="jobs.fifo", dead_letter_queue="dlq")


def test_with_default_queue_replaces_and_copies_settings() -> None:
    broker = SQSBroker("old")
    new = SQSQueue(name="new", max_number_of_messages=4, wait_time_seconds=2, visibility_timeout=9)
    broker.with_default_queue(new)
    assert broker.default_queue is new
    assert list(broker.queues) == ["new"]
    assert (broker.max_number_of_messages, broker.wait_time_seconds, broker.visibility_timeout) == (4, 2, 9)


def test_encryption_configuration_errors() -> None:
    with pytest.raises(BrokerConfigError, match="allowed values"):
        SQSBroker("q", server_side_encryption="rot13")
    with pytest.raises(BrokerConfigError, match="kms_key_id"):
        SQSBroker("q", server_side_encryption="AES256", sse_kms_key_id="k")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"redelivery_delay": -1}, "redelivery_delay"),
        ({"redelivery_delay": 43201}, "redelivery_delay"),
        ({"ack_batch_linger": 0.5}, r"'ack_batch_linger' is 0.5; allowed range is 0.0..0.05"),
        ({"shutdown_timeout": 0}, r"'shutdown_timeout' is 0; allowed range is 0.1..3600.0"),
        ({"extended_payload_format": "xml"}, "extended_payload_format is 'xml'"),
        ({"extended_payload_threshold": 0}, "extended_payload_threshold is 0"),
        ({"extended_payload_threshold": 2_000_000}, "extended_payload_threshold is 2000000"),
    ],
)
def test_batching_and_payload_options_are_validated(kwargs: dict[str, object], match: str) -> None:
    """Options added for batching, payloads and redelivery fail at construction, naming value and range."""
    with pytest.raises(BrokerConfigError, match=match):
        SQSBroker("q", **kwargs)  # type: ignore[arg-type]


def test_recent_set_forgets_oldest() -> None:
    """The failed-task memory is bounded."""
    from taskiq_sqs_http.broker._lifecycle import RecentSet

    recent = RecentSet(limit=3)
    for item in "abcd":
        recent.add(item)
    assert "a" not in recent and "d" in recent and len(recent) == 3
    recent.discard("d")
    assert "d" not in recent


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"endpoint_url": "not a url"}, ("endpoint_url", "not a url")),
        ({"endpoint_url": "ftp://host"}, ("endpoint_url",)),
        ({"region_name": "Bad Region"}, ("region_name", "Bad Region")),
        ({"aws_access_key_id": "AKIDEXAMPLE"}, ("aws_secret_access_key",)),
        ({"aws_secret_access_key": "shh-secret"}, ("aws_access_key_id",)),
        (
            {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": 123},
            ("aws_secret_access_key", "int"),
        ),
        ({"s3_extended_bucket_name": 123}, ("s3_extended_bucket_name", "123")),
        ({"s3_extended_bucket_name": ""}, ("s3_extended_bucket_name",)),
        ({"s3_extended_bucket_name": "bad/bucket"}, ("s3_extended_bucket_name", "bad/bucket")),
        ({"max_buffered_messages": 0}, ("max_buffered_messages",)),
        ({"send_buffer_timeout": -1}, ("send_buffer_timeout",)),
    ],
)
def test_client_and_bucket_arguments_are_checked_at_construction(
    kwargs: dict[str, object], names: tuple[str, ...]
) -> None:
    """These used to fail only at startup() or at the first large kick, some with a TypeError."""
    with pytest.raises(BrokerConfigError) as caught:
        SQSBroker("tasks", **kwargs)  # type: ignore[arg-type]
    for name in names:
        assert name in str(caught.value)
    assert "shh-secret" not in str(caught.value)


def test_secrets_live_only_inside_the_credentials_object() -> None:
    """Error reporters that capture local variables send ``vars(broker)`` away."""
    broker = SQSBroker(
        "tasks",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="s3cr3t-v4lue",
        aws_session_token="t0k3n",
    )

    def walk(value: object, depth: int = 0) -> str:
        if depth > 3:
            return ""
        if isinstance(value, dict):
            return " ".join(f"{k!r} {walk(v, depth + 1)}" for k, v in value.items())  # type: ignore[misc]
        return repr(value)

    shown = walk(vars(broker)) + str(broker.client_options) + repr(broker.client_options)
    assert "s3cr3t-v4lue" not in shown and "t0k3n" not in shown
