"""taskiq-aio-sqs 2.1.1's ``constants`` module, at the same path under this package.

Only the import path is 2.1.1's. ``DEFAULT_REGION`` is kept for code that reads it, but the broker and the
result backend here do not fall back to it blindly: with no ``region_name`` they use AWS_REGION,
AWS_DEFAULT_REGION or the profile's region, as the AWS SDKs do.
"""

from __future__ import annotations

__all__ = ["DEFAULT_REGION", "MAX_NUMBER_OF_MESSAGES", "MAX_SQS_MESSAGE_SIZE"]

DEFAULT_REGION = "us-east-1"
# The most messages one ReceiveMessage / SendMessageBatch / DeleteMessageBatch call carries.
MAX_NUMBER_OF_MESSAGES = 10
# Body plus attributes, in bytes: at or above it the payload goes to S3 (the broker's threshold).
MAX_SQS_MESSAGE_SIZE = 1_048_576
