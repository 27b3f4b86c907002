"""Writing the ingest log: :class:`IngestEntry`, and :func:`append`, durable when it returns.

``INSERT ... ON CONFLICT (source, message_id) DO NOTHING RETURNING`` in one transaction
per call, the same on SQLite and PostgreSQL (cdp_core/store/sql.py): a message whose
``(source, message_id)`` is stored already is dropped and counted as a duplicate, also
when it comes twice in the same call. The statements go to the driver as text with the
bodies serialized by orjson, not through SQLAlchemy's per-value processing: ``cdp
serve`` writes every accepted message here, and that processing cost twice what the
database does (bench/README.md, "serve.py"). On PostgreSQL each row carries the writing transaction's
id (``txid``), which readers need to never skip a row that commits late (reader.py).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine

from cdp_core.store import system_tables
from cdp_core.store.sql import on_conflict_sql
from cdp_core.store.transaction import write_transaction
from cdp_core.timeutil import as_utc

LOG = system_tables.ingest_log

PG_TXID = "pg_current_xact_id()::text::bigint"
"""The writing transaction's id as a number (xid8 has no cast to bigint but through text)."""


@dataclass(frozen=True)
class IngestEntry:
    """One message to store.

    :param source: the connector's name in connectors.toml (``[connectors.NAME]``).
    :param message_id: the sender's id of the message (Segment's ``messageId``, a vendor's
        delivery or event id): a second entry with the same ``(source, message_id)`` is dropped.
    :param kind: what it is: ``identify``, ``track``... or a webhook topic (``customers/create``).
    :param body: the message as parsed JSON.
    :param received_at: when the server received it (aware).
    """

    source: str
    message_id: str
    kind: str
    body: dict[str, Any]
    received_at: datetime

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.message_id)


@dataclass(frozen=True)
class AppendResult:
    """What :func:`append` did: how many entries it stored and which it dropped as duplicates."""

    accepted: int = 0
    duplicates: int = 0
    stored: tuple[bool, ...] = field(default=())
    """Per entry, in the order given: True when stored, False when dropped as a duplicate."""


CHUNK = 500
"""Rows per ``INSERT`` (5 parameters each: far below SQLite's 32,766 and PostgreSQL's 65,535)."""


@functools.lru_cache(maxsize=64)
def _insert_sql(dialect: str, rows: int) -> str:
    if dialect == "postgresql":
        row = f"(%s, %s, %s, %s::json, %s, {PG_TXID})"
    elif dialect == "sqlite":
        row = "(?, ?, ?, ?, ?, 0)"  # JSON is text on SQLite
    else:
        raise ValueError(f"unsupported store database {dialect!r} (SQLite or PostgreSQL)")
    return (
        f"INSERT INTO {LOG.name} (source, message_id, kind, body, received_at, txid) VALUES {', '.join([row] * rows)} "
        f"{on_conflict_sql(['source', 'message_id'], [])} RETURNING source, message_id"
    )


def body_json(body: dict[str, Any]) -> str:
    """A message body as the JSON text the log stores: orjson (2-5x json.dumps, and cdp serve writes every body)."""
    try:
        return orjson.dumps(body).decode()
    except TypeError:  # beyond orjson: an integer over 64 bits, a lone surrogate (json.loads lets both through)
        return json.dumps(body)


def append(engine: Engine, entries: Sequence[IngestEntry]) -> AppendResult:
    """Store ``entries`` in one transaction, dropping every ``(source, message_id)`` seen before.

    Durable when it returns (committed; SQLite in WAL mode with ``synchronous=NORMAL``
    survives a process crash, PostgreSQL's commit is flushed). Raises on a database error:
    then nothing of the call is stored.
    """
    if not entries:
        return AppendResult()
    dialect = engine.dialect
    stamp = LOG.c.received_at.type.dialect_impl(dialect).bind_processor(dialect)  # SQLite: the text SQLAlchemy reads
    stamps: dict[datetime, Any] = {}  # the entries of one request share their time: convert it once
    params: list[Any] = []
    for e in entries:
        received = stamps.get(e.received_at)
        if received is None:
            received = stamps[e.received_at] = stamp(as_utc(e.received_at)) if stamp else as_utc(e.received_at)
        params += (e.source, e.message_id, e.kind, body_json(e.body), received)
    inserted: set[tuple[str, str]] = set()
    with write_transaction(engine) as conn:
        for start in range(0, len(entries), CHUNK):
            rows = min(CHUNK, len(entries) - start)
            chunk = tuple(params[5 * start : 5 * (start + rows)])
            inserted.update(
                (source, mid) for source, mid in conn.exec_driver_sql(_insert_sql(dialect.name, rows), chunk)
            )
    stored: list[bool] = []
    for entry in entries:
        key = entry.key
        stored.append(key in inserted)
        inserted.discard(key)  # a second entry with the same key in this call is a duplicate
    accepted = sum(stored)
    return AppendResult(accepted=accepted, duplicates=len(stored) - accepted, stored=tuple(stored))
