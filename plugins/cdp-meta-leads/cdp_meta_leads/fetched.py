"""What Meta answered in one run, so that two streams of a source do not ask Meta the same twice.

The runner builds one source per connector for a run and reads the graph's source nodes
one after the other, each to its end: ``leads`` and ``submissions`` (and ``webhook_leads``
and ``webhook_submissions``) make their records from the same leads. Meta counts every
call against the app's rate limits (Business Use Case rate limits), so the first stream
to ask keeps Meta's answer here and the other makes its records from that same answer:
half the calls, and a lead and its submission made from one version of the lead.

- :class:`FetchedLeads`: the answers to ``GET /{leadgen_id}`` (the webhook streams). What
  stops a read (a token or permission error, throttling, 5xx that outlast the retries) is
  not kept: the other stream asks for that lead itself, and the stream that stopped asks
  again when it resumes in a later run.
- :class:`FetchedPages`: the pages of ``GET /{form_id}/leads`` (the pull streams), by the
  whole request (form, fields, page size, ``filtering`` from the stream's mark, ``after``).
  Two streams at the same mark send the same requests in the same order, so the second is
  answered page by page from the first one's read; a stream whose cursor differs (one that
  failed or was added later) sends other requests and asks Meta for them, exactly as it
  would alone, and both are at the same mark again after the run. Each stream still
  validates every page (a malformed one fails both the same way) and keeps its own
  cursor. An error that ended a request for good (what the core's retries on 429, 5xx
  and timeouts, or Meta's throttling codes, did not get past; a token or permission
  error) is kept too: the other stream fails at that same page with the same error
  instead of asking a failing API again, so neither commits past what it delivered, and
  both resume from the same page in the next run. A request Meta refuses as wrong (a
  ``ClientError``: an unknown form, a saved paging cursor it no longer takes) is not
  kept: it costs one call, and the same cursor met again in a fresh read is asked for.

The answers live in a private temporary SQLite database (``sqlite3.connect("")``): SQLite
deletes its file when the connection closes (on Unix at once, so not even a crash leaves
it behind), and holds no more than its page cache in memory (a SQLite built to keep
temporary databases in memory, ``SQLITE_TEMP_STORE=3``, would keep them there). A big
form or a long log costs disk, not memory. The source owns one and closes it with itself:
an answer never outlives its run, and the next run asks Meta again.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx
from cdp_core.http import ClientError, HttpError
from cdp_core.webhooks import EntryRejected

if TYPE_CHECKING:
    from cdp_meta_leads.graph import GraphClient

log = logging.getLogger("cdp.meta_leads")

SCHEMA = (
    "CREATE TABLE answers (lead_id TEXT PRIMARY KEY, body TEXT, refused TEXT)",
    "CREATE TABLE pages (request TEXT PRIMARY KEY, url TEXT NOT NULL, status INTEGER NOT NULL, "
    "content_type TEXT, body BLOB NOT NULL)",
)


class Scratch:
    """The run's private temporary database (see the module's docs); made on first use."""

    def __init__(self) -> None:
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # a source may be shared by threads; sqlite3 connections may not

    def one(self, sql: str, params: tuple[Any, ...]) -> Any:
        """The first row ``sql`` selects, or None."""
        with self._lock:
            return self._connection().execute(sql, params).fetchone()

    def run(self, sql: str, params: tuple[Any, ...]) -> None:
        with self._lock:
            self._connection().execute(sql, params)

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            # autocommit; no journal nor sync: a scratch database nobody reads after a crash
            db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode = OFF")
            db.execute("PRAGMA synchronous = OFF")
            for statement in SCHEMA:
                db.execute(statement)
            self._db = db
        return self._db

    def close(self) -> None:
        """Drop every answer (SQLite deletes the database)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class FetchedLeads:
    """The run's answers to ``GET /{leadgen_id}`` by lead id (see the module's docs)."""

    def __init__(self, scratch: Scratch) -> None:
        self._scratch = scratch

    def answer(self, lead_id: str, ask: Callable[[], Any]) -> Any:
        """The lead's JSON: the answer kept from earlier in the run, else ``ask()``'s, then kept.

        :raises EntryRejected: Meta refused the lead for good, now or earlier in the run.
        """
        kept = self._scratch.one("SELECT body, refused FROM answers WHERE lead_id = ?", (lead_id,))
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
        self._scratch.run(
            "INSERT OR REPLACE INTO answers (lead_id, body, refused) VALUES (?, ?, ?)", (lead_id, body, refused)
        )


class FetchedPages:
    """The Graph client as ``cursor_pages`` uses it, answering a GET asked before in the run from what Meta
    answered then (see the module's docs)."""

    def __init__(self, graph: GraphClient, scratch: Scratch) -> None:
        self.graph = graph
        self.connector = graph.connector
        self._scratch = scratch
        self._failed: dict[str, HttpError] = {}
        """Requests that failed for good in this run: a few at most, as each stops its stream's read."""

    def request(
        self, method: str, url: str, *, params: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> httpx.Response:
        if method != "GET" or any(value is not None for value in kwargs.values()):
            return self.graph.request(method, url, params=params, **kwargs)
        key = json.dumps([url, sorted((str(k), str(v)) for k, v in (params or {}).items())])
        failed = self._failed.get(key)
        if failed is not None:
            raise failed
        kept = self._scratch.one("SELECT url, status, content_type, body FROM pages WHERE request = ?", (key,))
        if kept is not None:
            sent, status, content_type, body = kept
            log.debug("connector %s: GET %s answered from this run's earlier read", self.connector, url)
            headers = {"content-type": content_type} if content_type else {}
            return httpx.Response(status, headers=headers, content=body, request=httpx.Request("GET", sent))
        try:
            response = self.graph.request(method, url, params=params, **kwargs)
        except ClientError:
            raise  # not kept: one call, no retries, and a paging cursor refused now may be fine when read afresh
        except HttpError as exc:
            self._failed[key] = exc
            raise
        self._scratch.run(
            "INSERT OR REPLACE INTO pages (request, url, status, content_type, body) VALUES (?, ?, ?, ?, ?)",
            (key, str(response.request.url), response.status_code, response.headers.get("content-type"),
             response.content),
        )  # fmt: skip
        return response

    def close(self) -> None:
        self._failed.clear()
