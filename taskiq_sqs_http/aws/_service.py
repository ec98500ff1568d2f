"""What every AWS client here shares: configuration, credentials, signing and the retry loop.

The SQS and S3 clients differ only in how they build requests and parse responses; everything that decides
*whether and when to try again* lives in `_request` below, so both behave the same under throttling, clock
skew, expired tokens and broken connections.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import ClassVar, TypeVar
from urllib.parse import urlsplit

import httpx

from ._credentials import CredentialProvider, Credentials, CredentialsLike
from ._endpoints import Resolved, resolve_endpoint, resolve_region
from ._errors import AWSError, ConfigurationError, ServiceError, TransportError
from ._http import HTTPSession, RawResponse, Timeouts
from ._providers import default_credential_provider
from ._retry import CLOCK_SKEW_CODES, EXPIRED_TOKEN_CODES, RetryPolicy, RetryQuota
from ._sigv4 import SigV4Signer

__all__ = ["ServiceClient"]

_C = TypeVar("_C", bound="ServiceClient")

logger = logging.getLogger(__name__)

ErrorParser = Callable[[int, dict[str, str], bytes, str], ServiceError]

# A response Date this far from our clock means our clock is wrong, not the network slow.
_SKEW_THRESHOLD = timedelta(seconds=300)


class ServiceClient:
    """Base of `SQSClient` and `S3Client`; not used directly."""

    service: ClassVar[str] = ""

    def __init__(
        self,
        *,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        credentials: CredentialsLike | None = None,
        session: HTTPSession | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeouts: Timeouts | None = None,
        retry_policy: RetryPolicy | None = None,
        retry_quota: RetryQuota | None = None,
        verify: bool = True,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if session is not None and (http_client is not None or transport is not None):
            raise ConfigurationError(
                "pass session, or http_client/transport, not both: a session already owns a pool"
            )
        self._region: Resolved = resolve_region(region_name, environ=environ)
        self._endpoint: Resolved = resolve_endpoint(
            self.service, self._region.value, endpoint_url, environ=environ
        )
        self._credentials: CredentialProvider = default_credential_provider(
            access_key_id=aws_access_key_id,
            secret_access_key=aws_secret_access_key,
            session_token=aws_session_token,
            credentials=credentials,
            environ=environ,
        )
        if session is None:
            session = HTTPSession(
                http_client=http_client, transport=transport, timeouts=timeouts, verify=verify
            )
        session.acquire()
        self._session = session
        self.retry_policy = retry_policy or RetryPolicy()
        self._quota = retry_quota or RetryQuota()
        self._clock_offset = timedelta(0)
        self._signer: SigV4Signer | None = None
        self._signer_credentials: Credentials | None = None
        self._closed = False
        parts = urlsplit(self._endpoint.value)
        self._endpoint_scheme = parts.scheme
        self._endpoint_netloc = parts.netloc
        self._endpoint_path = parts.path.rstrip("/")

    # -- configuration, visible without secrets -------------------------------------------------------
    @property
    def region(self) -> str:
        return self._region.value

    @property
    def endpoint_url(self) -> str:
        return self._endpoint.value

    @property
    def session(self) -> HTTPSession:
        return self._session

    @property
    def credential_provider(self) -> CredentialProvider:
        return self._credentials

    def describe(self) -> str:
        """One line for startup logs: where credentials, region and endpoint came from."""
        return (
            f"{self._credentials.describe()}, region {self.region} from {self._region.source}, "
            f"{self.service} endpoint {self.endpoint_url} from {self._endpoint.source}"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(region={self.region!r}, endpoint_url={self.endpoint_url!r})"

    # -- lifecycle ----------------------------------------------------------------------------------
    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            closer = getattr(self._credentials, "aclose", None)
            if closer is not None:
                await closer()
        finally:
            await self._session.release()

    async def __aenter__(self: _C) -> _C:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- the request loop ---------------------------------------------------------------------------
    def _signer_for(self, credentials: Credentials) -> SigV4Signer:
        if credentials is not self._signer_credentials or self._signer is None:
            self._signer = SigV4Signer(credentials, self.region, self.service)
            self._signer_credentials = credentials
        return self._signer

    def _learn_clock(self, response: RawResponse) -> bool:
        """Adopt the server's clock when ours is far off; True when the offset changed."""
        date = response.headers.get("date")
        if not date:
            return False
        try:
            server = email.utils.parsedate_to_datetime(date)
        except (TypeError, ValueError):
            return False
        if server.tzinfo is None:
            server = server.replace(tzinfo=timezone.utc)
        local = datetime.now(timezone.utc)
        if abs(server - (local + self._clock_offset)) < _SKEW_THRESHOLD:
            return False
        self._clock_offset = server - local
        logger.warning(
            "local clock is %.0f s off the %s server's; signing with the server's time",
            self._clock_offset.total_seconds(),
            self.service,
        )
        return True

    async def _request(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes,
        *,
        operation: str,
        parse_error: ErrorParser,
        read_timeout: float | None = None,
        unsigned_payload: bool = False,
        long_poll: bool = False,
    ) -> RawResponse:
        attempt = 0
        skew_retried = False
        token_retried = False
        while True:
            attempt += 1
            credentials = await self._credentials.get_credentials()
            signed_offset = self._clock_offset
            now = datetime.now(timezone.utc) + signed_offset
            signed = self._signer_for(credentials).sign(
                method, url, headers, body, now=now, unsigned_payload=unsigned_payload
            )
            error: AWSError
            try:
                response = await self._session.send(
                    method,
                    url,
                    [*headers, *signed.items()],
                    body,
                    operation=operation,
                    read_timeout=read_timeout,
                )
            except TransportError as exc:
                error = exc
            else:
                if response.status < 300:
                    self._quota.release(1 if attempt == 1 else self.retry_policy.max_attempts)
                    return response
                service_error = parse_error(response.status, response.headers, response.body, operation)
                error = service_error
                # Re-sign once when this response taught us the server's clock, or when a concurrent
                # request did so after this one was signed with the old offset.
                if (
                    not skew_retried
                    and service_error.code in CLOCK_SKEW_CODES
                    and (self._learn_clock(response) or self._clock_offset != signed_offset)
                ):
                    skew_retried = True
                    attempt -= 1
                    continue
                if not token_retried and service_error.code in EXPIRED_TOKEN_CODES:
                    token_retried = True
                    self._credentials.invalidate()
                    attempt -= 1
                    continue
            if attempt >= self.retry_policy.max_attempts or not self.retry_policy.is_retryable(error):
                raise error
            if not self._quota.acquire(error) and not long_poll:
                logger.warning("%s: retry quota exhausted, not retrying %s", operation, error)
                raise error
            delay = self.retry_policy.delay(attempt, error)
            logger.info("%s: attempt %d failed (%s); retrying in %.2f s", operation, attempt, error, delay)
            await asyncio.sleep(delay)
