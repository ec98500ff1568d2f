"""The task module ``taskiq worker`` loads in the sequential-consumption benchmark (scripts/bench.py).

The broker comes from the environment so that one file serves both libraries: ``BENCH_LIB`` (the import
name), ``BENCH_ENDPOINT`` and ``BENCH_QUEUE``. The one task does nothing: what is measured is the broker's
cost per task when ``taskiq worker --max-async-tasks 1`` runs tasks one after another.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

_module: Any = importlib.import_module(os.environ.get("BENCH_LIB", "taskiq_sqs_http"))

broker: Any = _module.SQSBroker(
    os.environ["BENCH_QUEUE"],
    endpoint_url=os.environ["BENCH_ENDPOINT"],
    region_name="us-east-1",
    aws_access_key_id="test",
    aws_secret_access_key="test",  # noqa: S106 - MiniStack's test keys
)


@broker.task(task_name="bench:noop")
async def noop(i: Any) -> None:
    del i
