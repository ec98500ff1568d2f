"""``taskiq-sqs``: see and fix the queues of a taskiq_sqs_http broker without writing code.

Commands (each takes ``--json``, ``--endpoint-url`` and ``--region``)::

    taskiq-sqs stats app:broker | --queue NAME_OR_URL ...   visible / in flight / delayed, and of each DLQ
    taskiq-sqs peek QUEUE [-n N] [--app app:broker]          decoded tasks, handed back (a peek is a receive)
    taskiq-sqs redrive DLQ [--to QUEUE] [--max N]            move dead letters back, with a count
    taskiq-sqs purge QUEUE --yes                             delete every message of a queue
    taskiq-sqs create app:broker                             create the broker's queues, DLQs and buckets

Exit status: 0 success, 1 a failure (AWS error, missing queue, messages not moved), 2 bad arguments or app
path. Errors are one line on stderr (``TASKIQ_SQS_TRACEBACK=1`` shows the traceback of an unexpected one);
tables and JSON go to stdout, notes and warnings to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

from ..aws import AWSError, CredentialsError, QueueDoesNotExistError, TransportError
from ._context import EXIT_FAILURE, EXIT_USAGE, CLIError, Operator, client_options, load_broker

__all__ = ["build_parser", "main"]

PROG = "taskiq-sqs"
TRACEBACK_ENV = "TASKIQ_SQS_TRACEBACK"


def _bounded_int(name: str, low: int, high: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} is {text!r}; it must be a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name} is {value}; allowed range is {low}..{high}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The ``taskiq-sqs`` argument parser (also what the docs render as the command's reference)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON for scripts instead of a table")
    common.add_argument("--endpoint-url", help="SQS/S3 endpoint (an emulator, a VPC endpoint)")
    common.add_argument("--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile)")

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Operate the SQS queues of a taskiq_sqs_http broker. Credentials come from the normal "
        "AWS chain (environment, profile, container or instance role).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    stats = commands.add_parser(
        "stats", parents=[common], help="message counts of queues and their dead-letter queues"
    )
    stats.add_argument("app", nargs="?", help="module:broker whose queues to show")
    stats.add_argument(
        "--queue", action="append", default=[], metavar="NAME_OR_URL", help="a queue to show (repeatable)"
    )

    peek = commands.add_parser(
        "peek",
        parents=[common],
        help="show waiting tasks without running them (a peek is a receive)",
        description="Receive up to N messages, decode them and hand them back at once (visibility 0). "
        "A peek is a receive: each message's receive count goes up by one, which counts towards the "
        "queue's maxReceiveCount.",
    )
    peek.add_argument("queue", metavar="QUEUE", help="queue name or URL")
    peek.add_argument("-n", type=_bounded_int("-n", 1, 100), default=10, help="messages to show (1..100)")
    peek.add_argument("--app", help="module:broker whose formatter decodes the tasks (non-JSON serializers)")
    peek.add_argument("--wait", type=_bounded_int("--wait", 0, 20), default=1, help="long-poll seconds")
    peek.add_argument(
        "--no-fetch", action="store_true", help="do not read S3-offloaded payloads, only show where they are"
    )

    redrive = commands.add_parser(
        "redrive",
        parents=[common],
        help="move messages from a dead-letter queue back",
        description="Move messages from DLQ to the queue each came from (or --to QUEUE). Uses SQS's "
        "message move task where the endpoint supports it, else receives, sends and deletes, keeping "
        "attributes, group ids and deduplication ids.",
    )
    redrive.add_argument("dlq", metavar="DLQ", help="dead-letter queue name or URL")
    redrive.add_argument("--to", metavar="QUEUE", help="destination queue (default: each message's source)")
    redrive.add_argument("--max", type=_bounded_int("--max", 1, 1_000_000), help="move at most N messages")
    redrive.add_argument(
        "--method",
        choices=("auto", "move-task", "manual"),
        default="auto",
        help="auto: a move task unless --max is given or the endpoint lacks it",
    )
    redrive.add_argument(
        "--no-wait", action="store_true", help="start the move task and return without waiting for it"
    )
    redrive.add_argument(
        "--timeout",
        type=_bounded_int("--timeout", 1, 86_400),
        default=300,
        help="seconds to wait for a move task (default 300)",
    )

    purge = commands.add_parser("purge", parents=[common], help="delete every message in a queue")
    purge.add_argument("queue", metavar="QUEUE", help="queue name or URL")
    purge.add_argument("--yes", action="store_true", help="confirm: the messages cannot be recovered")

    create = commands.add_parser(
        "create",
        parents=[common],
        help="create a broker's queues, dead-letter queues and buckets",
        description="Create what the broker uses and is missing: its buckets, then its queues and "
        "dead-letter queues with their redrive policy, through the broker's own startup with "
        "create_queues (so the app's startup hooks run). Existing queues are not changed.",
    )
    create.add_argument("app", help="module:broker")
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    found: dict[str, str] = {}
    if args.endpoint_url:
        found["endpoint_url"] = args.endpoint_url
    if args.region:
        found["region_name"] = args.region
    return found


async def _run(args: argparse.Namespace) -> int:
    if args.command == "purge" and not args.yes:
        raise CLIError(f"purge deletes every message in {args.queue!r} for good; add --yes", EXIT_USAGE)
    if args.command == "stats" and not (args.app or args.queue):
        raise CLIError("stats needs an app path (module:broker) or at least one --queue", EXIT_USAGE)
    if args.command == "redrive" and args.method == "move-task" and args.max is not None:
        raise CLIError(
            "--max needs --method manual or auto: a move task cannot stop after N messages", EXIT_USAGE
        )
    overrides = _overrides(args)
    broker: Any = load_broker(args.app) if getattr(args, "app", None) else None
    options = {**(client_options(broker) if broker is not None else {}), **overrides}
    async with Operator(options) as op:
        if args.command == "stats":
            from . import _stats

            names: list[tuple[str, str | None]] = []
            if broker is not None:
                names += [(q.url or q.name, q.owner_account_id) for q in broker.queues.values()]
            names += [(q, None) for q in args.queue]
            rows = await _stats.collect_stats(op, names)
            _stats.print_stats(rows, args.json)
            return EXIT_FAILURE if any(r.error for r in rows) else 0
        if args.command == "peek":
            from . import _peek

            queue = await op.queue(args.queue)
            loads = broker.formatter.loads if broker is not None else None
            rows_, failed = await _peek.peek(
                op, queue, args.n, wait=args.wait, loads=loads, fetch=not args.no_fetch
            )
            _peek.print_peek(queue, rows_, failed, args.json)
            return EXIT_FAILURE if failed else 0
        if args.command == "redrive":
            from . import _redrive

            dlq = await op.queue(args.dlq)
            to = await op.queue(args.to) if args.to else None
            result = await _redrive.redrive(
                op,
                dlq,
                to=to,
                limit=args.max,
                method=args.method,
                wait=not args.no_wait,
                timeout=args.timeout,
            )
            _redrive.print_redrive(result, args.json)
            return EXIT_FAILURE if result.failed or result.skipped else 0
        from . import _admin

        if args.command == "purge":
            await _admin.purge(op, await op.queue(args.queue), args.json)
            return 0
        created = await _admin.create(op, broker, overrides)
        _admin.print_created(created, args.json)
        return EXIT_FAILURE if any(r.status == "missing" for r in created) else 0


def _is_package_error(exc: BaseException) -> bool:
    """A `TaskIQSQSError`, checked without importing taskiq when no command needed it."""
    errors = sys.modules.get("taskiq_sqs_http.exceptions")
    return errors is not None and isinstance(exc, errors.TaskIQSQSError)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, QueueDoesNotExistError):
        return f"queue does not exist: {exc}"
    if isinstance(exc, CredentialsError):
        return f"no usable AWS credentials: {exc}"
    if isinstance(exc, TransportError):
        return f"cannot reach AWS: {exc}"
    return str(exc) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (the console script exits with it)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage error or the help
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return asyncio.run(_run(args))
    except CLIError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return exc.exit_code
    except AWSError as exc:
        sys.stderr.write(f"{PROG}: error: {_describe(exc)}\n")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    except Exception as exc:  # our broker errors; else an app's startup hook or a bug: traceback on request
        if _is_package_error(exc):
            sys.stderr.write(f"{PROG}: error: {_describe(exc)}\n")
            return EXIT_FAILURE
        if os.environ.get(TRACEBACK_ENV):
            raise
        sys.stderr.write(
            f"{PROG}: error: unexpected {type(exc).__name__}: {exc} "
            f"(set {TRACEBACK_ENV}=1 for the traceback)\n"
        )
        return EXIT_FAILURE


def console_main() -> None:
    """The ``taskiq-sqs`` console script."""
    raise SystemExit(main())
