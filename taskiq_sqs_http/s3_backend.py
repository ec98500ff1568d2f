"""taskiq-aio-sqs 2.1.1's ``s3_backend`` module: ``from taskiq_sqs_http.s3_backend import S3Backend``."""

from __future__ import annotations

from . import constants, exceptions
from .result_backend import S3Backend

__all__ = ["S3Backend", "constants", "exceptions"]
