"""The ``taskiq-sqs`` operator CLI against MiniStack: ``main(argv)`` in-process, and once as a subprocess.

MiniStack has no StartMessageMoveTask, so ``redrive`` here takes its receive/send/delete path (the move
task path is covered by the unit tests with a mocked endpoint).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from taskiq_sqs_http.aws import RetryPolicy, S3Client, SQSClient
from taskiq_sqs_http.cli import _redrive, main

T = TypeVar("T")


def run(work: Callable[[SQSClient], Awaitable[T]], endpoint_url: str) -> T:
    async def go() -> T:
        async with SQSClient(endpoint_url=endpoint_url, retry_policy=RetryPolicy.testing()) as sqs:
            return await work(sqs)

    return asyncio.run(go())


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code, out, err = cli(capsys, *argv, "--json")
    assert out, err
    return code, json.loads(out)


def task_body(name: str = "app:add", *args: Any, **labels: str) -> str:
    return json.dumps(
        {
            "task_id": uuid.uuid4().hex,
            "task_name": name,
            "labels": labels,
            "labels_types": {},
            "args": list(args),
            "kwargs": {"y": 2},
        }
    )


@pytest.fixture
def env(endpoint_url: str, fake_keys: None) -> str:
    return endpoint_url


@pytest.fixture
def names(unique_name: str) -> dict[str, str]:
    return {"queue": unique_name, "dlq": unique_name + "-dlq", "bucket": "b" + unique_name[1:]}


@pytest.fixture
def plain_queue(env: str, names: dict[str, str]) -> Iterator[str]:
    url = run(lambda sqs: sqs.create_queue(names["queue"]), env)
    yield url
    run(lambda sqs: sqs.delete_queue(url), env)


@pytest.fixture
def queue_with_dlq(env: str, names: dict[str, str]) -> Iterator[tuple[str, str]]:
    """(queue url, dlq url): the queue moves a message to the DLQ on its second receive."""

    async def make(sqs: SQSClient) -> tuple[str, str]:
        dlq = await sqs.create_queue(names["dlq"])
        arn = (await sqs.get_queue_attributes(dlq, ["QueueArn"]))["QueueArn"]
        policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "1"})
        url = await sqs.create_queue(names["queue"], attributes={"RedrivePolicy": policy})
        return url, dlq

    urls = run(make, env)
    yield urls

    async def drop(sqs: SQSClient) -> None:
        for url in urls:
            await sqs.delete_queue(url)

    run(drop, env)


async def _to_dlq(sqs: SQSClient, url: str, bodies: list[str], **send: Any) -> None:
    """Send, then receive twice with visibility 0: the second receive moves them to the DLQ."""
    for body in bodies:
        await sqs.send_message(url, body, **send)
    for _ in range(4):
        await sqs.receive_message(url, max_number_of_messages=10, wait_time_seconds=1, visibility_timeout=0)


def _stats(capsys: pytest.CaptureFixture[str], env: str, *queues: str) -> dict[str, Any]:
    args = [a for q in queues for a in ("--queue", q)]
    code, data = cli_json(capsys, "stats", *args, "--endpoint-url", env)
    assert code == 0, data
    return {row["queue"]: row for row in data["queues"]}


# -- stats ---------------------------------------------------------------------------------------------


def test_stats_counts_queue_and_dlq(
    capsys: pytest.CaptureFixture[str], env: str, names: dict[str, str], queue_with_dlq: tuple[str, str]
) -> None:
    url, _ = queue_with_dlq

    async def fill(sqs: SQSClient) -> None:
        await _to_dlq(sqs, url, [task_body()])
        await sqs.send_message(url, task_body())
        await sqs.send_message(url, task_body(), delay_seconds=60)
        await sqs.send_message(url, task_body())
        await sqs.receive_message(url, visibility_timeout=60)

    run(fill, env)
    row = _stats(capsys, env, names["queue"])[names["queue"]]
    assert (row["visible"], row["in_flight"], row["delayed"]) == (1, 1, 1)
    assert row["dead_letter_queue"] == names["dlq"]
    assert row["max_receive_count"] == 1
    assert (row["dlq_visible"], row["dlq_in_flight"], row["dlq_delayed"]) == (1, 0, 0)

    code, out, _ = cli(capsys, "stats", "--queue", url, "--endpoint-url", env)
    assert code == 0
    assert out.splitlines()[0].split() == ["QUEUE", "VISIBLE", "IN", "FLIGHT", "DELAYED", "NOTE"]
    assert f"dlq: {names['dlq']}" in out
    assert "DLQ after 1 receives" in out


def test_stats_missing_queue_is_an_error_row_and_exit_1(
    capsys: pytest.CaptureFixture[str], env: str, names: dict[str, str]
) -> None:
    code, data = cli_json(capsys, "stats", "--queue", names["queue"] + "-nope", "--endpoint-url", env)
    assert code == 1
    assert "does not exist" in data["queues"][0]["error"]


# -- peek ----------------------------------------------------------------------------------------------


def test_peek_decodes_hands_back_and_says_it_counts_as_a_receive(
    capsys: pytest.CaptureFixture[str], env: str, names: dict[str, str], queue_with_dlq: tuple[str, str]
) -> None:
    url, _ = queue_with_dlq

    async def fill(sqs: SQSClient) -> None:
        await sqs.send_message(url, task_body("app:add", 1, queue="q1"))
        await sqs.send_message(url, "not a task")

    run(fill, env)
    code, out, err = cli(capsys, "peek", names["queue"], "-n", "5", "--endpoint-url", env, "--json")
    data = json.loads(out)
    assert code == 0
    assert data["not_handed_back"] == []
    assert "a peek is a receive" in data["note"]
    by_name = {m["task_name"]: m for m in data["messages"]}
    task = by_name["app:add"]
    assert task["labels"] == {"queue": "q1"}
    assert task["args"] == "1, y=2"
    assert (task["payload_format"], task["location"], task["receive_count"]) == ("text", "sqs", 1)
    assert "cannot read the task" in by_name[None]["error"]
    # maxReceiveCount is 1: the peek used up their last receive, and says so.
    assert all(m["to_dlq_on_next_receive"] for m in data["messages"])
    assert "warning: 2 message(s) reached the queue's maxReceiveCount" in err
    # Handed back at once: both are visible again.
    assert _stats(capsys, env, names["queue"])[names["queue"]]["visible"] == 2


def test_peek_shows_s3_pointer_payloads(
    capsys: pytest.CaptureFixture[str], env: str, names: dict[str, str], plain_queue: str
) -> None:
    url = plain_queue
    key = uuid.uuid4().hex + ".json"

    async def fill(sqs: SQSClient) -> None:
        async with S3Client(endpoint_url=env) as s3:
            await s3.create_bucket(names["bucket"])
            await s3.put_object(names["bucket"], key, task_body("app:big", "x" * 10).encode())
        pointer = json.dumps({"s3_bucket": names["bucket"], "s3_key": key})
        from taskiq_sqs_http.aws import MessageAttributeValue

        await sqs.send_message(
            url, pointer, message_attributes={"s3_extended_message": MessageAttributeValue.string("True")}
        )

    run(fill, env)
    code, data = cli_json(capsys, "peek", url, "--endpoint-url", env)
    assert code == 0
    (message,) = data["messages"]
    assert message["payload_format"] == "s3 pointer (aio-sqs)"
    assert message["location"] == f"s3://{names['bucket']}/{key}"
    assert message["task_name"] == "app:big"
    code, data = cli_json(capsys, "peek", url, "--no-fetch", "--endpoint-url", env)
    assert data["messages"][0]["task_name"] is None
    assert data["messages"][0]["receive_count"] == 2
    assert data["messages"][0]["to_dlq_on_next_receive"] is False
    code, out, err = cli(capsys, "peek", names["queue"], "--endpoint-url", env)
    assert code == 0
    header, row = out.splitlines()
    assert header.split()[:4] == ["TASK", "ID", "TASK", "RECEIVES"]
    assert "app:big" in row and f"s3://{names['bucket']}/{key}" in row and "'xxxxxxxxxx', y=2" in row
    assert "a peek is a receive" in err and "warning" not in err


def test_peek_missing_queue_exits_1(
    capsys: pytest.CaptureFixture[str], env: str, names: dict[str, str]
) -> None:
    code, out, err = cli(capsys, "peek", names["queue"] + "-nope", "--endpoint-url", env)
    assert code == 1
    assert out == ""
    assert "does not exist" in err and names["queue"] in err


# -- redrive -------------------------------------------------------------------------------------------


def test_redrive_moves_back_to_the_source_with_attributes(
    capsys: pytest.CaptureFixture[str], env: str, names: dict[str, str], queue_with_dlq: tuple[str, str]
) -> None:
    url, dlq = queue_with_dlq
    from taskiq_sqs_http.aws import MessageAttributeValue

    attrs = {"taskiq_body_encoding": MessageAttributeValue.string("base64")}
    run(lambda sqs: _to_dlq(sqs, url, ["AAEC", "AAED", "AAEE"], message_attributes=attrs), env)
    assert _stats(capsys, env, names["dlq"])[names["dlq"]]["visible"] == 3

    code, data = cli_json(capsys, "redrive", names["dlq"], "--max", "2", "--endpoint-url", env)
    assert code == 0, data
    assert (data["method"], data["moved"], data["failed"], data["skipped"]) == (
        "receive-send-delete",
        2,
        0,
        0,
    )
    assert data["destinations"] == {names["queue"]: 2}

    code, out, _ = cli(capsys, "redrive", dlq, "--endpoint-url", env)
    assert code == 0
    assert "moved 1, failed 0, skipped 0" in out
    counts = _stats(capsys, env, names["queue"])[names["queue"]]
    assert (counts["visible"], counts["dlq_visible"]) == (3, 0)

    async def received(sqs: SQSClient) -> list[Any]:
        return await sqs.receive_message(url, max_number_of_messages=10, wait_time_seconds=1)

    messages = run(received, env)
    assert sorted(m.body for m in messages) == ["AAEC", "AAED", "AAEE"]
    assert all(m.message_attributes == attrs for m in messages)


def test_redrive_fifo_keeps_group_and_deduplication_ids(
    capsys: pytest.CaptureFixture[str], env: str, names: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target, dlq_name = names["queue"] + ".fifo", names["queue"] + "-to.fifo", names["dlq"] + ".fifo"
    fifo = {"FifoQueue": "true"}

    async def make(sqs: SQSClient) -> tuple[str, str, str]:
        dlq = await sqs.create_queue(dlq_name, attributes=fifo)
        arn = (await sqs.get_queue_attributes(dlq, ["QueueArn"]))["QueueArn"]
        policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "1"})
        url = await sqs.create_queue(source, attributes={**fifo, "RedrivePolicy": policy})
        to = await sqs.create_queue(target, attributes=fifo)
        await _to_dlq(sqs, url, ["one"], message_group_id="g1", message_deduplication_id="d1")
        return url, to, dlq

    url, to, dlq = run(make, env)
    try:
        # Sent just now: FIFO deduplication would silently drop it, so it stays in the DLQ.
        code, data = cli_json(capsys, "redrive", dlq_name, "--to", target, "--endpoint-url", env)
        assert code == 1
        assert (data["moved"], data["skipped"]) == (0, 1)
        assert "5 minutes" in data["errors"][0]
        # Outside the window (pretend), it moves with its ids.
        monkeypatch.setattr(_redrive, "_DEDUP_WINDOW", 0.0)
        code, data = cli_json(capsys, "redrive", dlq_name, "--to", target, "--endpoint-url", env)
        assert (code, data["moved"]) == (0, 1), data

        async def received(sqs: SQSClient) -> list[Any]:
            return await sqs.receive_message(to, wait_time_seconds=1)

        (message,) = run(received, env)
        assert message.body == "one"
        assert message.attributes["MessageGroupId"] == "g1"
        assert message.attributes["MessageDeduplicationId"] == "d1"
    finally:

        async def drop(sqs: SQSClient) -> None:
            for queue_url in (url, to, dlq):
                await sqs.delete_queue(queue_url)

        run(drop, env)


def test_redrive_move_task_only_fails_clearly_where_unsupported(
    capsys: pytest.CaptureFixture[str], env: str, names: dict[str, str], queue_with_dlq: tuple[str, str]
) -> None:
    code, _, err = cli(capsys, "redrive", names["dlq"], "--method", "move-task", "--endpoint-url", env)
    assert code == 1
    assert "StartMessageMoveTask" in err


# -- purge ---------------------------------------------------------------------------------------------


def test_purge_needs_yes(
    capsys: pytest.CaptureFixture[str], env: str, names: dict[str, str], queue_with_dlq: tuple[str, str]
) -> None:
    url, _ = queue_with_dlq
    run(lambda sqs: sqs.send_message(url, task_body()), env)
    code, _, err = cli(capsys, "purge", names["queue"], "--endpoint-url", env)
    assert code == 2
    assert "--yes" in err
    assert _stats(capsys, env, names["queue"])[names["queue"]]["visible"] == 1
    code, data = cli_json(capsys, "purge", names["queue"], "--yes", "--endpoint-url", env)
    assert code == 0
    assert data["purged_visible"] == 1
    assert _stats(capsys, env, names["queue"])[names["queue"]]["visible"] == 0


# -- create and app paths ------------------------------------------------------------------------------


@pytest.fixture
def app(env: str, names: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module in cwd: a broker with a second queue that has a DLQ, an extended and a result bucket."""
    module = "cliapp_" + uuid.uuid4().hex[:8]
    (tmp_path / f"{module}.py").write_text(
        textwrap.dedent(
            f"""
            from taskiq_sqs_http import S3Backend, SQSBroker, SQSQueue

            broker = SQSBroker(
                {names["queue"]!r}, endpoint_url={env!r}, s3_extended_bucket_name={names["bucket"]!r}
            ).with_queues(
                SQSQueue(
                    name={names["queue"] + "-b"!r}, dead_letter_queue={names["dlq"]!r}, max_receive_count=3
                )
            ).with_result_backend(S3Backend({names["bucket"] + "-r"!r}, endpoint_url={env!r}))
            not_a_broker = 42
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    yield module
    sys.modules.pop(module, None)

    async def drop(sqs: SQSClient) -> None:
        for name in (names["queue"], names["queue"] + "-b", names["dlq"]):
            with contextlib.suppress(Exception):  # not created when a test failed early
                await sqs.delete_queue(await sqs.get_queue_url(name))

    run(drop, env)


def test_create_provisions_queues_dlq_and_buckets_then_stats(
    capsys: pytest.CaptureFixture[str], env: str, names: dict[str, str], app: str
) -> None:
    code, data = cli_json(capsys, "create", f"{app}:broker")
    assert code == 0, data
    rows = {(r["kind"], r["name"]): r for r in data["resources"]}
    assert rows["queue", names["queue"]]["status"] == "created"
    second = rows["queue", names["queue"] + "-b"]
    assert second["status"] == "created"
    assert second["detail"] == f"DLQ {names['dlq']} after 3 receives"
    assert rows["dead-letter queue", names["dlq"]]["status"] == "created"
    assert rows["bucket", names["bucket"]]["status"] == "created"
    assert rows["bucket", names["bucket"] + "-r"]["status"] == "created"

    code, out, _ = cli(capsys, "create", f"{app}:broker")
    assert code == 0
    assert "created" not in out and out.count("exists") == 5

    code, data = cli_json(capsys, "stats", f"{app}:broker")
    assert code == 0
    by_name = {r["queue"]: r for r in data["queues"]}
    assert by_name[names["queue"]]["visible"] == 0
    assert by_name[names["queue"] + "-b"]["dead_letter_queue"] == names["dlq"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("nocolon", "must look like 'module:broker'"),
        ("no_such_module_x:broker", "no module named 'no_such_module_x'"),
        ("{app}:nothing", "has no attribute 'nothing'"),
        ("{app}:not_a_broker", "is a int, not a taskiq_sqs_http SQSBroker"),
    ],
)
def test_bad_app_paths_exit_2(capsys: pytest.CaptureFixture[str], app: str, path: str, message: str) -> None:
    code, out, err = cli(capsys, "stats", path.format(app=app))
    assert (code, out) == (2, "")
    assert message in err


def test_aws_unreachable_is_a_clear_error(capsys: pytest.CaptureFixture[str], fake_keys: None) -> None:
    code, _, err = cli(capsys, "stats", "--queue", "q", "--endpoint-url", "http://127.0.0.1:9")
    assert code == 1
    assert "error" in err and "127.0.0.1:9" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], env: str) -> None:
    assert cli(capsys, "stats", "--endpoint-url", env)[0] == 2
    code, _, err = cli(capsys, "peek", "q", "-n", "0")
    assert code == 2 and "allowed range is 1..100" in err
    assert cli(capsys, "nope")[0] == 2


# -- as a real process ---------------------------------------------------------------------------------


def test_console_script_runs_as_a_subprocess(
    env: str, names: dict[str, str], queue_with_dlq: tuple[str, str]
) -> None:
    url, _ = queue_with_dlq
    run(lambda sqs: sqs.send_message(url, task_body()), env)
    environ = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "taskiq_sqs_http.cli", "stats", "--queue", names["queue"], "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**environ, "AWS_ENDPOINT_URL": env},
    )
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["queues"]
    assert (row["queue"], row["visible"], row["dlq_visible"]) == (names["queue"], 1, 0)
    missing = subprocess.run(
        [sys.executable, "-m", "taskiq_sqs_http.cli", "purge", names["queue"] + "-nope", "--yes"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**environ, "AWS_ENDPOINT_URL": env},
    )
    assert missing.returncode == 1
    assert missing.stdout == ""
    assert "does not exist" in missing.stderr


def test_create_leaves_existing_queues_alone_and_says_the_dlq_is_missing(
    capsys: pytest.CaptureFixture[str], env: str, names: dict[str, str], app: str
) -> None:
    run(lambda sqs: sqs.create_queue(names["queue"] + "-b"), env)
    code, out, err = cli(capsys, "create", f"{app}:broker", "--json")
    assert code == 1
    rows = {(r["kind"], r["name"]): r for r in json.loads(out)["resources"]}
    assert rows["queue", names["queue"] + "-b"]["status"] == "exists"
    assert "has no redrive policy" in rows["queue", names["queue"] + "-b"]["detail"]
    assert rows["dead-letter queue", names["dlq"]]["status"] == "missing"
    assert f"dead-letter queue {names['dlq']} does not exist" in err


def test_redrive_large_messages_in_batches_under_the_total_limit(
    capsys: pytest.CaptureFixture[str], env: str, names: dict[str, str], queue_with_dlq: tuple[str, str]
) -> None:
    url, _ = queue_with_dlq
    bodies = [c * 400_000 for c in "abc"]
    run(lambda sqs: _to_dlq(sqs, url, bodies), env)
    code, data = cli_json(capsys, "redrive", names["dlq"], "--endpoint-url", env)
    assert (code, data["moved"], data["failed"]) == (0, 3, 0), data
    assert _stats(capsys, env, names["queue"])[names["queue"]]["visible"] == 3
