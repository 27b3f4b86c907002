"""The HTTP client of one connector, its timeouts and its retry policy.

A :class:`HttpClient` wraps one ``httpx.Client`` (httpx's standard transport, so
``respx`` mocks it) and sends every request through one loop: wait for the
connector's rate limit and a concurrency slot, send, log, read the vendor's rate
headers, and retry what is worth retrying with full-jitter exponential backoff or
the server's ``Retry-After``, within a number of attempts, a total of sleeping and
a deadline. What fails for good raises an :class:`~cdp_core.http.errors.HttpError`.

The retry loop is written out rather than built with tenacity: the clock and the
sleep it needs are the limiter's injected ones (tenacity measures its stop delay
with ``time.monotonic``), and ``Retry-After``, the shared hold, the idempotency
rule and the sleep budget read more plainly in one loop of a few lines.
"""

from __future__ import annotations

import email.utils
import logging
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Self

import httpx
from httpx import Request, Response  # in HttpClient, its `httpx` property shadows the module in annotations

from cdp_core.http.errors import (
    CONNECTOR_EXTENSION,
    HttpError,
    NetworkError,
    RateLimited,
    ServerError,
    error_url,
    log_url,
    response_json,
    status_error,
)
from cdp_core.http.limits import Limiter, RatePolicy
from cdp_core.secrets import cut
from cdp_core.timeutil import as_utc, utc_now

if TYPE_CHECKING:
    from cdp_core.http.factory import HttpFactory

log = logging.getLogger("cdp.http")

Explain = Callable[[httpx.Response], str | None]
"""Reads a vendor's reason out of a failed response's body (HubSpot's ``message``, Typeform's ``description``)."""
MAX_REASON = 300

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Transport errors raised before the request reached the server: safe to retry for any method."""


@dataclass(frozen=True)
class Timeouts:
    """Seconds. ``total`` bounds one call with all its attempts and waits (None: no bound)."""

    connect: float = 10.0
    read: float = 60.0
    write: float = 60.0
    pool: float = 30.0
    total: float | None = 300.0

    def for_attempt(self, remaining: float | None) -> httpx.Timeout:
        def cap(value: float) -> float:
            return max(0.001, min(value, remaining)) if remaining is not None else value

        return httpx.Timeout(connect=cap(self.connect), read=cap(self.read), write=cap(self.write), pool=cap(self.pool))


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to retry.

    Attempt ``n`` (1-based) that failed waits a random time between 0 and
    ``min(backoff_max, backoff * 2 ** (n - 1))`` (full jitter), or what the server's
    ``Retry-After`` says, capped at ``retry_after_max``. Retrying stops after
    ``max_attempts`` sends, or when the next wait would bring the call's sleeping
    above ``max_wait``. Only methods in ``idempotent_methods`` are retried unless the
    call says ``idempotent=True``; a request that never reached the server (connect
    error or timeout) is retried whatever its method.
    """

    max_attempts: int = 5
    backoff: float = 1.0
    backoff_max: float = 30.0
    max_wait: float = 120.0
    retry_after_max: float = 60.0
    statuses: frozenset[int] = RETRY_STATUSES
    idempotent_methods: frozenset[str] = IDEMPOTENT_METHODS

    def backoff_for(self, attempt: int, rand: float) -> float:
        return rand * min(self.backoff_max, self.backoff * 2 ** (attempt - 1))


def retry_after(response: httpx.Response, now: Callable[[], datetime] = utc_now) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or HTTP-date form), or None."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, (as_utc(when) - now()).total_seconds())


def server_time(response: httpx.Response, now: Callable[[], datetime] = utc_now) -> datetime:
    """When the server answered (its ``Date`` header), else ``now()``: where an incremental read that
    pages in another order than its cursor field caps its mark (``Incremental.to_cursor(cap=...)``)."""
    value = response.headers.get("Date", "").strip()
    if value:
        try:
            return as_utc(email.utils.parsedate_to_datetime(value))
        except (TypeError, ValueError, IndexError):
            pass
    return now()


class _DeadlineStream(httpx.SyncByteStream):
    """A response body that fails with ``ReadTimeout`` once the call's total time limit has passed."""

    def __init__(self, inner: Any, request: Request, clock: Callable[[], float], deadline: float) -> None:
        self.inner, self.request, self.clock, self.deadline = inner, request, clock, deadline

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            if self.clock() > self.deadline:
                raise httpx.ReadTimeout(
                    "the response body was still arriving when the call's total time limit ran out", request=self.request
                )
            yield chunk

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


def _timeouts(value: Timeouts | float | None, default: Timeouts) -> Timeouts:
    """A :class:`Timeouts` from a ``timeout=`` argument: one number sets connect, read and write."""
    if value is None:
        return default
    if isinstance(value, Timeouts):
        return value
    seconds = float(value)
    return Timeouts(connect=seconds, read=seconds, write=seconds, pool=default.pool, total=default.total)


class HttpClient:
    """A synchronous HTTP client of one connector; close it when done (or use ``with``).

    ``get``/``post``/``put``/``patch``/``delete``/``request`` take httpx's keyword
    arguments (``params``, ``json``, ``data``, ``headers``...) and return the
    ``httpx.Response`` of a status below 400 (or listed in ``allow_status``);
    anything else raises an :class:`~cdp_core.http.errors.HttpError`.
    """

    def __init__(
        self,
        *,
        connector: str,
        base_url: str,
        auth: httpx.Auth | None,
        headers: dict[str, str],
        params: Mapping[str, Any] | None,
        limiter: Limiter,
        timeouts: Timeouts,
        retry: RetryPolicy,
        rate_policy: RatePolicy | None,
        factory: HttpFactory,
        follow_redirects: bool,
        explain: Explain | None = None,
    ) -> None:
        self.connector = connector
        self.base_url = base_url
        self.limiter, self.timeouts, self.retry, self.rate_policy = limiter, timeouts, retry, rate_policy
        self._factory = factory
        self.explain = explain
        self._options: dict[str, Any] = {
            "base_url": base_url, "auth": auth, "headers": headers, "params": params,
            "follow_redirects": follow_redirects,
        }  # fmt: skip
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self.log = logging.getLogger(f"cdp.http.{connector}")

    @property
    def httpx(self) -> httpx.Client:
        """The underlying ``httpx.Client``, made on first use (so building a source does no I/O)."""
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(**self._options)
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, url: str, **kwargs: Any) -> Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> Response:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> Response:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Response:
        return self.request("DELETE", url, **kwargs)

    def get_json(self, url: str, model: Any = None, **kwargs: Any) -> Any:
        """GET and :func:`~cdp_core.http.errors.response_json` (validated with ``model`` if given)."""
        return response_json(self.request("GET", url, **kwargs), model, connector=self.connector)

    def request_json(self, method: str, url: str, model: Any = None, **kwargs: Any) -> Any:
        """Any method, then :func:`~cdp_core.http.errors.response_json`."""
        return response_json(self.request(method, url, **kwargs), model, connector=self.connector)

    def request(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool | None = None,
        allow_status: Collection[int] = (),
        timeout: Timeouts | float | None = None,
        **kwargs: Any,
    ) -> Response:
        """Send with retries; return the response or raise an ``HttpError``.

        :param idempotent: True marks a POST or PATCH safe to send again (a search,
            an upsert); default: by method (GET, HEAD, OPTIONS, PUT, DELETE are).
        :param allow_status: statuses of 400 and above to return instead of raising (``{404}``).
        :param timeout: this call's timeouts instead of the client's.
        Other keyword arguments are ``httpx.Client.build_request``'s (``params``, ``json``...).
        """
        method = method.upper()
        retry, clock = self.retry, self._factory.clock
        timeouts = _timeouts(timeout, self.timeouts)
        safe = idempotent if idempotent is not None else method in retry.idempotent_methods
        deadline = clock() + timeouts.total if timeouts.total is not None else None
        slept, attempt = 0.0, 0
        while True:
            attempt += 1
            remaining = deadline - clock() if deadline is not None else None
            request = self.httpx.build_request(method, url, timeout=timeouts.for_attempt(remaining), **kwargs)
            request.extensions = {**request.extensions, CONNECTOR_EXTENSION: self.connector}
            where = f"{method} {log_url(request.url, self._factory.redactor)}"
            response, failure = self._send(request, where, attempt, deadline)
            wait: float | None = None
            if response is None:
                if safe or isinstance(failure, (*_NOT_SENT, RateLimited, ServerError)):
                    wait = retry.backoff_for(attempt, self._factory.random())
            else:
                self._apply_rate_policy(response)
                status = response.status_code
                if status < 400 or status in allow_status:
                    return response
                asked = retry_after(response)
                if asked is not None:
                    asked = min(asked, retry.retry_after_max)
                    if status == 429:
                        self.limiter.hold(asked)  # every client of the connector waits too
                if status in retry.statuses and safe:
                    wait = asked if asked is not None else retry.backoff_for(attempt, self._factory.random())
            if wait is not None and self._may_retry(attempt, slept, wait, deadline):
                what = f"{response.status_code}" if response is not None else type(failure).__name__
                self.log.info(
                    "%s -> %s; retrying in %.2fs (attempt %d/%d)", where, what, wait, attempt, retry.max_attempts
                )
                if wait > 0:
                    self._factory.sleep(wait)
                slept += wait
                continue
            raise self._error(method, request, response, failure, attempt)

    def _send(
        self, request: Request, where: str, attempt: int, deadline: float | None = None
    ) -> tuple[Response, None] | tuple[None, BaseException]:
        """One send inside the connector's limits: the response, or the transport failure.

        The body is read here, chunk by chunk, against the call's ``deadline``: httpx's read
        timeout bounds each wait for a chunk, not the body, so a server trickling a byte at
        a time would otherwise hold the call for ever.
        """
        clock, attempts = self._factory.clock, self.retry.max_attempts
        with self.limiter.slot():
            started = clock()
            try:
                response = self.httpx.send(request, stream=True)
                try:
                    if deadline is not None:
                        response.stream = _DeadlineStream(response.stream, request, clock, deadline)
                    response.read()
                finally:
                    response.close()
            except httpx.TransportError as exc:
                self.log.debug(
                    "%s -> %s in %.3fs (attempt %d/%d)", where, type(exc).__name__, clock() - started, attempt, attempts
                )
                return None, exc
            except (RateLimited, ServerError) as exc:  # the OAuth2 token endpoint failing: worth a retry
                return None, exc
            except HttpError as exc:  # the OAuth2 refresh was refused
                exc.connector, exc.attempts = exc.connector or self.connector, attempt
                raise
        self.log.debug(
            "%s -> %d in %.3fs (attempt %d/%d)", where, response.status_code, clock() - started, attempt, attempts
        )
        return response, None

    def _may_retry(self, attempt: int, slept: float, wait: float, deadline: float | None) -> bool:
        if attempt >= self.retry.max_attempts or slept + wait > self.retry.max_wait:
            return False
        return deadline is None or self._factory.clock() + wait < deadline

    def _apply_rate_policy(self, response: Response) -> None:
        if self.rate_policy is None:
            return
        delay = self.rate_policy(response)
        if delay:
            self.log.debug("rate headers: holding connector %s for %.2fs", self.connector, delay)
            self.limiter.hold(delay)

    def _error(
        self,
        method: str,
        request: Request,
        response: Response | None,
        failure: BaseException | None,
        attempt: int,
    ) -> HttpError:
        url = error_url(request.url, self._factory.redactor)
        common: dict[str, Any] = {"connector": self.connector, "method": method, "url": url, "attempts": attempt}
        if isinstance(failure, HttpError):
            failure.connector, failure.attempts = self.connector, attempt
            return failure
        if response is None:
            kind = "timed out" if isinstance(failure, httpx.TimeoutException) else "failed"
            detail = self._factory.redactor(f"the request {kind}: {type(failure).__name__}: {failure}".rstrip(": "))
            error = NetworkError(detail, **common)
            error.__cause__ = failure
            return error
        status = response.status_code
        cls = status_error(status)
        detail = f"{status} {response.reason_phrase}".strip()
        reason = self._vendor_reason(response)
        if reason:
            detail += f": {reason}"
        return cls(detail, status=status, response=response, **common)

    def _vendor_reason(self, response: Response) -> str | None:
        """The vendor's own reason for a failed call (the plugin's ``explain``), redacted, then cut to 300 characters."""
        if self.explain is None:
            return None
        try:
            reason = self.explain(response)
        except Exception:  # noqa: BLE001 - an unreadable error body leaves the status line alone
            return None
        if not reason:
            return None
        return cut(" ".join(str(reason).split()), MAX_REASON, self._factory.redactor)
