"""Screening what ``cdp serve`` is about to log: a suppressed person's messages are never stored.

The runner screens every run's records (cdp_core/screens.py); ``cdp serve`` asks the same
hook (``cdp_record_screen``, with the graph name :data:`SERVE`) for the screens that apply to
its log, so a forgotten or suppressed person's calls and webhooks are answered as accepted
(a sender must not retry them, and must not learn who is suppressed) but never written.

- a Tracking API call is turned into the records it would become (the source's own
  conversion) and dropped when a screen keeps none of them... or any fewer: one call is one
  person;
- a webhook delivery, whose records only its reading stream makes (a Meta lead is fetched
  then), is dropped when a screen drops its body as it would drop a quarantine entry.

The screens are loaded again when they are older than :data:`TTL` seconds (a forget while
the server runs takes effect within that time), in a worker thread: never per request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from cdp_core.ingest.log import IngestEntry
from cdp_core.records import Record, Rejected
from cdp_core.screens import RecordScreen, suppressed

SERVE = "serve"
"""The graph name ``cdp serve`` passes to ``cdp_record_screen``."""
TTL = 5.0
"""Seconds a loaded suppression list is used before it is read again."""

RecordsOf = Callable[[IngestEntry], list[Record] | None]
"""The records a logged entry becomes, or None when only its reading stream can tell (a webhook)."""


class ServeScreens:
    def __init__(self, load: Callable[[], list[RecordScreen]], ttl: float = TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self._load = load
        self._ttl = ttl
        self._clock = clock
        self._screens: list[RecordScreen] = []
        self._loaded_at: float | None = None
        self._lock = threading.Lock()

    def due(self) -> bool:
        """Whether the screens must be loaded (again) before the next request is screened."""
        return self._loaded_at is None or self._clock() - self._loaded_at >= self._ttl

    def refresh(self) -> None:
        """Load the screens again (blocking: the store is read); the old ones are closed."""
        with self._lock:
            if not self.due():
                return
            screens = self._load()
            old, self._screens, self._loaded_at = self._screens, screens, self._clock()
        for screen in old:
            screen.close()

    def keep(self, entries: list[IngestEntry], records_of: RecordsOf) -> tuple[list[IngestEntry], int]:
        """The entries that may be logged, and how many were dropped as suppressed."""
        screens = self._screens
        if not screens:
            return entries, 0
        kept = [e for e in entries if not _suppressed(screens, e, records_of)]
        return kept, len(entries) - len(kept)

    def close(self) -> None:
        with self._lock:
            for screen in self._screens:
                screen.close()
            self._screens, self._loaded_at = [], None


def _suppressed(screens: list[RecordScreen], entry: IngestEntry, records_of: RecordsOf) -> bool:
    try:
        records = records_of(entry)
    except ValueError:  # a call the reading side would quarantine: judged by its body
        records = None
    if records is None:
        return suppressed(screens, Rejected(reason="", raw=entry.body, key=entry.message_id))
    return any(len(screen.keep(records)) != len(records) for screen in screens)
