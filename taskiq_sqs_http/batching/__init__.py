"""Coalescing of SQS calls: sends into SendMessageBatch, acks and heartbeats into their batch calls.

Imports only the client layer (`taskiq_sqs_http.aws`), never taskiq.
"""

from ._ack import BatchEntryError, DeleteBatcher, VisibilityBatcher
from ._protocols import SQSBatchAPI
from ._send import SendBatcher, SendBatchError, SendBufferFullError, SendFailure

__all__ = [
    "BatchEntryError",
    "DeleteBatcher",
    "SQSBatchAPI",
    "SendBatchError",
    "SendBatcher",
    "SendBufferFullError",
    "SendFailure",
    "VisibilityBatcher",
]
