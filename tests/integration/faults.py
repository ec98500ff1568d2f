"""A fault-injecting, request-counting httpx transport for tests against MiniStack.

It sits where the broker's HTTP pool would, so every SQS and S3 request passes through it. A rule decides,
per request, whether to answer 500, drop the connection before or after forwarding (so the request may or
may not have been applied), or fail some entries of a batch call (those entries are removed from the
forwarded request, so they truly were not sent, and reported as ``Failed``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson


@dataclass
class Fault:
    kind: str  # "500" | "drop_before" | "drop_after" | "fail_entries"
    entries: Callable[[dict[str, Any]], bool] = field(default=lambda e: False)
    sender_fault: bool = False
    code: str = "InternalError"


Rule = Callable[[str, int, httpx.Request], Fault | None]


def action_of(request: httpx.Request) -> str:
    target = request.headers.get("x-amz-target", "")
    return target.removeprefix("AmazonSQS.") if target else f"S3.{request.method}"


class FaultTransport(httpx.AsyncBaseTransport):
    def __init__(self, rule: Rule | None = None) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.rule = rule
        self.counts: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()

    def sqs_requests(
        self, exclude: tuple[str, ...] = ("GetQueueUrl", "CreateQueue", "GetQueueAttributes")
    ) -> int:
        return sum(
            n for action, n in self.counts.items() if not action.startswith("S3.") and action not in exclude
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        action = action_of(request)
        self.counts[action] += 1
        fault = self.rule(action, self.counts[action], request) if self.rule else None
        if fault is None:
            return await self._forward(request)
        self.faults[fault.kind] += 1
        if fault.kind == "500":
            return httpx.Response(
                500, json={"__type": "InternalError", "message": "injected"}, request=request
            )
        if fault.kind == "drop_before":
            raise httpx.ConnectError("injected: connection refused", request=request)
        if fault.kind == "drop_after":
            response = await self._forward(request)
            raise httpx.ReadError(f"injected: connection reset after {response.status_code}", request=request)
        if fault.kind == "fail_entries":
            return await self._fail_entries(request, fault)
        raise AssertionError(fault.kind)

    async def _forward(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        body = await response.aread()
        await response.aclose()
        return httpx.Response(response.status_code, headers=response.headers, content=body, request=request)

    async def _fail_entries(self, request: httpx.Request, fault: Fault) -> httpx.Response:
        payload = orjson.loads(request.content)
        failing = [e for e in payload["Entries"] if fault.entries(e)]
        keep = [e for e in payload["Entries"] if not fault.entries(e)]
        failed = [
            {"Id": e["Id"], "Code": fault.code, "Message": "injected", "SenderFault": fault.sender_fault}
            for e in failing
        ]
        if not keep:
            return httpx.Response(200, json={"Successful": [], "Failed": failed}, request=request)
        forwarded = httpx.Request(
            request.method,
            request.url,
            headers={k: v for k, v in request.headers.items() if k.lower() != "content-length"},
            content=orjson.dumps({**payload, "Entries": keep}),
        )
        response = await self._forward(forwarded)
        data = orjson.loads(response.content)
        data["Failed"] = [*data.get("Failed", []), *failed]
        return httpx.Response(200, json=data, request=request)

    async def aclose(self) -> None:
        await self._inner.aclose()
