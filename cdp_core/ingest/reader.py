"""Reading the ingest log: :class:`IngestLogStream`, a source stream over one source's entries.

The order and the cursor
------------------------
Rows are read in ``(txid, id)`` order from a cursor ``{"txid": T, "id": I}``, a page at a
time. On SQLite ``txid`` is 0 (one writer at a time: ids commit in their order), so that is
simply id order. On PostgreSQL ids come from a sequence and several processes write at once:
a transaction can take id 10, another id 11 and commit first. A reader that then moved its
cursor to 11 would never see 10. So each row carries its writer's transaction id
(``pg_current_xact_id()``), and a read takes only rows whose ``txid`` is below the ``xmin``
of its own snapshot (``pg_snapshot_xmin(pg_current_snapshot())``): every transaction below
it has ended, so every row it wrote is visible now, and any row that commits later has a
``txid`` at or above that ``xmin``, hence after the cursor. Nothing is skipped and nothing
read twice (docs/ingest.md).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, literal_column, or_, select

from cdp_core.base import Page, Stream
from cdp_core.ingest.log import LOG, IngestEntry
from cdp_core.records import JsonValue, Record, RecordKind, Rejected
from cdp_core.store.engine import make_engine
from cdp_core.timeutil import as_utc

PAGE_SIZE = 1000
PG_XMIN = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
"""The oldest transaction still running as this statement's snapshot sees it: every one below it has ended."""
RecordsOf = Callable[[IngestEntry], list[Record]]


def log_cursor(cursor: JsonValue) -> tuple[int, int]:
    """``(txid, id)`` from a committed cursor (None: the start)."""
    if not cursor:
        return (-1, 0)
    if not isinstance(cursor, dict) or not isinstance(cursor.get("txid"), int) or not isinstance(cursor.get("id"), int):
        raise ValueError(f"not an ingest log cursor: {cursor!r} (expected {{'txid': N, 'id': N}})")
    return (cursor["txid"], cursor["id"])


def read_rows(
    engine: Engine, source: str, after: tuple[int, int], limit: int, kinds: Collection[str] | None = None
) -> list[Any]:
    """The next ``limit`` rows of ``source`` after ``after`` in ``(txid, id)`` order, that no open transaction can precede."""
    txid, last = after
    stmt = (
        select(LOG.c.id, LOG.c.txid, LOG.c.message_id, LOG.c.kind, LOG.c.body, LOG.c.received_at)
        .where(LOG.c.source == source, or_(LOG.c.txid > txid, and_(LOG.c.txid == txid, LOG.c.id > last)))
        .order_by(LOG.c.txid, LOG.c.id)
        .limit(limit)
    )
    if engine.dialect.name == "postgresql":
        stmt = stmt.where(LOG.c.txid < select(literal_column(PG_XMIN)).scalar_subquery())
    if kinds is not None:
        stmt = stmt.where(LOG.c.kind.in_(sorted(kinds)))
    with engine.connect() as conn:
        return list(conn.execute(stmt))


class IngestLogStream(Stream):
    """A stream of one ingest source's logged entries, each turned into records by :meth:`records`.

    Subclass it and override :meth:`records`, or pass ``records=``. An entry whose
    ``records`` raises ``ValueError`` goes to quarantine with the error as its reason.

    :param name: the stream's name (``source = "CONNECTOR.NAME"``).
    :param source: whose entries: the connector's name (``IngestEntry.source``).
    :param store_url: the store holding the log (``ConnectorContext.store_url``).
    :param kinds: only entries of these kinds (None: all).
    """

    primary_key = ("key",)
    cursor_field = "ingest_log"

    def __init__(
        self,
        name: str,
        *,
        source: str,
        store_url: str,
        kind: RecordKind = RecordKind.event,
        records: RecordsOf | None = None,
        kinds: Collection[str] | None = None,
        page_size: int = PAGE_SIZE,
        identifier_types: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.source = source
        self.store_url = store_url
        self.kind = kind
        self.kinds = frozenset(kinds) if kinds is not None else None
        self.page_size = page_size
        self.identifier_types = identifier_types
        self._records = records
        self._engine: Engine | None = None

    def records(self, entry: IngestEntry) -> list[Record]:
        """The records one logged entry becomes (``[]``: none)."""
        if self._records is None:
            raise NotImplementedError(f"{type(self).__name__}: pass records= or override records()")
        return self._records(entry)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.store_url)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def read(self, cursor: JsonValue) -> Iterator[Page]:
        after = log_cursor(cursor)
        while True:
            rows = read_rows(self.engine, self.source, after, self.page_size, self.kinds)
            if not rows:
                return
            records: list[Record] = []
            rejects: list[Rejected] = []
            for row in rows:
                entry = IngestEntry(self.source, row.message_id, row.kind, row.body, _utc(row.received_at))
                try:
                    records.extend(self.records(entry))
                except ValueError as exc:
                    rejects.append(Rejected(reason=str(exc), raw=entry_raw(entry), key=entry.message_id))
            after = (rows[-1].txid, rows[-1].id)
            yield Page(records, {"txid": after[0], "id": after[1]}, rejects)
            if len(rows) < self.page_size:
                return

    def parse(self, raw: JsonValue) -> Record | Rejected | None:
        """A quarantined entry read again (``cdp quarantine retry``): its one record, or why not."""
        try:
            entry = entry_of(raw)
            found = self.records(entry)
        except (ValueError, KeyError, TypeError) as exc:
            return Rejected(reason=str(exc), raw=raw)
        return found[0] if len(found) == 1 else None


def entry_raw(entry: IngestEntry) -> dict[str, Any]:
    """An entry as a quarantine payload."""
    return {
        "source": entry.source,
        "message_id": entry.message_id,
        "kind": entry.kind,
        "body": entry.body,
        "received_at": entry.received_at.isoformat(),
    }


def entry_of(raw: Any) -> IngestEntry:
    """:func:`entry_raw` read back."""
    if not isinstance(raw, dict):
        raise ValueError("not an ingest log entry")
    return IngestEntry(
        str(raw["source"]), str(raw["message_id"]), str(raw["kind"]), dict(raw["body"]),
        datetime.fromisoformat(str(raw["received_at"])),
    )


def _utc(value: Any) -> datetime:
    return as_utc(value if isinstance(value, datetime) else datetime.fromisoformat(str(value)))
