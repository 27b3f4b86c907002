"""Removing one person from the kernel's tables: quarantine entries, the ingest log, run texts and cursors.

These tables name a person only inside text and JSON (:mod:`cdp_profiles.privacy.traces`
says how they are recognized), so each is read in chunks of :data:`PAGE` rows, judged in
Python (a quick test of each row's text first: bench/forget_scan.py), and written back in
one statement per chunk: the quarantine rows that carry
the person deleted, the ingest log's messages that carry them deleted (never read, or read
already: a repeated message is screened by the suppression list), the run texts and cursors
that quote them rewritten.
"""

from __future__ import annotations

from typing import Any

from cdp_core.store import system_tables
from sqlalchemy import Connection, Text, bindparam, cast, delete, select, update

from cdp_profiles.privacy.erase import chunks
from cdp_profiles.privacy.traces import Traces

PAGE = 1_000
_quarantine, _runs, _state = system_tables.quarantine, system_tables.sync_runs, system_tables.sync_state
_log = system_tables.ingest_log


def quarantined_ids(conn: Connection, traces: Traces) -> list[int]:
    """The ids of the quarantine rows that carry the person (payload, record key or reason)."""
    columns = (_quarantine.c.payload, _quarantine.c.record_key, _quarantine.c.reason)
    return _carrying(conn, _quarantine.c.id, columns, traces)


def logged_ids(conn: Connection, traces: Traces) -> list[int]:
    """The ids of the ingest log's messages that carry the person (body or message id)."""
    return _carrying(conn, _log.c.id, (_log.c.body, _log.c.message_id, None), traces)


def _carrying(conn: Connection, id_column: Any, columns: tuple[Any, Any, Any], traces: Traces) -> list[int]:
    """Ids of the rows whose (JSON, key, text) ``columns`` carry the person, read in pages by id.

    The JSON is read as text, not decoded: most rows are turned away by a test of their text
    (:meth:`Traces.in_stored_row`), and only the others are decoded and judged leaf by leaf.
    """
    found: list[int] = []
    last = -1
    payload, key, text = columns
    while True:
        wanted = [id_column, cast(payload, Text), key] + ([text] if text is not None else [])
        page = conn.execute(select(*wanted).where(id_column > last).order_by(id_column).limit(PAGE)).all()
        if not page:
            return found
        last = page[-1][0]
        found += [r[0] for r in page if traces.in_stored_row(r[1], r[2], r[3] if text is not None else None)]


def delete_quarantined(conn: Connection, traces: Traces) -> int:
    """Delete the quarantine rows that carry the person; how many."""
    return _delete_ids(conn, _quarantine, quarantined_ids(conn, traces))


def delete_logged(conn: Connection, traces: Traces) -> int:
    """Delete the ingest log's messages that carry the person; how many."""
    return _delete_ids(conn, _log, logged_ids(conn, traces))


def _delete_ids(conn: Connection, table: Any, ids: list[int]) -> int:
    for chunk in chunks(ids):
        conn.execute(delete(table).where(table.c.id.in_(chunk)))
    return len(ids)


def scrub_runs(conn: Connection, traces: Traces) -> int:
    """Replace the person's identifiers in every run's error text and node counts; how many runs changed."""
    changed: list[dict[str, Any]] = []
    last = ""
    while True:
        page = conn.execute(
            select(_runs.c.id, _runs.c.error, _runs.c.nodes).where(_runs.c.id > last).order_by(_runs.c.id).limit(PAGE)
        ).all()
        if not page:
            break
        last = page[-1].id
        for row in page:
            error, nodes = traces.scrub(row.error), traces.scrub(row.nodes)
            if error != row.error or nodes != row.nodes:
                changed.append({"b_id": row.id, "b_error": error, "b_nodes": nodes})
    if changed:
        stmt = (
            update(_runs)
            .where(_runs.c.id == bindparam("b_id"))
            .values(
                error=bindparam("b_error", type_=_runs.c.error.type),
                nodes=bindparam("b_nodes", type_=_runs.c.nodes.type),
            )
        )
        for chunk in chunks(changed):
            conn.execute(stmt, list(chunk))
    return len(changed)


def prune_cursors(conn: Connection, traces: Traces) -> int:
    """Take the person's record keys and identifiers out of every saved cursor; how many cursors changed."""
    changed: list[dict[str, Any]] = []
    for row in conn.execute(select(_state.c.graph, _state.c.node, _state.c.cursor)):
        cursor = traces.prune_cursor(row.cursor)
        if cursor != row.cursor:
            changed.append({"b_graph": row.graph, "b_node": row.node, "b_cursor": cursor})
    if changed:
        stmt = (
            update(_state)
            .where(_state.c.graph == bindparam("b_graph"), _state.c.node == bindparam("b_node"))
            .values(cursor=bindparam("b_cursor", type_=_state.c.cursor.type))
        )
        conn.execute(stmt, changed)
    return len(changed)
