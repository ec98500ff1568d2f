"""S3 over REST (XML errors)."""

from ._client import (
    DeleteObjectsResult,
    GetObjectResult,
    HeadObjectResult,
    S3Client,
    ServerSideEncryption,
)

__all__ = [
    "DeleteObjectsResult",
    "GetObjectResult",
    "HeadObjectResult",
    "S3Client",
    "ServerSideEncryption",
]
