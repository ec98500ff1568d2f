"""Serverless workers: taskiq tasks on AWS Lambda from an SQS event source mapping.

```python
from taskiq_sqs_http import S3Backend, SQSBroker
from taskiq_sqs_http.serverless import lambda_handler

broker = SQSBroker("tasks").with_result_backend(S3Backend("results"))

@broker.task
async def resize(key: str) -> str: ...

handler = lambda_handler(broker)  # the function's handler setting: "app.handler"
```

The event source mapping must have ``FunctionResponseTypes=["ReportBatchItemFailures"]`` (or use
``lambda_handler(broker, on_failure="raise")``). See docs/serverless.md.
"""

from __future__ import annotations

from ._handler import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_TIME_MARGIN,
    BatchItemFailuresError,
    LambdaContext,
    LambdaHandler,
    lambda_handler,
)
from ._records import LambdaEventError, Record, parse_event

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_TIME_MARGIN",
    "BatchItemFailuresError",
    "LambdaContext",
    "LambdaEventError",
    "LambdaHandler",
    "Record",
    "lambda_handler",
    "parse_event",
]
