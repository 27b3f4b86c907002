"""Pacing of one connector's requests: a rate limit, a concurrency cap and vendor back-off.

One :class:`Limiter` exists per connector (and *scope*, for vendors with a separate
budget for some endpoints, such as HubSpot's search API); every client of that
connector made by the same :class:`~cdp_core.http.HttpFactory` shares it, across
threads. The clock and the sleep function are injected, so tests never wait.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

Clock = Callable[[], float]
"""Monotonic seconds (``time.monotonic``)."""
Sleep = Callable[[float], None]
"""Block for that many seconds (``time.sleep``)."""
RatePolicy = Callable[[httpx.Response], "float | None"]
"""Reads a vendor's rate headers from every response; returns seconds to hold the connector's next request."""


@dataclass(frozen=True)
class RateLimit:
    """At most ``requests`` requests per ``per`` seconds, spaced evenly.

    ``RateLimit(190, per=10)`` (HubSpot private apps) lets one request go every
    10/190 s. ``burst`` requests may go back to back after an idle time; the default
    1 never exceeds ``requests`` in any window of ``per`` seconds.
    """

    requests: int
    per: float = 1.0
    burst: int = 1

    def __post_init__(self) -> None:
        if self.requests < 1 or self.per <= 0 or self.burst < 1:
            raise ValueError(f"invalid rate limit {self!r}: requests and burst >= 1, per > 0")

    @property
    def interval(self) -> float:
        """Seconds between two requests at the sustained rate."""
        return self.per / self.requests


class Limiter:
    """The rate limit, concurrency cap and hold of one connector, shared by all its clients.

    The rate limit is a token bucket in its GCRA form (a reservation per request,
    so threads never race for tokens). :meth:`hold` pushes every next request of
    the connector back (``Retry-After``, a vendor's "bucket almost full" header).
    """

    def __init__(
        self,
        rate: RateLimit | None = None,
        max_concurrency: int | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if max_concurrency is not None and max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self.rate = rate
        self.max_concurrency = max_concurrency
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._tat = float("-inf")  # theoretical arrival time of the next request
        self._not_before = float("-inf")
        self._slots = threading.BoundedSemaphore(max_concurrency) if max_concurrency else None
        self.in_flight = 0
        self.max_in_flight = 0
        """The most requests seen in flight at once (tests check the cap with it)."""

    def reserve(self) -> float:
        """Reserve the next request's start time; return how long to wait for it (seconds, >= 0)."""
        with self._lock:
            now = self._clock()
            start = max(now, self._not_before)
            if self.rate is not None:
                interval = self.rate.interval
                tolerance = (self.rate.burst - 1) * interval
                start = max(start, self._tat - tolerance)
                self._tat = max(self._tat, start) + interval
            return start - now

    def hold(self, seconds: float) -> None:
        """Let no request of this connector start for ``seconds`` from now."""
        if seconds > 0:
            with self._lock:
                self._not_before = max(self._not_before, self._clock() + seconds)

    @contextmanager
    def slot(self) -> Iterator[float]:
        """Wait for a concurrency slot and the rate limit; yields the seconds waited for the rate."""
        if self._slots is not None:
            self._slots.acquire()
        try:
            wait = self.reserve()
            if wait > 0:
                self._sleep(wait)
            with self._lock:
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                yield wait
            finally:
                with self._lock:
                    self.in_flight -= 1
        finally:
            if self._slots is not None:
                self._slots.release()


_CALL_LIMIT = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class LeakyBucketHeader:
    """A :data:`RatePolicy` for "used/size" headers of leaky-bucket APIs (Shopify REST).

    Shopify answers ``X-Shopify-Shop-Api-Call-Limit: 32/40``: 32 of the bucket's 40
    places are taken and it drains ``leak_rate`` (2) requests per second. Once the
    bucket is fuller than ``threshold`` of its size, the connector's next request
    waits until it has drained back to that level, so a 429 is rarely reached.
    """

    header: str = "X-Shopify-Shop-Api-Call-Limit"
    leak_rate: float = 2.0
    threshold: float = 0.75

    def __call__(self, response: httpx.Response) -> float | None:
        match = _CALL_LIMIT.match(response.headers.get(self.header, ""))
        if not match:
            return None
        used, size = int(match.group(1)), int(match.group(2))
        excess = used - self.threshold * size
        return excess / self.leak_rate if excess > 0 and self.leak_rate > 0 else None


class FakeClock:
    """A clock that moves only when slept on: for tests (``HttpFactory(clock=c, sleep=c.sleep)``).

    ``sleeps`` lists every sleep asked for, in order; ``now`` is the current time.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += max(seconds, 0.0)

    def advance(self, seconds: float) -> None:
        """Let time pass without recording a sleep."""
        with self._lock:
            self.now += seconds
