"""Meta's answers to ``GET /{leadgen_id}`` in one run, so that each logged lead is fetched once.

``webhook_leads`` and ``webhook_submissions`` read the same logged leads, and the runner
reads a graph's source nodes one after the other, each to its end. The first of the two
streams to reach a lead asks Meta; its answer (the lead's JSON, or the reason Meta refused
the lead for good) is kept here, and the other stream makes its record from that same
answer: half the calls against Meta's rate limits, and a lead and its submission made from
one version of the lead. What stops a read (a token or permission error, throttling, 5xx
that outlast the retries) is not kept: the other stream asks again, and the stream that
stopped asks again when it resumes in a later run.

The answers live in a private temporary SQLite database (``sqlite3.connect("")``): SQLite
deletes its file when the connection closes (on Unix at once, so not even a crash leaves
it behind), and holds no more than its page cache in memory (a SQLite built to keep
temporary databases in memory, ``SQLITE_TEMP_STORE=3``, would keep them there). A long
log costs disk, not memory. The source owns one and closes it with itself: an answer
never outlives its run.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from cdp_core.webhooks import EntryRejected

SCHEMA = "CREATE TABLE answers (lead_id TEXT PRIMARY KEY, body TEXT, refused TEXT)"


class FetchedLeads:
    """The run's answers by lead id (see the module's docs); the database is made on first use."""

    def __init__(self) -> None:
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # a source may be shared by threads; sqlite3 connections may not

    def answer(self, lead_id: str, ask: Callable[[], Any]) -> Any:
        """The lead's JSON: the answer kept from earlier in the run, else ``ask()``'s, then kept.

        :raises EntryRejected: Meta refused the lead for good, now or earlier in the run.
        """
        with self._lock:
            rows = self._connection().execute("SELECT body, refused FROM answers WHERE lead_id = ?", (lead_id,))
            kept = rows.fetchone()
        if kept is not None:
            body, refused = kept
            if refused is not None:
                raise EntryRejected(refused)
            return json.loads(body)
        try:
            found = ask()
        except EntryRejected as exc:
            self._keep(lead_id, None, str(exc))
            raise
        self._keep(lead_id, json.dumps(found), None)
        return found

    def _keep(self, lead_id: str, body: str | None, refused: str | None) -> None:
        with self._lock:
            self._connection().execute(
                "INSERT OR REPLACE INTO answers (lead_id, body, refused) VALUES (?, ?, ?)", (lead_id, body, refused)
            )

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            # autocommit; no journal nor sync: a scratch database nobody reads after a crash
            db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode = OFF")
            db.execute("PRAGMA synchronous = OFF")
            db.execute(SCHEMA)
            self._db = db
        return self._db

    def close(self) -> None:
        """Drop every answer (SQLite deletes the database)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
