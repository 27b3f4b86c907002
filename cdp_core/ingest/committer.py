"""Group commit: the requests of one process that arrive together share one transaction.

A commit costs the same for one message as for a hundred (on SQLite a WAL write, on
PostgreSQL a flush of its log), so ``cdp serve`` hands every request's entries to one
committer thread: while it commits a group, the requests that arrive queue up, and the next
transaction takes all of them at once. A request's answer waits for the commit of its
group (:meth:`GroupCommitter.submit` returns a future), so every acknowledged message is
durable. A group that fails is committed again request by request, so one request the
database refuses fails alone.

SQLite has one writer at a time: one committer thread. PostgreSQL commits concurrent
transactions in parallel (and groups their log flushes itself), so there several committer
threads take groups from the same queue (:data:`PG_COMMITTERS`); measured in docs/ingest.md.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from sqlalchemy import Engine

from cdp_core.ingest.log import AppendResult, IngestEntry, append

log = logging.getLogger("cdp.ingest")

MAX_GROUP = 5000
"""At most this many entries per transaction (a group of requests is cut after the one that reaches it)."""
PG_COMMITTERS = 4
"""Committer threads on PostgreSQL (SQLite: 1)."""


@dataclass
class _Request:
    entries: Sequence[IngestEntry]
    future: Future[AppendResult]


class GroupCommitter:
    """A thread that appends the entries of concurrent requests in shared transactions.

    :param observe: called with (entries, requests) after each committed group (for metrics).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        max_group: int = MAX_GROUP,
        observe: Callable[[int, int], None] | None = None,
        threads: int | None = None,
    ) -> None:
        self.engine = engine
        self.max_group = max_group
        self.threads = threads or (1 if engine.dialect.name == "sqlite" else PG_COMMITTERS)
        self.observe = observe
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._count = threading.Lock()
        self.groups = 0
        """Transactions committed so far (for the measurement in docs/ingest.md)."""

    def start(self) -> None:
        with self._lock:
            if not self._workers:
                self._workers = [
                    threading.Thread(target=self._run, name=f"cdp-ingest-commit-{i}", daemon=True) for i in range(self.threads)
                ]
                for worker in self._workers:
                    worker.start()

    def submit(self, entries: Sequence[IngestEntry]) -> Future[AppendResult]:
        """Queue ``entries`` for the next group; the future holds their result once committed."""
        future: Future[AppendResult] = Future()
        if not entries:
            future.set_result(AppendResult())
            return future
        self.start()
        self._queue.put(_Request(entries, future))
        return future

    def close(self) -> None:
        """Commit what is queued, then stop the threads (each ends at one of the stop marks)."""
        with self._lock:
            workers, self._workers = self._workers, []
        for _ in workers:
            self._queue.put(None)
        for worker in workers:
            worker.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            group, size = [first], len(first.entries)
            while size < self.max_group:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                group.append(more)
                size += len(more.entries)
            self._commit(group)

    def _commit(self, group: list[_Request]) -> None:
        entries = [e for request in group for e in request.entries]
        try:
            result = append(self.engine, entries)
        except Exception as exc:  # noqa: BLE001 - every waiting request gets an answer
            if len(group) == 1:
                group[0].future.set_exception(exc)
                return
            log.warning("a group of %d requests failed to commit (%s); committing them one by one", len(group), exc)
            for request in group:
                self._commit([request])
            return
        with self._count:
            self.groups += 1
        if self.observe is not None:
            self.observe(len(entries), len(group))
        start = 0
        for request in group:
            stored = result.stored[start : start + len(request.entries)]
            start += len(request.entries)
            accepted = sum(stored)
            request.future.set_result(AppendResult(accepted=accepted, duplicates=len(stored) - accepted, stored=stored))
