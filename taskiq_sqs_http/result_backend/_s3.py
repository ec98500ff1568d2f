"""S3Backend: taskiq results (and progress) as S3 objects; a drop-in for ``taskiq_aio_sqs.S3Backend``.

Object layout: the result of a task is ``<base_path>/<task id>`` holding the serializer's bytes of
``TaskiqResult.model_dump(mode="json")`` (2.1.1's layout and bytes, so either library reads the other's
results); progress is ``<base_path>/<task id>~progress``. See `_keys` for how odd task ids are encoded.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import httpx
from taskiq import AsyncResultBackend
from taskiq.abc.serializer import TaskiqSerializer
from taskiq.depends.progress_tracker import TaskProgress  # pyright: ignore[reportMissingTypeStubs]
from taskiq.result import TaskiqResult
from taskiq.serializers import ORJSONSerializer

from ..aws import (
    AWSError,
    ConfigurationError,
    HTTPSession,
    NoSuchKeyError,
    RetryPolicy,
    S3Client,
    S3Error,
    ServerSideEncryption,
    Timeouts,
    resolve_region,
)
from ..aws._credentials import CredentialsLike
from ..exceptions import (
    BrokerConfigError,
    ResultAccessDeniedError,
    ResultIsMissingError,
    S3ResultBackendError,
)
from ._keys import join_key, normalise_base_path, object_key_segment
from ._keys import server_side_encryption as _sse

__all__ = ["S3Backend"]

_ReturnType = TypeVar("_ReturnType")
_PROGRESS_SUFFIX = "~progress"
_MISSING_CODES = frozenset({"NoSuchKey", "404"})


class S3Backend(AsyncResultBackend[_ReturnType]):
    """Results in an existing S3 bucket.

    Beyond 2.1.1: ``region_name`` defaults to the resolved region; ``aws_session_token``,
    ``credentials`` and ``http_client`` as on `SQSBroker`; ``keep_results=False`` deletes a result once
    it has been read; progress is stored; ``server_side_encryption`` (``"AES256"`` or ``"aws:kms"``)
    and ``sse_kms_key_id`` encrypt what we write.
    """

    def __init__(
        self,
        bucket_name: str,
        *,
        base_path: str = "",
        endpoint_url: str | None = None,
        region_name: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        serializer: TaskiqSerializer | None = None,
        aws_session_token: str | None = None,
        credentials: CredentialsLike | None = None,
        http_client: httpx.AsyncClient | None = None,
        retry_policy: RetryPolicy | None = None,
        keep_results: bool = True,
        server_side_encryption: str | ServerSideEncryption | None = None,
        sse_kms_key_id: str | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        if not bucket_name or "/" in bucket_name:
            raise BrokerConfigError(
                error=f"bucket_name is {bucket_name!r}; it must be a non-empty bucket name without '/'"
            )
        try:
            self._base_path = normalise_base_path(base_path)
            self._encryption = _sse(server_side_encryption, sse_kms_key_id)
        except ConfigurationError as exc:
            raise BrokerConfigError(error=str(exc)) from None
        self._bucket_name = bucket_name
        self._serializer = serializer or ORJSONSerializer()
        self.keep_results = keep_results
        self._region_name = region_name
        self._client_options: dict[str, Any] = {
            "region_name": region_name,
            "endpoint_url": endpoint_url,
            "aws_access_key_id": aws_access_key_id,
            "aws_secret_access_key": aws_secret_access_key,
            "aws_session_token": aws_session_token,
            "credentials": credentials,
            # A result that cannot be saved is lost (taskiq acks anyway), so results get more attempts.
            "retry_policy": retry_policy or RetryPolicy(max_attempts=5),
        }
        self._timeouts = timeouts
        self._shared_session: HTTPSession | None = None
        self._http_client = http_client
        self._client: S3Client | None = None
        self._lock = asyncio.Lock()

    @property
    def bucket_name(self) -> str:
        return self._bucket_name

    @property
    def region_name(self) -> str:
        if self._client is not None:
            return self._client.region
        return resolve_region(self._region_name).value

    def result_key(self, task_id: str) -> str:
        """The object key of a task's result; never outside ``base_path``."""
        return join_key(self._base_path, object_key_segment(task_id))

    def progress_key(self, task_id: str) -> str:
        return self.result_key(task_id) + _PROGRESS_SUFFIX

    # -- lifecycle ------------------------------------------------------------------------------------
    async def startup(self) -> None:
        await self._get_client()
        await super().startup()

    async def shutdown(self) -> None:
        try:
            await super().shutdown()
        finally:
            client, self._client = self._client, None
            if client is not None:
                await client.aclose()

    def use_session(self, session: HTTPSession) -> None:
        """Share a broker's connection pool (SQSBroker calls this at startup when you gave us no client).

        One pool per process: the broker's SQS and S3 traffic and the results share connections.
        """
        if self._http_client is None and self._client is None:
            self._shared_session = session

    async def _get_client(self) -> S3Client:
        """One client per backend, created once (2.1.1 leaked one per call)."""
        if self._client is None:
            async with self._lock:
                if (
                    self._client is None
                    and self._shared_session is not None
                    and not self._shared_session.closed
                ):
                    self._client = S3Client(session=self._shared_session, **self._client_options)
                if self._client is None:
                    session = HTTPSession(http_client=self._http_client, timeouts=self._timeouts)
                    try:
                        self._client = S3Client(session=session, **self._client_options)
                    except AWSError as exc:
                        await session.aclose()
                        raise S3ResultBackendError(code=str(exc)) from exc
                    except BaseException:
                        await session.aclose()
                        raise
        return self._client

    # -- results --------------------------------------------------------------------------------------
    async def set_result(self, task_id: str, result: TaskiqResult[_ReturnType]) -> None:
        await self._put(
            "PutObject", self.result_key(task_id), self._serializer.dumpb(result.model_dump(mode="json"))
        )

    async def get_result(self, task_id: str, with_logs: bool = False) -> TaskiqResult[_ReturnType]:
        key = self.result_key(task_id)
        data = await self._get(task_id, key)
        if data is None:
            raise ResultIsMissingError(task_id=task_id)
        result = TaskiqResult[_ReturnType].model_validate(self._serializer.loadb(data))
        if not with_logs:
            result.log = None
        if not self.keep_results:
            await self._delete(key, self.progress_key(task_id))
        return result

    async def is_result_ready(self, task_id: str) -> bool:
        key = self.result_key(task_id)
        client = await self._get_client()
        try:
            await client.head_object(self._bucket_name, key)
        except S3Error as exc:
            if exc.code in _MISSING_CODES or exc.status == 404:
                return False
            raise self._error(exc, "HeadObject", key, "s3:GetObject") from exc
        except AWSError as exc:
            raise S3ResultBackendError(code=str(exc)) from exc
        return True

    # -- progress -------------------------------------------------------------------------------------
    async def set_progress(self, task_id: str, progress: TaskProgress[Any]) -> None:
        await self._put(
            "PutObject",
            self.progress_key(task_id),
            self._serializer.dumpb(progress.model_dump(mode="json")),
        )

    async def get_progress(self, task_id: str) -> TaskProgress[Any] | None:
        data = await self._get(task_id, self.progress_key(task_id))
        if data is None:
            return None
        return TaskProgress[Any].model_validate(self._serializer.loadb(data))

    # -- S3 calls with error mapping ------------------------------------------------------------------
    async def _put(self, operation: str, key: str, body: bytes) -> None:
        client = await self._get_client()
        try:
            await client.put_object(self._bucket_name, key, body, encryption=self._encryption)
        except AWSError as exc:
            raise self._error(exc, operation, key, "s3:PutObject") from exc

    async def _get(self, task_id: str, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        client = await self._get_client()
        try:
            response = await client.get_object(self._bucket_name, key)
        except NoSuchKeyError:
            return None
        except S3Error as exc:
            if exc.code in _MISSING_CODES or exc.status == 404:
                return None
            raise self._error(exc, "GetObject", key, "s3:GetObject") from exc
        except AWSError as exc:
            raise S3ResultBackendError(code=str(exc)) from exc
        return response.body

    async def _delete(self, *keys: str) -> None:
        client = await self._get_client()
        try:
            await client.delete_objects(self._bucket_name, list(keys))
        except AWSError as exc:
            raise self._error(exc, "DeleteObjects", keys[0], "s3:DeleteObject") from exc

    def _error(self, exc: AWSError, operation: str, key: str, permission: str) -> S3ResultBackendError:
        if isinstance(exc, S3Error) and (exc.status == 403 or exc.code in ("403", "AccessDenied")):
            return ResultAccessDeniedError(
                operation=operation, bucket=self._bucket_name, key=key, permission=permission
            )
        if isinstance(exc, S3Error):
            return S3ResultBackendError(code=f"{exc.code}: {exc.message}")
        return S3ResultBackendError(code=str(exc))
