"""The client factory: one per process (the runner's), bound per connector; and :func:`client_for`.

The factory holds what all clients of a process share: the config's redactor,
the injected clock and sleep, and one :class:`~cdp_core.http.limits.Limiter` per
connector (and scope), so every client of a connector obeys the same rate limit
and concurrency cap.
"""

from __future__ import annotations

import logging
import random as _random
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from cdp_core import __version__
from cdp_core.http.auth import SecretAuth
from cdp_core.http.client import Explain, HttpClient, RetryPolicy, Timeouts, _timeouts
from cdp_core.http.errors import log_url
from cdp_core.http.limits import Clock, Limiter, RateLimit, RatePolicy, Sleep
from cdp_core.secrets import Redactor

if TYPE_CHECKING:
    from cdp_core.base import ConnectorContext

log = logging.getLogger("cdp.http")


@dataclass
class _Shared:
    """State shared by a factory and the connector-bound factories made from it."""

    limiters: dict[tuple[str, str], Limiter] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class HttpFactory:
    """Makes :class:`HttpClient` s; one per process (the runner's), bound per connector.

    :param redactor: the config's :class:`~cdp_core.secrets.Redactor`: its values never
        appear in a log line or an error; the clients add their auth's secrets to it.
    :param sleep: how to wait (``time.sleep``); tests pass a recording no-op.
    :param clock: monotonic seconds for rate limits, deadlines and durations.
    :param random: a number in [0, 1) for the backoff jitter.
    :param timeouts: / :param retry: defaults for the clients it makes.
    :param connector: the connector this factory is bound to (see :meth:`for_connector`).
    """

    def __init__(
        self,
        *,
        redactor: Redactor | None = None,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        random: Callable[[], float] = _random.random,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        user_agent: str = f"cdp/{__version__}",
        connector: str | None = None,
        _shared: _Shared | None = None,
    ) -> None:
        self.redactor = redactor if redactor is not None else Redactor()
        self.sleep, self.clock, self.random = sleep, clock, random
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetryPolicy()
        self.user_agent = user_agent
        self.connector = connector
        self._shared = _shared or _Shared()
        _REDACTORS.add(self.redactor)

    def for_connector(self, name: str, *, redactor: Redactor | None = None) -> HttpFactory:
        """The same factory bound to connector ``name``: same limits, clock and sleep.

        ``redactor`` replaces the factory's (the runner passes the config's).
        """
        return HttpFactory(
            redactor=redactor if redactor is not None else self.redactor,
            sleep=self.sleep, clock=self.clock, random=self.random, timeouts=self.timeouts, retry=self.retry, user_agent=self.user_agent, connector=name,
            _shared=self._shared,
        )  # fmt: skip

    def limiter(
        self, connector: str, scope: str = "default", rate: RateLimit | None = None, max_concurrency: int | None = None
    ) -> Limiter:
        """The limiter of ``connector`` (and ``scope``), made with these limits on first use."""
        key = (connector, scope)
        with self._shared.lock:
            limiter = self._shared.limiters.get(key)
            if limiter is None:
                limiter = Limiter(rate, max_concurrency, clock=self.clock, sleep=self.sleep)
                self._shared.limiters[key] = limiter
            elif (rate, max_concurrency) != (limiter.rate, limiter.max_concurrency) and (rate or max_concurrency):
                log.warning(
                    "connector %s (scope %s) already has limits %s / %s; keeping them, not %s / %s",
                    connector, scope, limiter.rate, limiter.max_concurrency, rate, max_concurrency,
                )  # fmt: skip
            return limiter

    def client(
        self,
        *,
        base_url: str = "",
        auth: httpx.Auth | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        rate_limit: RateLimit | None = None,
        max_concurrency: int | None = None,
        timeout: Timeouts | float | None = None,
        retry: RetryPolicy | None = None,
        rate_policy: RatePolicy | None = None,
        scope: str = "default",
        connector: str | None = None,
        follow_redirects: bool = True,
        explain: Explain | None = None,
    ) -> HttpClient:
        """A new client for one connector (the bound one unless ``connector`` is given).

        :param rate_limit: / :param max_concurrency: the connector's limits, shared by
            all its clients of the same ``scope``; the first client to set them wins.
        :param timeout: a :class:`Timeouts` or one number for connect, read and write.
        :param rate_policy: reads the vendor's rate headers (:class:`LeakyBucketHeader`).
        :param explain: reads the vendor's reason from a failed response's body; it is added
            to the error's message (redacted, cut to 300 characters): ``404 Not Found: Form not found``.
        """
        name = connector or self.connector or "http"
        timeouts = _timeouts(timeout, self.timeouts)
        if isinstance(auth, SecretAuth):
            for value in auth.secrets():
                self.redactor.add(value)
            if hasattr(auth, "on_secret"):
                auth.on_secret = self.redactor.add
        return HttpClient(
            connector=name,
            base_url=base_url,
            auth=auth,
            headers={"User-Agent": self.user_agent, **dict(headers or {})},
            params=params,
            limiter=self.limiter(name, scope, rate_limit, max_concurrency),
            timeouts=timeouts,
            retry=retry or self.retry,
            rate_policy=rate_policy,
            factory=self,
            follow_redirects=follow_redirects,
            explain=explain,
        )


# -- the default factory and the plugin's entry point -----------------------------------------

_default: HttpFactory | None = None
_default_lock = threading.Lock()


def default_factory() -> HttpFactory:
    """The process's factory for contexts without an ``"http"`` service (made on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = HttpFactory()
        return _default


def set_default_factory(factory: HttpFactory | None) -> HttpFactory | None:
    """Replace the default factory (None: a fresh one on next use); return the previous one."""
    global _default
    with _default_lock:
        previous, _default = _default, factory
        return previous


def client_for(context: ConnectorContext, **options: Any) -> HttpClient:
    """A client for the connector of ``context``: what a plugin calls.

    Uses ``context.services["http"]`` (the runner's factory, with the config's
    redactor) or, where a context has none (a hand-made one), the default factory.
    ``options`` are :meth:`HttpFactory.client`'s.
    """
    factory = context.services.get("http")
    if not isinstance(factory, HttpFactory):
        factory = default_factory()
    options.setdefault("connector", context.name)
    return factory.client(**options)


# -- httpx's own request log -------------------------------------------------------------------

_REDACTORS: weakref.WeakSet[Redactor] = weakref.WeakSet()


class _HttpxLogFilter(logging.Filter):
    """httpx logs every request at INFO with its full URL: mask query secrets and known values there too."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 2 and isinstance(args[1], (httpx.URL, str)):
            url = log_url(args[1])
            for redactor in list(_REDACTORS):
                url = redactor(url)
            record.args = (args[0], url, *args[2:])
        return True


if not any(isinstance(f, _HttpxLogFilter) for f in logging.getLogger("httpx").filters):
    logging.getLogger("httpx").addFilter(_HttpxLogFilter())
