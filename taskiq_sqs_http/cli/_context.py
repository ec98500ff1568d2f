"""What every command needs: the clients, queue lookup, the broker of an ``app:broker`` path, and errors.

Everything goes through the client layer (`taskiq_sqs_http.aws`). Credentials come from the normal chain
(environment, profile, container or instance role) unless the loaded broker names its own; ``--endpoint-url``
and ``--region`` override both the environment and the broker's settings.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from ..aws import ChangeVisibilityEntry, HTTPSession, Message, QueueDoesNotExistError, S3Client, SQSClient
from ..aws.sqs import MAX_BATCH_ENTRIES

__all__ = [
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "CLIError",
    "Operator",
    "QueueRef",
    "load_broker",
    "queue_name_from_arn",
]

EXIT_FAILURE = 1  # AWS refused or could not be reached, a queue is missing, some messages failed
EXIT_USAGE = 2  # bad arguments or app path (argparse uses 2 as well)

# The keyword arguments of our clients that a broker's or backend's settings may carry.
_CLIENT_OPTIONS = (
    "region_name",
    "endpoint_url",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "credentials",
    "retry_policy",
)


class CLIError(Exception):
    """A failure reported as one line on stderr and a non-zero exit status."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def load_broker(path: str) -> Any:
    """The `SQSBroker` named by ``module:attribute`` (the form ``taskiq worker`` takes), imported from cwd."""
    from ..broker import SQSBroker

    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise CLIError(f"app path {path!r} must look like 'module:broker' (e.g. 'myapp.tasks:broker')", 2)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
            raise CLIError(
                f"app path {path!r}: no module named {exc.name!r} (from {os.getcwd()})", 2
            ) from None
        raise CLIError(f"app path {path!r}: importing {module_name!r} failed: {exc!r}", 2) from exc
    except Exception as exc:
        raise CLIError(f"app path {path!r}: importing {module_name!r} failed: {exc!r}", 2) from exc
    value: Any = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise CLIError(f"app path {path!r}: {module_name!r} has no attribute {attribute!r}", 2) from None
    if not isinstance(value, SQSBroker):
        raise CLIError(f"app path {path!r} is a {type(value).__name__}, not a taskiq_sqs_http SQSBroker", 2)
    return value


def client_options(owner: object) -> dict[str, Any]:
    """The client settings a broker was built with (endpoint, region, credentials, retries).

    Read from its public ``client_options`` (or, in older brokers, ``_client_options``); an object without
    them contributes nothing and the CLI flags and the environment decide alone.
    """
    public: object = getattr(owner, "client_options", None)
    if public is not None and not isinstance(public, Mapping):
        return {k: v for k in _CLIENT_OPTIONS if (v := getattr(public, k, None)) is not None}
    raw = getattr(owner, "_client_options", None)
    if not isinstance(raw, Mapping):
        return {}
    options: Mapping[Any, Any] = raw  # pyright: ignore[reportUnknownVariableType]
    return {key: options[key] for key in _CLIENT_OPTIONS if options.get(key) is not None}


def apply_overrides(owner: object, overrides: Mapping[str, str]) -> None:
    """Make a broker use the CLI's endpoint/region for the requests it makes itself (``create``)."""
    if not overrides:
        return
    current: object = getattr(owner, "_client_options", None)
    if dataclasses.is_dataclass(current) and not isinstance(current, type):
        owner._client_options = dataclasses.replace(current, **overrides)  # pyright: ignore[reportAttributeAccessIssue]
    elif isinstance(current, dict):
        current.update(overrides)  # pyright: ignore[reportUnknownMemberType]
    else:
        raise CLIError("this broker's client settings cannot be overridden; drop --endpoint-url/--region", 2)


def queue_name_from_arn(arn: str) -> tuple[str, str | None]:
    """(queue name, account id) of ``arn:aws:sqs:<region>:<account>:<name>``."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs" or not parts[5]:
        raise CLIError(f"{arn!r} is not an SQS queue ARN")
    return parts[5], parts[4] or None


@dataclass(frozen=True, slots=True)
class QueueRef:
    name: str
    url: str


class _OperatorSQS(SQSClient):
    """The SQS client plus the two message-move actions only an operator needs."""

    async def start_message_move_task(
        self,
        source_arn: str,
        *,
        destination_arn: str | None = None,
        max_per_second: int | None = None,
    ) -> str:
        payload: dict[str, Any] = {"SourceArn": source_arn}
        if destination_arn is not None:
            payload["DestinationArn"] = destination_arn
        if max_per_second is not None:
            payload["MaxNumberOfMessagesPerSecond"] = max_per_second
        data = await self._call("StartMessageMoveTask", payload)
        return str(data.get("TaskHandle", ""))

    async def list_message_move_tasks(self, source_arn: str, *, max_results: int = 1) -> list[dict[str, Any]]:
        data = await self._call("ListMessageMoveTasks", {"SourceArn": source_arn, "MaxResults": max_results})
        results: Any = data.get("Results") or []
        if not isinstance(results, list):
            return []
        return [dict(r) for r in results if isinstance(r, dict)]  # pyright: ignore[reportUnknownArgumentType, reportUnknownVariableType]


class Operator:
    """The clients of one command, on one HTTP pool; ``async with Operator(options) as op``."""

    def __init__(self, options: Mapping[str, Any], *, http_client: httpx.AsyncClient | None = None) -> None:
        self._options = dict(options)
        self._session = HTTPSession(http_client=http_client)
        self.sqs = _OperatorSQS(session=self._session, **self._options)
        self._s3: S3Client | None = None

    @property
    def s3(self) -> S3Client:
        """Opened on first use: most commands never touch S3."""
        if self._s3 is None:
            self._s3 = S3Client(session=self._session, **self._options)
        return self._s3

    @property
    def where(self) -> str:
        return f"{self.sqs.endpoint_url} (region {self.sqs.region})"

    async def __aenter__(self) -> Operator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        try:
            if self._s3 is not None:
                await self._s3.aclose()
        finally:
            try:
                await self.sqs.aclose()
            finally:
                if not self._session.closed:
                    await self._session.aclose()

    async def queue(self, name_or_url: str, *, owner_account_id: str | None = None) -> QueueRef:
        """A queue given by name or URL; a missing queue is a `CLIError` naming it and the endpoint."""
        if name_or_url.startswith(("http://", "https://")):
            return QueueRef(name_or_url.rstrip("/").rsplit("/", 1)[-1], name_or_url)
        try:
            url = await self.sqs.get_queue_url(name_or_url, owner_account_id=owner_account_id)
        except QueueDoesNotExistError:
            raise CLIError(f"queue {name_or_url!r} does not exist at {self.where}") from None
        return QueueRef(name_or_url, url)

    async def queue_from_arn(self, arn: str) -> QueueRef:
        name, account = queue_name_from_arn(arn)
        return await self.queue(name, owner_account_id=account)

    async def attributes(self, queue: QueueRef, *names: str) -> dict[str, str]:
        try:
            return await self.sqs.get_queue_attributes(queue.url, names or ("All",))
        except QueueDoesNotExistError:
            raise CLIError(f"queue {queue.name!r} ({queue.url}) does not exist at {self.where}") from None

    async def hand_back(self, queue: QueueRef, messages: Sequence[Message]) -> list[str]:
        """Make received messages visible again now; the ids of those that could not be handed back."""
        failed: list[str] = []
        for start in range(0, len(messages), MAX_BATCH_ENTRIES):
            chunk = messages[start : start + MAX_BATCH_ENTRIES]
            entries = [ChangeVisibilityEntry(str(i), m.receipt_handle, 0) for i, m in enumerate(chunk)]
            result = await self.sqs.change_message_visibility_batch(queue.url, entries)
            failed.extend(chunk[int(f.id)].message_id for f in result.failed)
        return failed
