"""taskiq-aio-sqs 2.1.1's ``sqs_broker`` module: the broker and the names 2.1.1 defined beside it.

The pydantic validators (``DelaySeconds``, ``MaxNumberOfMessages``, ``BatchSize``, ``BatchTimeout``,
``MessageGroupId``) have 2.1.1's bounds, for code that validated its own settings with them; the broker
itself checks its arguments without them. ``logger`` is the parent of every broker logger, so setting its
level governs them all.
"""

from __future__ import annotations

import logging
from typing import Annotated

from pydantic import Field, TypeAdapter

from . import constants, exceptions
from .broker import MetadataUnwrappingFormatter, SQSBroker, SQSMessageMetadata, SQSQueue
from .broker._envelope import encode_envelope

__all__ = [
    "BatchSize",
    "BatchTimeout",
    "DelaySeconds",
    "MaxNumberOfMessages",
    "MessageGroupId",
    "MetadataUnwrappingFormatter",
    "SQSBroker",
    "SQSMessageMetadata",
    "SQSQueue",
    "constants",
    "encode_envelope",
    "exceptions",
    "logger",
]

logger = logging.getLogger("taskiq_sqs_http.broker")

DelaySeconds = TypeAdapter(Annotated[int, Field(ge=0, le=900)])
MaxNumberOfMessages = TypeAdapter(Annotated[int, Field(ge=1, le=10)])
BatchSize = TypeAdapter(Annotated[int, Field(ge=1, le=10)])
BatchTimeout = TypeAdapter(Annotated[float, Field(ge=0.1)])
# 1..128 characters: letters, digits and ASCII punctuation (SQS's rule for MessageGroupId).
MessageGroupId = TypeAdapter(
    Annotated[
        str,
        Field(
            min_length=1,
            max_length=128,
            pattern=r"^[a-zA-Z0-9!\"#$%&'()*+,\-.\/:;<=>?@\[\\\]^_`\{|\}~]+$",
        ),
    ]
)
