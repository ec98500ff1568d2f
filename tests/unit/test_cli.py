"""The operator CLI without an emulator: argument checks, output, app paths, and the redrive move-task path.

The move-task path cannot run on MiniStack (it has no StartMessageMoveTask), so it is driven here through
a mocked SQS endpoint; the receive/send/delete path and every command end to end are in
tests/integration/test_cli.py.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from taskiq_sqs_http.aws import Credentials, Message, MessageAttributeValue, RetryPolicy
from taskiq_sqs_http.cli import _peek, _redrive, main
from taskiq_sqs_http.cli._context import (
    CLIError,
    Operator,
    QueueRef,
    client_options,
    load_broker,
    queue_name_from_arn,
)
from taskiq_sqs_http.cli._output import preview, render_table
from taskiq_sqs_http.cli._stats import redrive_policy

ENDPOINT = "https://sqs.test"
DLQ = QueueRef("jobs-dlq", f"{ENDPOINT}/123456789012/jobs-dlq")
JOBS = QueueRef("jobs", f"{ENDPOINT}/123456789012/jobs")
Handler = Callable[[str, dict[str, Any]], httpx.Response]


def ok(data: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, content=orjson.dumps(data))


def sqs_error(code: str, status: int = 400) -> httpx.Response:
    return httpx.Response(
        status, content=orjson.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": f"{code} here"})
    )


class FakeSQS:
    """Answers by action; records (action, body) of every request."""

    def __init__(self, answer: Handler) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._answer = answer

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        action = request.headers["x-amz-target"].split(".", 1)[1]
        body: dict[str, Any] = orjson.loads(request.content)
        self.calls.append((action, body))
        return self._answer(action, body)

    def actions(self) -> list[str]:
        return [a for a, _ in self.calls]


def operator(fake: FakeSQS) -> Operator:
    return Operator(
        {
            "region_name": "eu-west-1",
            "endpoint_url": ENDPOINT,
            "credentials": Credentials("AKIDEXAMPLE", "secret-not-shown"),
            "retry_policy": RetryPolicy.testing(),
        },
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(fake)),
    )


def arn(name: str) -> str:
    return f"arn:aws:sqs:eu-west-1:123456789012:{name}"


# -- redrive through StartMessageMoveTask ---------------------------------------------------------------


async def test_redrive_uses_a_move_task_and_waits_for_its_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_redrive, "_POLL_INTERVAL", 0.0)
    polls = iter(["RUNNING", "COMPLETED"])

    def answer(action: str, body: dict[str, Any]) -> httpx.Response:
        if action == "GetQueueAttributes":
            return ok({"Attributes": {"QueueArn": arn(body["QueueUrl"].rsplit("/", 1)[-1])}})
        if action == "StartMessageMoveTask":
            return ok({"TaskHandle": "h-1"})
        status = next(polls)
        return ok(
            {
                "Results": [
                    {
                        "TaskHandle": "h-1",
                        "Status": status,
                        "ApproximateNumberOfMessagesMoved": 3 if status == "COMPLETED" else 1,
                    }
                ]
            }
        )

    fake = FakeSQS(answer)
    async with operator(fake) as op:
        result = await _redrive.redrive(op, DLQ, to=JOBS, limit=None, method="auto", wait=True, timeout=30)
    assert (result.method, result.status, result.moved, result.task_handle) == (
        "move-task",
        "COMPLETED",
        3,
        "h-1",
    )
    assert result.destinations == {"jobs": 3}
    start = dict(fake.calls)["StartMessageMoveTask"]
    assert start == {"SourceArn": arn("jobs-dlq"), "DestinationArn": arn("jobs")}
    assert fake.actions().count("ListMessageMoveTasks") == 2


async def test_redrive_without_to_lets_sqs_pick_each_source() -> None:
    def answer(action: str, body: dict[str, Any]) -> httpx.Response:
        if action == "GetQueueAttributes":
            return ok({"Attributes": {"QueueArn": arn("jobs-dlq")}})
        if action == "StartMessageMoveTask":
            return ok({"TaskHandle": "h-2"})
        return ok(
            {"Results": [{"TaskHandle": "h-2", "Status": "RUNNING", "ApproximateNumberOfMessagesMoved": 0}]}
        )

    fake = FakeSQS(answer)
    async with operator(fake) as op:
        result = await _redrive.redrive(op, DLQ, to=None, limit=None, method="auto", wait=False, timeout=30)
    assert dict(fake.calls)["StartMessageMoveTask"] == {"SourceArn": arn("jobs-dlq")}
    assert (result.status, result.moved) == ("RUNNING", 0)


@pytest.mark.parametrize("code", ["InvalidAction", "UnsupportedOperation", "UnknownOperationException"])
async def test_redrive_falls_back_to_receive_send_delete_where_unsupported(code: str) -> None:
    def answer(action: str, body: dict[str, Any]) -> httpx.Response:
        if action == "GetQueueAttributes":
            return ok({"Attributes": {"QueueArn": arn("jobs-dlq")}})
        if action == "StartMessageMoveTask":
            return sqs_error(code)
        return ok({"Messages": []})

    fake = FakeSQS(answer)
    async with operator(fake) as op:
        result = await _redrive.redrive(op, DLQ, to=None, limit=None, method="auto", wait=True, timeout=30)
    assert result.method == "receive-send-delete"
    assert fake.actions()[-1] == "ReceiveMessage"


async def test_redrive_other_errors_are_not_mistaken_for_unsupported() -> None:
    from taskiq_sqs_http.aws import ServiceError

    def answer(action: str, body: dict[str, Any]) -> httpx.Response:
        if action == "GetQueueAttributes":
            return ok({"Attributes": {"QueueArn": arn("jobs-dlq")}})
        return sqs_error("AccessDenied", 403)

    async with operator(FakeSQS(answer)) as op:
        with pytest.raises(ServiceError, match="AccessDenied"):
            await _redrive.redrive(op, DLQ, to=None, limit=None, method="auto", wait=True, timeout=30)


async def test_redrive_with_max_never_starts_a_move_task() -> None:
    def answer(action: str, body: dict[str, Any]) -> httpx.Response:
        return ok({"Messages": []})

    fake = FakeSQS(answer)
    async with operator(fake) as op:
        result = await _redrive.redrive(op, DLQ, to=JOBS, limit=5, method="auto", wait=True, timeout=30)
    assert result.method == "receive-send-delete"
    assert "StartMessageMoveTask" not in fake.actions()


async def test_manual_redrive_deletes_only_what_was_sent() -> None:
    """A message the destination refused stays in the DLQ (handed back); the others are deleted."""
    received = iter(
        [
            {
                "Messages": [
                    {"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": f"b{i}", "Attributes": {}}
                    for i in range(2)
                ]
            },
            {"Messages": []},
        ]
    )

    def answer(action: str, body: dict[str, Any]) -> httpx.Response:
        if action == "ReceiveMessage":
            return ok(next(received))
        if action == "GetQueueAttributes":
            return ok({"Attributes": {"FifoQueue": "false"}})
        if action == "SendMessageBatch":
            return ok(
                {
                    "Successful": [{"Id": "0", "MessageId": "n0", "MD5OfMessageBody": "x"}],
                    "Failed": [{"Id": "1", "Code": "InternalError", "Message": "boom", "SenderFault": False}],
                }
            )
        if action == "DeleteMessageBatch":
            return ok({"Successful": [{"Id": e["Id"]} for e in body["Entries"]], "Failed": []})
        return ok({"Successful": [{"Id": e["Id"]} for e in body["Entries"]], "Failed": []})

    fake = FakeSQS(answer)
    async with operator(fake) as op:
        result = await _redrive.redrive(op, DLQ, to=JOBS, limit=None, method="manual", wait=True, timeout=30)
    assert (result.moved, result.failed) == (1, 1)
    calls = dict(fake.calls)
    assert [e["ReceiptHandle"] for e in calls["DeleteMessageBatch"]["Entries"]] == ["r0"]
    assert [e["ReceiptHandle"] for e in calls["ChangeMessageVisibilityBatch"]["Entries"]] == ["r1"]
    assert calls["ChangeMessageVisibilityBatch"]["Entries"][0]["VisibilityTimeout"] == 0


def test_recent_fifo_messages_are_not_resent() -> None:
    now = 1_000_000.0

    def message(sent: float, **attributes: str) -> Message:
        return Message("m", "r", "b", attributes={"SentTimestamp": str(int(sent * 1000)), **attributes})

    dedup = {"MessageDeduplicationId": "d"}
    assert _redrive._recently_deduplicated(message(now - 10, **dedup), True, now)
    assert not _redrive._recently_deduplicated(message(now - 301, **dedup), True, now)
    assert not _redrive._recently_deduplicated(message(now - 10, **dedup), False, now)
    assert not _redrive._recently_deduplicated(message(now - 10), True, now)


def test_resent_entry_keeps_body_attributes_and_ids() -> None:
    attributes = {"k": MessageAttributeValue.string("v")}
    message = Message(
        "m",
        "r",
        "body",
        attributes={"MessageGroupId": "g", "MessageDeduplicationId": "d"},
        message_attributes=attributes,
    )
    fifo = _redrive._entry(message, 3, fifo=True)
    assert (fifo.id, fifo.body, fifo.message_attributes) == ("3", "body", attributes)
    assert (fifo.message_group_id, fifo.message_deduplication_id) == ("g", "d")
    assert _redrive._entry(message, 0, fifo=False).message_deduplication_id is None


# -- peek decoding --------------------------------------------------------------------------------------


def _task(**extra: Any) -> bytes:
    return orjson.dumps(
        {"task_id": "t1", "task_name": "app:add", "labels": {"a": 1}, "args": [1, "x"], "kwargs": {"k": None}}
        | extra
    )


async def _decode(message: Message, loads: Any = None) -> _peek.Peeked:
    async with operator(FakeSQS(lambda a, b: ok({}))) as op:
        return await _peek._decode(op, message, loads, fetch=False)


async def test_peek_decodes_plain_and_base64_bodies() -> None:
    import base64

    row = await _decode(Message("m", "r", _task().decode(), attributes={"ApproximateReceiveCount": "3"}))
    assert (row.task_id, row.task_name, row.labels, row.args) == (
        "t1",
        "app:add",
        {"a": "1"},
        "1, 'x', k=None",
    )
    assert (row.receive_count, row.payload_format, row.location, row.error) == (3, "text", "sqs", None)
    encoded = Message(
        "m",
        "r",
        base64.b64encode(b"\x80binary").decode(),
        message_attributes={"taskiq_body_encoding": MessageAttributeValue.string("base64")},
    )
    row = await _decode(encoded)
    assert row.payload_format == "base64"
    assert row.size == 7
    assert row.error is not None and "--app module:broker" in row.error
    row = await _decode(encoded, loads=lambda payload: _FakeTaskiqMessage())
    assert (row.task_name, row.error) == ("app:binary", None)


class _FakeTaskiqMessage:
    task_id = "t2"
    task_name = "app:binary"
    labels: dict[str, Any] = {}  # noqa: RUF012 - read-only stand-in
    args: list[Any] = []  # noqa: RUF012
    kwargs: dict[str, Any] = {}  # noqa: RUF012


async def test_peek_reports_pointers_without_fetching_and_bad_pointers() -> None:
    pointer = Message(
        "m",
        "r",
        json.dumps(
            ["software.amazon.payloadoffloading.PayloadS3Pointer", {"s3BucketName": "b", "s3Key": "k"}]
        ),
        message_attributes={"ExtendedPayloadSize": MessageAttributeValue.number(5)},
    )
    row = await _decode(pointer)
    assert (row.payload_format, row.location, row.task_name) == ("s3 pointer (aws)", "s3://b/k", None)
    broken = Message(
        "m", "r", "{}", message_attributes={"s3_extended_message": MessageAttributeValue.string("True")}
    )
    row = await _decode(broken)
    assert row.payload_format == "bad S3 pointer"
    assert row.error is not None and "s3_bucket" in row.error


# -- small pieces ---------------------------------------------------------------------------------------


def test_table_pads_columns_and_right_aligns_numbers() -> None:
    text = render_table(["NAME", "COUNT"], [["a", 5], ["longer", 12], ["c", None]])
    assert text.splitlines() == ["NAME    COUNT", "a           5", "longer     12", "c           -"]


def test_preview_cuts_with_an_ellipsis() -> None:
    assert preview("a  b\nc", 10) == "a b c"
    assert preview("x" * 20, 10) == "xxxxxxx..."


def test_queue_arn_and_redrive_policy_parsing() -> None:
    assert queue_name_from_arn(arn("jobs")) == ("jobs", "123456789012")
    with pytest.raises(CLIError, match="not an SQS queue ARN"):
        queue_name_from_arn("arn:aws:s3:::bucket")
    policy = json.dumps({"deadLetterTargetArn": arn("d"), "maxReceiveCount": "4"})
    assert redrive_policy({"RedrivePolicy": policy}) == (arn("d"), 4)
    assert redrive_policy({}) is None
    assert redrive_policy({"RedrivePolicy": "not json"}) is None


def test_client_options_come_from_the_broker_without_secrets_in_output() -> None:
    from taskiq_sqs_http import SQSBroker

    broker = SQSBroker(
        "jobs", endpoint_url="http://localhost:4566", region_name="eu-west-1", aws_access_key_id="AK",
        aws_secret_access_key="very-secret",
    )  # fmt: skip
    options = client_options(broker)
    assert options["endpoint_url"] == "http://localhost:4566"
    assert options["region_name"] == "eu-west-1"
    assert "very-secret" not in repr(options)
    assert client_options(object()) == {}


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "unit_cli_app.py").write_text(
        "from taskiq_sqs_http import SQSBroker\nbroker = SQSBroker('jobs')\nother = 1\n"
        "class Holder:\n    broker = broker\n"
    )
    (tmp_path / "unit_cli_broken.py").write_text("import no_such_dependency_zz\n")
    monkeypatch.chdir(tmp_path)
    yield "unit_cli_app"
    for name in ("unit_cli_app", "unit_cli_broken"):
        sys.modules.pop(name, None)


def test_load_broker_accepts_dotted_attributes(app_dir: str) -> None:
    from taskiq_sqs_http import SQSBroker

    assert isinstance(load_broker(f"{app_dir}:broker"), SQSBroker)
    assert load_broker(f"{app_dir}:Holder.broker") is load_broker(f"{app_dir}:broker")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("unit_cli_app", "must look like 'module:broker'"),
        (":broker", "must look like 'module:broker'"),
        ("unit_cli_app:", "must look like 'module:broker'"),
        ("unit_cli_missing:broker", "no module named 'unit_cli_missing'"),
        ("unit_cli_broken:broker", "importing 'unit_cli_broken' failed"),
        ("unit_cli_app:nope", "has no attribute 'nope'"),
        ("unit_cli_app:other", "is a int, not a taskiq_sqs_http SQSBroker"),
    ],
)
def test_bad_app_paths(app_dir: str, path: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(CLIError, match=message) as caught:
        load_broker(path)
    assert caught.value.exit_code == 2
    assert main(["stats", path]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["purge", "q"], "add --yes"),
        (["stats"], "needs an app path"),
        (["redrive", "d", "--method", "move-task", "--max", "3"], "--max needs --method manual or auto"),
        (["peek", "q", "-n", "101"], "-n is 101; allowed range is 1..100"),
        (["peek", "q", "-n", "x"], "-n is 'x'; it must be a whole number"),
        (["redrive", "d", "--max", "0"], "--max is 0; allowed range is 1..1000000"),
        (["peek"], "the following arguments are required: QUEUE"),
        (["bogus"], "invalid choice"),
        ([], "required"),
    ],
)
def test_usage_errors_exit_2_before_any_request(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing is listening: no request is made
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("stats", "peek", "redrive", "purge", "create"):
        assert command in out
    assert main(["peek", "--help"]) == 0
    assert "a peek is a receive" in " ".join(capsys.readouterr().out.split()).lower()


def test_overrides_reach_the_broker_that_create_starts() -> None:
    from taskiq_sqs_http import SQSBroker
    from taskiq_sqs_http.cli._context import apply_overrides

    broker = SQSBroker("jobs", region_name="eu-west-1")
    apply_overrides(broker, {"endpoint_url": "http://localhost:4566", "region_name": "us-west-2"})
    assert client_options(broker)["endpoint_url"] == "http://localhost:4566"
    assert client_options(broker)["region_name"] == "us-west-2"
    apply_overrides(broker, {})
    assert client_options(broker)["region_name"] == "us-west-2"


def test_unexpected_errors_are_one_line_unless_asked(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from taskiq_sqs_http import cli

    async def boom(args: Any) -> int:
        raise RuntimeError("hook failed")

    monkeypatch.setattr(cli, "_run", boom)
    assert main(["stats", "--queue", "q"]) == 1
    assert "unexpected RuntimeError: hook failed (set TASKIQ_SQS_TRACEBACK=1" in capsys.readouterr().err
    monkeypatch.setenv("TASKIQ_SQS_TRACEBACK", "1")
    with pytest.raises(RuntimeError, match="hook failed"):
        main(["stats", "--queue", "q"])


def test_manual_redrive_batches_respect_the_1_mib_total() -> None:
    big = [Message(f"m{i}", f"r{i}", "x" * 400_000) for i in range(5)]
    small = [Message(f"s{i}", f"r{i}", "y") for i in range(12)]
    assert [len(b) for b in _redrive._batches(big, fifo=False)] == [2, 2, 1]
    assert [len(b) for b in _redrive._batches(small, fifo=False)] == [10, 2]


def test_queue_commands_do_not_import_taskiq() -> None:
    """stats/redrive/purge by queue name start fast: taskiq is only imported for app paths and peek."""
    import subprocess

    code = (
        "import sys\n"
        "from taskiq_sqs_http.cli import _admin, _redrive, _stats, build_parser\n"
        "build_parser()\n"
        "print(sorted(m for m in sys.modules if m == 'taskiq' or m.startswith('taskiq.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
