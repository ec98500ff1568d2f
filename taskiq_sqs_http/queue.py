"""taskiq-aio-sqs 2.1.1's ``queue`` module: ``from taskiq_sqs_http.queue import SQSQueue`` keeps working."""

from __future__ import annotations

from .broker import SQSQueue

__all__ = ["MAX_NUMBER_OF_MESSAGES", "WAIT_TIME_SECONDS", "SQSQueue"]

# The upper bounds of SQSQueue.max_number_of_messages and SQSQueue.wait_time_seconds (2.1.1's names).
MAX_NUMBER_OF_MESSAGES = 10
WAIT_TIME_SECONDS = 20
