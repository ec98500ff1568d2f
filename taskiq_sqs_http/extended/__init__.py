"""Extended (S3-offloaded) messages: both pointer formats, size decisions, trusted buckets.

Imports only the client layer (`taskiq_sqs_http.aws`), never taskiq.
"""

from ._offload import OffloadBucketMissingError, PayloadStore, PayloadUnavailableError
from ._pointer import PayloadFormat, PointerError, S3Pointer, decode_pointer, encode_pointer

__all__ = [
    "OffloadBucketMissingError",
    "PayloadFormat",
    "PayloadStore",
    "PayloadUnavailableError",
    "PointerError",
    "S3Pointer",
    "decode_pointer",
    "encode_pointer",
]
