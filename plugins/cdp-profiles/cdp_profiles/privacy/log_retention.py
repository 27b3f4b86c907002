"""Retention of the ingest log (``[privacy.retention] ingest_log``) without losing an unread message.

A logged message goes only when it is older than the cutoff **and** every source node that
reads its source's log has committed a cursor past it. The readers come from the config: a
source node whose stream is an :class:`~cdp_core.ingest.IngestLogStream` (its connector's
source is built, which does no I/O, and asked for the stream). Per ingest source, the
smallest committed cursor ``(txid, id)`` over its readers bounds what may go (the reader's
order, cdp_core/ingest/reader.py: every row at or below a committed cursor was passed, and a
row committed later sorts after it). A source no node reads, or one a reader has never
committed a cursor for, keeps everything; so does the whole log when some readers cannot be
known (a graph left out of the config, a source that cannot be built).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from cdp_core.base import Source
from cdp_core.config import Config
from cdp_core.http import HttpFactory
from cdp_core.ingest.log import LOG
from cdp_core.ingest.reader import IngestLogStream, log_cursor
from cdp_core.runner import connector_context
from cdp_core.store import system_tables
from sqlalchemy import ColumnElement, Connection, and_, or_, select, tuple_

_state = system_tables.sync_state


@dataclass
class LogReaders:
    """Who reads the ingest log, as the config says."""

    nodes: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    """ingest source (the connector whose messages were logged) -> the ``(graph, node)`` source nodes reading it."""
    unknown: list[str] = field(default_factory=list)
    """Why some readers cannot be known: while not empty, nothing of the log is purged."""


def log_readers(config: Config) -> LogReaders:
    """The source nodes of every graph of ``config`` (enabled or not) that read the ingest log."""
    readers = LogReaders()
    left_out = sorted(set(config.root.syncs) - set(config.graphs))
    if left_out:
        why = ", ".join(sorted(config.unavailable)) or "invalid"
        readers.unknown.append(f"graphs left out of the config: {', '.join(left_out)} (connectors: {why})")
    for graph in config.graphs.values():
        for node in graph.sources():
            with _built(config, node.connector) as source:
                if source is None:
                    readers.unknown.append(
                        f"{graph.name}.{node.name}: its connector {node.connector!r} cannot be built"
                    )
                    continue
                try:
                    stream = source.stream(node.stream)
                except Exception:  # noqa: BLE001 - an unknown reader holds the log, whatever went wrong
                    readers.unknown.append(f"{graph.name}.{node.name}: no stream {node.stream!r}")
                    continue
                if isinstance(stream, IngestLogStream):
                    readers.nodes.setdefault(stream.source, []).append((graph.name, node.name))
    return readers


@contextmanager
def _built(config: Config, connector: str) -> Iterator[Source | None]:
    """The connector's source, built as a run builds it (no I/O), closed after; None if it cannot be built."""
    registered = config.connectors.get(connector)
    role = registered.roles.get("source") if registered is not None else None
    if registered is None or role is None:
        yield None
        return
    context = connector_context(config, connector, {"http": HttpFactory(redactor=config.redact)})
    try:
        source = role.cls(registered.config, context)
    except Exception:  # noqa: BLE001 - see log_readers
        yield None
        return
    try:
        yield source
    finally:
        source.close()


def read_up_to(conn: Connection, readers: LogReaders) -> dict[str, tuple[int, int]]:
    """ingest source -> the smallest committed cursor ``(txid, id)`` over its readers; a source some reader
    has not committed a cursor for (or has one that is not a log cursor) is absent: nothing of it is read by all."""
    pairs = [pair for nodes in readers.nodes.values() for pair in nodes]
    if readers.unknown or not pairs:
        return {}
    rows = conn.execute(
        select(_state.c.graph, _state.c.node, _state.c.cursor).where(tuple_(_state.c.graph, _state.c.node).in_(pairs))
    )
    committed: dict[tuple[str, str], tuple[int, int]] = {}
    for row in rows:
        try:
            if row.cursor:
                committed[(row.graph, row.node)] = log_cursor(row.cursor)
        except ValueError:
            continue  # not a log cursor: that reader's position is unknown, so the source keeps everything
    return {
        source: min(committed[pair] for pair in nodes)
        for source, nodes in readers.nodes.items()
        if all(pair in committed for pair in nodes)
    }


def purgeable(source: str, up_to: tuple[int, int], cutoff: datetime) -> ColumnElement[bool]:
    """``source``'s messages received before ``cutoff`` at or below the cursor ``up_to``."""
    txid, last = up_to
    return and_(
        LOG.c.source == source,
        LOG.c.received_at < cutoff,
        or_(LOG.c.txid < txid, and_(LOG.c.txid == txid, LOG.c.id <= last)),
    )
