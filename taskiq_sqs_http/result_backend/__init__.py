"""The taskiq result backend on S3."""

from ._s3 import S3Backend

__all__ = ["S3Backend"]
