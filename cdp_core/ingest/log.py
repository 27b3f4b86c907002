"""Writing the ingest log: :class:`IngestEntry`, and :func:`append`, durable when it returns.

One ``INSERT ... ON CONFLICT (source, message_id) DO NOTHING RETURNING`` per call, the
same on SQLite and PostgreSQL (cdp_core/store/sql.py): a message whose ``(source,
message_id)`` is stored already is dropped and counted as a duplicate, also when it
comes twice in the same call. On PostgreSQL each row carries the writing transaction's
id (``txid``), which readers need to never skip a row that commits late (reader.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, literal_column

from cdp_core.store.ingest_models import IngestLogRow
from cdp_core.store.sql import insert_for
from cdp_core.store.tables import table_of
from cdp_core.store.transaction import write_transaction
from cdp_core.timeutil import as_utc

LOG = table_of(IngestLogRow)

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


def append(engine: Engine, entries: Sequence[IngestEntry]) -> AppendResult:
    """Store ``entries`` in one transaction, dropping every ``(source, message_id)`` seen before.

    Durable when it returns (committed; SQLite in WAL mode with ``synchronous=NORMAL``
    survives a process crash, PostgreSQL's commit is flushed). Raises on a database error:
    then nothing of the call is stored.
    """
    if not entries:
        return AppendResult()
    rows = [
        {
            "source": e.source,
            "message_id": e.message_id,
            "kind": e.kind,
            "body": e.body,
            "received_at": as_utc(e.received_at),
        }
        for e in entries
    ]
    with write_transaction(engine) as conn:
        dialect = conn.dialect.name
        txid: Any = literal_column(PG_TXID) if dialect == "postgresql" else literal_column("0")
        stmt = (
            insert_for(dialect, LOG)
            .values(txid=txid)
            .on_conflict_do_nothing(index_elements=["source", "message_id"])
            .returning(LOG.c.source, LOG.c.message_id)
        )
        inserted = {(r.source, r.message_id) for r in conn.execute(stmt, rows)}
    stored: list[bool] = []
    for entry in entries:
        key = entry.key
        stored.append(key in inserted)
        inserted.discard(key)  # a second entry with the same key in this call is a duplicate
    accepted = sum(stored)
    return AppendResult(accepted=accepted, duplicates=len(stored) - accepted, stored=tuple(stored))
