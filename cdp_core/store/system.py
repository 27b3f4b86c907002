"""Reads and writes of the system tables, shared by the runner, the CLI and the scheduler."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from cdp_core.records import JsonValue
from cdp_core.runinfo import NodeStats, RunInfo, RunKind, RunStatus
from cdp_core.store import system_tables
from cdp_core.store.checkpoint import Checkpoint
from cdp_core.store.engine import make_engine
from cdp_core.store.schema import History, create_schema
from cdp_core.store.sql import upsert
from cdp_core.store.transaction import write_transaction
from cdp_core.timeutil import as_utc, utc_now

_runs = system_tables.sync_runs
_state = system_tables.sync_state
_quarantine = system_tables.quarantine


class SystemStore:
    """Sync state, runs and quarantine in the store database."""

    def __init__(self, url_or_engine: str | Engine) -> None:
        self.engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine

    def create(self, histories: Iterable[History] = ()) -> SystemStore:
        """Bring the store to the kernel's schema and to that of each plugin history given (``Plugins.migrations``)."""
        create_schema(self.engine, *histories)
        return self

    # -- state -------------------------------------------------------------------------
    def cursor(self, graph: str, node: str) -> JsonValue:
        with self.engine.connect() as conn:
            return conn.execute(
                select(_state.c.cursor).where(_state.c.graph == graph, _state.c.node == node)
            ).scalar_one_or_none()

    def commit(self, checkpoint: Checkpoint) -> None:
        # Holds SQLite's write lock from the start: a checkpoint may read before it writes.
        with write_transaction(self.engine) as conn:
            checkpoint.write(conn)

    def states(self, graph: str) -> list[CursorState]:
        """Every stored cursor of a graph's nodes, by node name."""
        stmt = select(_state).where(_state.c.graph == graph).order_by(_state.c.node)
        with self.engine.connect() as conn:
            return [
                CursorState(row.node, row.cursor, row.run_id, as_utc(row.updated_at)) for row in conn.execute(stmt)
            ]

    def reset(self, graph: str, node: str | None = None, conn: Connection | None = None) -> int:
        """Forget the cursors of a graph (or of one node): the next run reads from the start."""
        stmt = delete(_state).where(_state.c.graph == graph)
        if node is not None:
            stmt = stmt.where(_state.c.node == node)
        if conn is not None:
            return conn.execute(stmt).rowcount
        with self.engine.begin() as own:
            return own.execute(stmt).rowcount

    def set_cursor(self, conn: Connection, graph: str, node: str, cursor: JsonValue) -> None:
        """Set one node's cursor through ``conn`` (``cdp state set``): the next run resumes after it."""
        row = {"graph": graph, "node": node, "cursor": cursor, "run_id": None, "updated_at": utc_now()}
        upsert(conn, _state, [row], keys=("graph", "node"))

    # -- runs --------------------------------------------------------------------------
    def start_run(self, run: RunInfo) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(_runs).values(**_run_row(run)))

    def save_run(self, run: RunInfo) -> None:
        row = _run_row(run)
        with self.engine.begin() as conn:
            conn.execute(update(_runs).where(_runs.c.id == run.id).values(**row))

    def runs(self, graph: str | None = None, limit: int = 20) -> list[RunInfo]:
        """The newest runs, syncs and retries alike (``RunInfo.kind`` tells them apart)."""
        stmt = select(_runs).order_by(_runs.c.started_at.desc()).limit(limit)
        if graph is not None:
            stmt = stmt.where(_runs.c.graph == graph)
        with self.engine.connect() as conn:
            return [_run_from_row(row._mapping) for row in conn.execute(stmt)]

    # -- quarantine --------------------------------------------------------------------
    def quarantine(
        self, graph: str | None = None, node: str | None = None, run_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        stmt = select(_quarantine).order_by(_quarantine.c.id).limit(limit)
        for column, value in (("graph", graph), ("node", node), ("run_id", run_id)):
            if value is not None:
                stmt = stmt.where(_quarantine.c[column] == value)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(stmt)]

    def quarantined(
        self,
        graph: str | None = None,
        node: str | None = None,
        ids: Collection[int] = (),
        reason: str | None = None,
    ) -> list[QuarantineEntry]:
        """The quarantine rows a filter selects, without their payloads, oldest first.

        :param reason: a substring of the reason, or ``re:PATTERN`` (a Python regular
            expression searched in it).
        """
        pattern = re.compile(reason[3:]) if reason is not None and reason.startswith("re:") else None
        c = _quarantine.c
        stmt = select(c.id, c.graph, c.node, c.reason, c.record_key).order_by(c.id)
        if graph is not None:
            stmt = stmt.where(c.graph == graph)
        if node is not None:
            stmt = stmt.where(c.node == node)
        if ids:
            stmt = stmt.where(c.id.in_(sorted(set(ids))))
        if reason is not None and pattern is None:
            stmt = stmt.where(c.reason.contains(reason, autoescape=True))
        with self.engine.connect() as conn:
            entries = [QuarantineEntry(r.id, r.graph, r.node, r.reason, r.record_key) for r in conn.execute(stmt)]
        return [e for e in entries if pattern.search(e.reason)] if pattern is not None else entries

    def payloads(self, ids: Collection[int]) -> dict[int, JsonValue]:
        """The payloads of these quarantine rows (those that still exist), by id."""
        stmt = select(_quarantine.c.id, _quarantine.c.payload).where(_quarantine.c.id.in_(sorted(set(ids))))
        with self.engine.connect() as conn:
            return {row.id: row.payload for row in conn.execute(stmt)}

    def quarantine_count(self, graph: str | None = None) -> int:
        stmt = select(func.count()).select_from(_quarantine)
        if graph is not None:
            stmt = stmt.where(_quarantine.c.graph == graph)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())


def _run_row(run: RunInfo) -> dict[str, Any]:
    return {
        "id": run.id,
        "graph": run.graph,
        "status": str(run.status),
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "error": run.error,
        "nodes": {name: vars(stats) for name, stats in run.nodes.items()},
        "kind": str(run.kind),
    }


def _run_from_row(row: Any) -> RunInfo:
    return RunInfo(
        id=row["id"],
        graph=row["graph"],
        status=RunStatus(row["status"]),
        # SQLite hands back naive datetimes; everything cdp writes is UTC.
        started_at=as_utc(row["started_at"]),
        finished_at=as_utc(row["finished_at"]) if row["finished_at"] else None,
        error=row["error"],
        nodes={name: NodeStats(**stats) for name, stats in (row["nodes"] or {}).items()},
        kind=RunKind(row["kind"]),
    )


@dataclass(frozen=True)
class CursorState:
    """A node's stored cursor: where its next run resumes."""

    node: str
    cursor: JsonValue
    run_id: str | None
    """The run that committed it; None when set by hand (``cdp state set``)."""
    updated_at: datetime


@dataclass(frozen=True)
class QuarantineEntry:
    """A quarantine row as ``cdp quarantine retry`` selects it (its payload is read in chunks)."""

    id: int
    graph: str
    node: str
    reason: str
    record_key: str | None
