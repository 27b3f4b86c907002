"""A token bucket per write key: ``rate_limit = { per_second, burst }`` counts messages."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class TokenBucket:
    """``per_second`` tokens a second, at most ``capacity`` saved up; a message takes one."""

    def __init__(self, per_second: float, capacity: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self.capacity = capacity
        self.clock = clock
        self._tokens = capacity
        self._at = clock()
        self._lock = threading.Lock()

    def take(self, count: int) -> float:
        """Take ``count`` tokens: 0.0 when granted, else the seconds until they would be (nothing taken)."""
        with self._lock:
            now = self.clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.per_second)
            self._at = now
            if count <= self._tokens:
                self._tokens -= count
                return 0.0
            if count > self.capacity:
                return math.inf  # never at once: the caller says so
            return (count - self._tokens) / self.per_second
