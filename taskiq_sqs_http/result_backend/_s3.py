"""S3Backend: taskiq results (and progress) as S3 objects; a drop-in for ``taskiq_aio_sqs.S3Backend``.

Object layout: the result of a task is ``<base_path>/<task id>`` holding the serializer's bytes of
``TaskiqResult.model_dump(mode="json")`` (2.1.1's layout and bytes, so either library reads the other's
results); progress is ``<base_path>/<task id>~progress``. See `_keys` for how odd task ids are encoded.

Errors say which fix applies (see `_errors`): a missing bucket is configuration, rejected credentials are
not a permission problem, and what S3 answers while unavailable is transient. A result that does not exist
(yet) is the only "missing".
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any, TypeVar

import httpx
from taskiq import AsyncResultBackend
from taskiq.abc.serializer import TaskiqSerializer
from taskiq.depends.progress_tracker import TaskProgress  # pyright: ignore[reportMissingTypeStubs]
from taskiq.result import TaskiqResult
from taskiq.serializers import ORJSONSerializer

from .._validate import check_bool
from ..aws import (
    AWSError,
    ConfigurationError,
    HTTPSession,
    RetryPolicy,
    S3Client,
    S3Error,
    ServerSideEncryption,
    Timeouts,
    resolve_region,
)
from ..aws._credentials import CredentialsLike
from ..exceptions import BrokerConfigError, ResultIsMissingError, S3ResultBackendError
from ..options import ClientOptions, encryption_of
from ._errors import S3Call, is_missing_key, map_error
from ._keys import join_key, normalise_base_path, object_key_segment

__all__ = ["RESULT_RETRY_POLICY", "S3Backend"]

logger = logging.getLogger("taskiq_sqs_http.result_backend")

_ReturnType = TypeVar("_ReturnType")
_PROGRESS_SUFFIX = "~progress"

RESULT_RETRY_POLICY = RetryPolicy(max_attempts=5, base_delay=0.25, max_delay=4.0)
"""A result that cannot be saved is lost (taskiq acks the message anyway), so results get five attempts,
with waits of up to 0.25, 0.5, 1 and 2 s (full jitter; 1, 2, 4 and 4 s when S3 throttles) that outlast a
brief S3 brownout."""


class S3Backend(AsyncResultBackend[_ReturnType]):
    """Results in an S3 bucket.

    Beyond 2.1.1: ``region_name`` defaults to the resolved region; ``aws_session_token``,
    ``credentials`` and ``http_client`` as on `SQSBroker`; ``keep_results=False`` deletes a result once
    it has been read; progress is stored; ``server_side_encryption`` (``"AES256"`` or ``"aws:kms"``)
    and ``sse_kms_key_id`` encrypt what we write; ``create_bucket=True`` creates the bucket at startup
    when it is missing (2.1.1 never creates it, and neither do we by default); ``client_options`` takes
    the client settings as one `ClientOptions` value, which a broker can share.
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
        create_bucket: bool = False,
        client_options: ClientOptions | None = None,
    ) -> None:
        if not isinstance(bucket_name, str) or not bucket_name or "/" in bucket_name:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise BrokerConfigError(
                error=f"bucket_name is {bucket_name!r}; it must be a non-empty bucket name without '/'"
            )
        try:
            self._base_path = normalise_base_path(base_path)
            self._encryption = encryption_of(server_side_encryption, sse_kms_key_id)
        except ConfigurationError as exc:
            raise BrokerConfigError(error=str(exc)) from None
        self._bucket_name = bucket_name
        self._serializer = serializer or ORJSONSerializer()
        self.keep_results = check_bool("keep_results", keep_results)
        self._create_bucket = check_bool("create_bucket", create_bucket)
        flat = (endpoint_url, region_name, aws_access_key_id, aws_secret_access_key, aws_session_token)
        flat_objects = (credentials, http_client, retry_policy, timeouts)
        if client_options is not None and (any(flat) or any(o is not None for o in flat_objects)):
            raise BrokerConfigError(
                error="pass client_options or endpoint_url/region_name/credentials/http_client/"
                "retry_policy/timeouts and the access keys, not both"
            )
        if client_options is not None and not isinstance(client_options, ClientOptions):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise BrokerConfigError(
                error=f"client_options must be a ClientOptions, got {type(client_options).__name__}"
            )
        try:
            options = (
                client_options
                if client_options is not None
                else ClientOptions.from_arguments(
                    region_name=region_name,
                    endpoint_url=endpoint_url,
                    aws_access_key_id=aws_access_key_id,
                    aws_secret_access_key=aws_secret_access_key,
                    aws_session_token=aws_session_token,
                    credentials=credentials,
                    retry_policy=retry_policy,
                    timeouts=timeouts,
                    http_client=http_client,
                )
            )
        except ConfigurationError as exc:
            raise BrokerConfigError(error=str(exc)) from None
        if options.retry_policy is None:
            options = replace(options, retry_policy=RESULT_RETRY_POLICY)
        self._options = options
        self._lent_session: HTTPSession | None = None
        self._own_session: HTTPSession | None = None
        self._client: S3Client | None = None
        self._lock = asyncio.Lock()
        # HEAD answers carry no error code, so a 404 is only "no such key" once the bucket is known to exist.
        self._bucket_seen = False

    @property
    def bucket_name(self) -> str:
        return self._bucket_name

    @property
    def region_name(self) -> str:
        if self._client is not None:
            return self._client.region
        return resolve_region(self._options.region_name).value

    def result_key(self, task_id: str) -> str:
        """The object key of a task's result; never outside ``base_path``."""
        return join_key(self._base_path, object_key_segment(task_id))

    def progress_key(self, task_id: str) -> str:
        return self.result_key(task_id) + _PROGRESS_SUFFIX

    # -- lifecycle ------------------------------------------------------------------------------------
    async def startup(self) -> None:
        try:
            client = await self._get_client()
            if self._create_bucket:
                await self._ensure_bucket(client)
            await super().startup()
        except BaseException:
            await self._close()
            raise

    async def shutdown(self) -> None:
        try:
            await super().shutdown()
        finally:
            await self._close()

    def use_session(self, session: HTTPSession) -> None:
        """Borrow a broker's connection pool (SQSBroker calls this at startup when you gave us no client).

        One pool per process: the broker's SQS and S3 traffic and the results share connections. The pool
        stays the lender's: the backend closes only its own client on it, never the pool. A backend given
        its own ``http_client``, or ``timeouts`` other than the pool's, keeps a pool of its own.
        """
        timeouts = self._options.timeouts
        if (
            self._options.http_client is None
            and self._client is None
            and timeouts in (None, session.timeouts)
        ):
            self._lent_session = session

    async def _get_client(self) -> S3Client:
        """One client per backend, created once (2.1.1 leaked one per call)."""
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await self._open_client()
        return self._client

    async def _open_client(self) -> S3Client:
        lent = self._lent_session
        try:
            if lent is not None and not lent.closed:
                return self._options.s3_client(lent)
            session = self._options.open_session()
        except AWSError as exc:
            raise S3ResultBackendError(code=str(exc)) from exc
        try:
            client = self._options.s3_client(session)
        except BaseException as exc:
            await session.aclose()
            if isinstance(exc, AWSError):
                raise S3ResultBackendError(code=str(exc)) from exc
            raise
        self._own_session = session
        return client

    async def _close(self) -> None:
        """Close our client, then the pool if we opened it; a borrowed pool is left to its owner."""
        client, self._client = self._client, None
        session, self._own_session = self._own_session, None
        try:
            if client is not None:
                await client.aclose()
        finally:
            if session is not None:
                await session.aclose()

    async def _ensure_bucket(self, client: S3Client) -> None:
        """``create_bucket=True``: create the bucket unless it exists (HeadBucket first, so an existing
        bucket is never touched; in us-east-1 CreateBucket on one's own bucket succeeds and resets ACLs)."""
        bucket = self._bucket_name
        try:
            await client.head_bucket(bucket)
        except S3Error as exc:
            if exc.status == 403:
                logger.warning(
                    "cannot tell whether result bucket %r exists (HeadBucket answered 403: no "
                    "s3:ListBucket on it, wrong credentials, or another account's bucket); not creating it",
                    bucket,
                )
                return
            if exc.status != 404:
                raise self._error(exc, self._call("HeadBucket", "", "s3:ListBucket")) from exc
        except AWSError as exc:
            raise self._error(exc, self._call("HeadBucket", "", "s3:ListBucket")) from exc
        else:
            self._bucket_seen = True
            return
        try:
            await client.create_bucket(bucket)
        except S3Error as exc:
            if exc.code == "BucketAlreadyExists":
                raise S3ResultBackendError(
                    code=f"BucketAlreadyExists: bucket name {bucket!r} belongs to another AWS account "
                    "(bucket names are global); choose another bucket_name"
                ) from exc
            if exc.code != "BucketAlreadyOwnedByYou":  # created meanwhile by another process of ours
                raise self._error(exc, self._call("CreateBucket", "", "s3:CreateBucket")) from exc
        except AWSError as exc:
            raise self._error(exc, self._call("CreateBucket", "", "s3:CreateBucket")) from exc
        else:
            logger.info("created result bucket %r in %s", bucket, client.region)
        self._bucket_seen = True

    # -- results --------------------------------------------------------------------------------------
    async def set_result(self, task_id: str, result: TaskiqResult[_ReturnType]) -> None:
        await self._put(self.result_key(task_id), self._serializer.dumpb(result.model_dump(mode="json")))

    async def get_result(self, task_id: str, with_logs: bool = False) -> TaskiqResult[_ReturnType]:
        key = self.result_key(task_id)
        data = await self._get(key)
        if data is None:
            raise ResultIsMissingError(task_id=task_id)
        result = TaskiqResult[_ReturnType].model_validate(self._serializer.loadb(data))
        if not with_logs:
            result.log = None
        if not self.keep_results:
            try:
                await self._delete(key, self.progress_key(task_id))
            except S3ResultBackendError as exc:
                # The result is read: failing the call now would lose it for the caller over a cleanup.
                logger.warning(
                    "result of task %s was read but not deleted (keep_results=False): %s", task_id, exc
                )
        return result

    async def is_result_ready(self, task_id: str) -> bool:
        key = self.result_key(task_id)
        client = await self._get_client()
        try:
            await client.head_object(self._bucket_name, key)
        except S3Error as exc:
            # A HEAD answer has no body: 404 may mean the key or the bucket, 403 a permission or the
            # credentials. A GET's body names the cause; it is needed until the bucket is known to exist.
            if exc.status == 404 and self._bucket_seen:
                return False
            if exc.status in (403, 404):
                return await self._get(key) is not None
            raise self._error(exc, self._call("HeadObject", key, "s3:GetObject")) from exc
        except AWSError as exc:
            raise self._error(exc, self._call("HeadObject", key, "s3:GetObject")) from exc
        self._bucket_seen = True
        return True

    # -- progress -------------------------------------------------------------------------------------
    async def set_progress(self, task_id: str, progress: TaskProgress[Any]) -> None:
        await self._put(self.progress_key(task_id), self._serializer.dumpb(progress.model_dump(mode="json")))

    async def get_progress(self, task_id: str) -> TaskProgress[Any] | None:
        data = await self._get(self.progress_key(task_id))
        if data is None:
            return None
        return TaskProgress[Any].model_validate(self._serializer.loadb(data))

    # -- S3 calls with error mapping ------------------------------------------------------------------
    async def _put(self, key: str, body: bytes) -> None:
        client = await self._get_client()
        try:
            await client.put_object(self._bucket_name, key, body, encryption=self._encryption)
        except AWSError as exc:
            raise self._error(exc, self._call("PutObject", key, "s3:PutObject")) from exc
        self._bucket_seen = True

    async def _get(self, key: str) -> bytes | None:
        """The object's bytes, or None when the key does not exist (a missing bucket raises)."""
        client = await self._get_client()
        try:
            response = await client.get_object(self._bucket_name, key)
        except S3Error as exc:
            if is_missing_key(exc):
                self._bucket_seen = self._bucket_seen or exc.code == "NoSuchKey"
                return None
            raise self._error(exc, self._call("GetObject", key, "s3:GetObject")) from exc
        except AWSError as exc:
            raise self._error(exc, self._call("GetObject", key, "s3:GetObject")) from exc
        self._bucket_seen = True
        return response.body

    async def _delete(self, *keys: str) -> None:
        client = await self._get_client()
        try:
            await client.delete_objects(self._bucket_name, list(keys))
        except AWSError as exc:
            raise self._error(exc, self._call("DeleteObjects", keys[0], "s3:DeleteObject")) from exc

    def _call(self, operation: str, key: str, permission: str) -> S3Call:
        return S3Call(operation, self._bucket_name, key, permission)

    def _error(self, exc: AWSError, call: S3Call) -> S3ResultBackendError:
        client = self._client
        if client is None:  # only while closing; the client is set before any request
            return map_error(
                exc,
                call,
                endpoint="the configured endpoint",
                region=self.region_name,
                source="the credentials",
            )
        return map_error(
            exc,
            call,
            endpoint=client.endpoint_url,
            region=client.region,
            source=client.credential_provider.describe(),
        )
