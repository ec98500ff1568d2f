"""Run taskiq-aio-sqs 2.1.1 as a peer, in its own interpreter (TEST_AIOSQS_PYTHON).

It must never be imported into our venv (its aiobotocore pins its own botocore), so the interop tests
start this script with that venv's python. It reads one JSON request on stdin and writes one JSON answer
on stdout. Endpoint and credentials come from the environment (TEST_AWS_ENDPOINT_URL, AWS_*).

Requests (bodies are base64 so any bytes survive JSON):
  {"action": "kick", "queue": name, "bucket": name|null, "messages": [{task_id, task_name, body, labels}]}
  {"action": "receive", "queue": name, "bucket": name|null, "count": n, "timeout": s}
      -> {"bodies": [base64, ...]}   (each received message is acked)
  {"action": "set_result", "bucket": name, "base_path": str, "task_id": id, "value": json}
  {"action": "get_result", "bucket": name, "base_path": str, "task_id": id}  -> {"value": json}
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from typing import Any


async def _kick(request: dict[str, Any], endpoint: str) -> dict[str, Any]:
    from taskiq import BrokerMessage
    from taskiq_aio_sqs import SQSBroker  # pyright: ignore[reportMissingImports]

    broker = SQSBroker(
        request["queue"],
        endpoint_url=endpoint,
        s3_extended_bucket_name=request.get("bucket"),
        use_task_id_for_deduplication=request["queue"].endswith(".fifo"),
    )
    await broker.startup()
    try:
        for item in request["messages"]:
            await broker.kick(
                BrokerMessage(
                    task_id=item["task_id"],
                    task_name=item["task_name"],
                    message=base64.b64decode(item["body"]),
                    labels=item.get("labels", {}),
                )
            )
    finally:
        await broker.shutdown()
    return {"kicked": len(request["messages"])}


async def _receive(request: dict[str, Any], endpoint: str) -> dict[str, Any]:
    from taskiq_aio_sqs import SQSBroker  # pyright: ignore[reportMissingImports]

    broker = SQSBroker(
        request["queue"],
        endpoint_url=endpoint,
        s3_extended_bucket_name=request.get("bucket"),
        wait_time_seconds=1,
        max_number_of_messages=10,
    )
    await broker.startup()
    bodies: list[str] = []
    try:

        async def collect() -> None:
            async for message in broker.listen():
                bodies.append(base64.b64encode(message.data).decode())
                await message.ack()
                if len(bodies) >= request["count"]:
                    return

        await asyncio.wait_for(collect(), request.get("timeout", 20))
    finally:
        await broker.shutdown()
    return {"bodies": bodies}


async def _results(request: dict[str, Any], endpoint: str) -> dict[str, Any]:
    from taskiq.result import TaskiqResult
    from taskiq_aio_sqs import S3Backend  # pyright: ignore[reportMissingImports]

    backend: Any = S3Backend(request["bucket"], base_path=request.get("base_path", ""), endpoint_url=endpoint)
    await backend.startup()
    try:
        if request["action"] == "set_result":
            result = TaskiqResult(is_err=False, log=None, return_value=request["value"], execution_time=0.5)
            await backend.set_result(request["task_id"], result)
            return {}
        result = await backend.get_result(request["task_id"], with_logs=True)
        return {"value": result.return_value, "log": result.log}
    finally:
        await backend.shutdown()


async def main() -> None:
    request = json.loads(sys.stdin.read())
    endpoint = os.environ["TEST_AWS_ENDPOINT_URL"]
    action = request["action"]
    if action == "kick":
        answer = await _kick(request, endpoint)
    elif action == "receive":
        answer = await _receive(request, endpoint)
    else:
        answer = await _results(request, endpoint)
    sys.stdout.write(json.dumps(answer))


if __name__ == "__main__":
    asyncio.run(main())
