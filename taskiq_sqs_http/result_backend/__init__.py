"""The taskiq result backend on S3, and the errors that say which fix applies when it fails."""

from ._errors import ResultBackendUnavailableError, ResultBucketMissingError, ResultCredentialsError
from ._s3 import S3Backend

__all__ = [
    "ResultBackendUnavailableError",
    "ResultBucketMissingError",
    "ResultCredentialsError",
    "S3Backend",
]
