"""What every AWS client here shares: configuration, credentials, signing and the retry loop.

The SQS and S3 clients differ only in how they build requests and parse responses; everything that decides
*whether and when to try again* lives in `_request` below, so both behave the same under throttling, clock
skew, expired tokens, broken connections and endpoints that never answer (the operation's deadline).
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import ClassVar, TypeVar
from urllib.parse import urlsplit

import httpx

from ._classify import CLOCK_SKEW_CODES, EXPIRED_TOKEN_CODES, is_throttling, throttling_hint
from ._credentials import CredentialProvider, Credentials, CredentialsLike
from ._endpoints import Resolved, resolve_endpoint, resolve_region
from ._errors import (
    AWSError,
    ConfigurationError,
    DeadlineExceededError,
    ServiceError,
    TransportError,
)
from ._http import HTTPSession, RawResponse, Timeouts
from ._providers import default_credential_provider
from ._retry import RetryPolicy, RetryQuota
from ._sigv4 import SigV4Signer

__all__ = ["ServiceClient"]

_C = TypeVar("_C", bound="ServiceClient")

logger = logging.getLogger("taskiq_sqs_http.aws")

ErrorParser = Callable[[int, dict[str, str], bytes, str], ServiceError]

# A response Date this far from our clock means our clock is wrong, not the network slow.
_SKEW_THRESHOLD = timedelta(seconds=300)
# Seconds before the deadline at which a cancellation is taken for the deadline timer's own.
_TIMER_SLACK = 0.01
# Bodies larger than this get extra time on the operation's deadline, at this many bytes per second.
_UPLOAD_ALLOWANCE_FROM = 1024 * 1024
_UPLOAD_RATE = 1024 * 1024


def check_type(name: str, value: object, expected: type | tuple[type, ...]) -> None:
    """Raise `ConfigurationError` naming the parameter when ``value`` is neither None nor ``expected``."""
    if value is None or isinstance(value, expected):
        return
    names = " or ".join(t.__name__ for t in (expected if isinstance(expected, tuple) else (expected,)))
    raise ConfigurationError(f"{name} must be {names} or None; got {type(value).__name__} ({value!r})")


class ServiceClient:
    """Base of `SQSClient` and `S3Client`; not used directly.

    Region, endpoint and credentials default to what the AWS CLI would use on this machine (arguments,
    then ``AWS_*`` variables, then ``~/.aws`` files, then the platform's credential endpoints); ``environ``
    replaces ``os.environ`` for all of them. Pass ``session`` to share a pool (the client borrows it and
    never closes it), or ``http_client``/``transport``/``timeouts``/``verify`` for the session the client
    then opens and closes itself. Every argument is checked here, naming the parameter, so a wrong value
    fails at construction rather than at the first request.
    """

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
        check_type("region_name", region_name, str)
        check_type("endpoint_url", endpoint_url, str)
        check_type("session", session, HTTPSession)
        check_type("http_client", http_client, httpx.AsyncClient)
        check_type("transport", transport, httpx.AsyncBaseTransport)
        check_type("timeouts", timeouts, Timeouts)
        check_type("retry_policy", retry_policy, RetryPolicy)
        check_type("retry_quota", retry_quota, RetryQuota)
        check_type("verify", verify, bool)
        if session is not None and (http_client is not None or transport is not None):
            raise ConfigurationError(
                "pass session, or http_client/transport, not both: a session already owns a pool"
            )
        if session is not None and timeouts is not None:
            raise ConfigurationError(
                "pass timeouts to the HTTPSession, not to a client borrowing it: the session applies them"
            )
        if session is not None:
            session.check_open()
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
        # A client closes only the session it opened; a session passed in belongs to the caller.
        self._owns_session = session is None
        if session is None:
            session = HTTPSession(
                http_client=http_client, transport=transport, timeouts=timeouts, verify=verify
            )
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
        """Stop credential refreshes, and close the HTTP session if this client opened it."""
        if self._closed:
            return
        self._closed = True
        try:
            closer = getattr(self._credentials, "aclose", None)
            if closer is not None:
                await closer()
        finally:
            if self._owns_session:
                await self._session.aclose()

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
        extra_deadline: float = 0.0,
    ) -> RawResponse:
        """Sign, send and retry until success, a final error, or the operation's deadline.

        The deadline is ``Timeouts.total``, plus ``extra_deadline`` (the wait time of a long poll), plus
        a second per MiB of a body over 1 MiB. It is one timer for the whole operation: when it fires, the
        attempt or backoff wait in progress is cancelled and `DeadlineExceededError` raised. A
        cancellation from outside passes through as is.
        """
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        budget = self._session.timeouts.total + extra_deadline
        if len(body) > _UPLOAD_ALLOWANCE_FROM:
            # A large upload on a slow link is not a dead endpoint: give it time at a modest rate.
            budget += len(body) / _UPLOAD_RATE
        deadline = loop.time() + budget
        sent = 0
        body_sha256: str | None = None
        last_error = ""
        # One timer per operation (not per attempt): it cancels this task when the deadline passes.
        timer = loop.call_at(deadline, task.cancel) if task is not None else None
        try:
            skew_retried = False
            token_retried = False
            attempt = 0
            while True:
                attempt += 1
                credentials = await self._credentials.get_credentials()
                signed_offset = self._clock_offset
                now = datetime.now(timezone.utc) + signed_offset
                if credentials.expiration is not None and credentials.expiration <= now:
                    credentials.check_not_expired(now)
                if body_sha256 is None and not unsigned_payload:
                    body_sha256 = hashlib.sha256(body).hexdigest()  # once per request, not per attempt
                signed = self._signer_for(credentials).sign(
                    method,
                    url,
                    headers,
                    body,
                    now=now,
                    unsigned_payload=unsigned_payload,
                    body_sha256=body_sha256,
                )
                error: AWSError
                sent += 1
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
                last_error = str(error)
                if attempt >= self.retry_policy.max_attempts or not self.retry_policy.is_retryable(error):
                    raise error
                if not self._quota.acquire(error) and not long_poll:
                    logger.warning("%s: retry quota exhausted, not retrying %s", operation, error)
                    raise error
                delay = self.retry_policy.delay(attempt, error)
                if loop.time() + delay >= deadline:
                    raise DeadlineExceededError(
                        operation=operation, deadline=budget, attempts=sent, last_error=last_error
                    ) from error
                if isinstance(error, ServiceError) and is_throttling(error):
                    logger.warning(
                        "%s throttled by %s (%s): %s; retrying in %.2f s (attempt %d of %d)",
                        operation,
                        self.service,
                        error.code,
                        throttling_hint(error),
                        delay,
                        attempt,
                        self.retry_policy.max_attempts,
                    )
                else:
                    logger.info(
                        "%s: attempt %d failed (%s); retrying in %.2f s", operation, attempt, error, delay
                    )
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            # Ours when the deadline has passed (the loop may run a timer up to its clock resolution
            # early) and no other cancellation is pending (uncancel: Python 3.11+).
            uncancel: Callable[[], int] | None = getattr(task, "uncancel", None)
            if loop.time() >= deadline - _TIMER_SLACK and (uncancel is None or uncancel() == 0):
                raise DeadlineExceededError(
                    operation=operation, deadline=budget, attempts=sent, last_error=last_error
                ) from None
            raise
        finally:
            if timer is not None:
                timer.cancel()
