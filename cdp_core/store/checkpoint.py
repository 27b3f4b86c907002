"""A checkpoint: the cursors and quarantine rows that one batch covers, committed with it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from cdp_core.records import JsonValue, Record, Rejected
from cdp_core.store.models import QuarantineRecord, SyncState
from cdp_core.store.sql import upsert
from cdp_core.store.tables import table_of
from cdp_core.timeutil import utc_now

if TYPE_CHECKING:
    from cdp_core.store.leases import Lease


@dataclass
class Checkpoint:
    """What becomes true once a batch is durable.

    The runner commits it itself, unless a destination that shares the store's
    database (``commits_checkpoint = True``) commits it inside the transaction
    that writes the batch: then the batch and its cursor land together or not at all.

    A run under the graph's lease (a scheduled run, ``cdp sync``) hands it in ``lease``:
    committing then also proves, in the same transaction, that the lease is still
    this process's (:meth:`Lease.fence <cdp_core.store.leases.Lease.fence>`), or
    raises ``LeaseLost`` and nothing of the batch is committed.
    """

    graph: str
    run_id: str
    cursors: dict[str, JsonValue] = field(default_factory=dict)
    rejected: list[tuple[str, Rejected]] = field(default_factory=list)
    committed: bool = False
    node: str = ""
    """The destination node being written to now (set by the runner)."""
    commit_by: str | None = None
    """The one destination node that commits this checkpoint in its transaction, if any."""
    lease: Lease | None = None
    """The graph's lease the run holds, if any: verified in the transaction that commits."""

    def reject(self, record: Record, reason: str) -> None:
        """Quarantine a record the current destination cannot take; the batch goes on."""
        self.rejected.append((self.node, Rejected(reason=reason, raw=record.raw(), key=record.key)))

    def write(self, conn: Connection) -> None:
        """Write the cursors and quarantine rows through ``conn``, in its transaction.

        Only the destination named by ``commit_by`` may call this (the runner
        commits the checkpoint itself otherwise).
        """
        if self.committed:
            raise RuntimeError("checkpoint already committed")
        if self.commit_by is not None and self.node != self.commit_by:
            raise RuntimeError(f"destination {self.node!r} may not commit a checkpoint owned by {self.commit_by!r}")
        now = utc_now()
        upsert(
            conn,
            table_of(SyncState),
            [
                {"graph": self.graph, "node": node, "cursor": cursor, "run_id": self.run_id, "updated_at": now}
                for node, cursor in self.cursors.items()
            ],
            keys=("graph", "node"),
        )
        if self.rejected:
            upsert(
                conn,
                table_of(QuarantineRecord),
                [
                    {
                        "run_id": self.run_id,
                        "graph": self.graph,
                        "node": node,
                        "reason": _text(rej.reason),
                        "record_key": None if rej.key is None else _text(rej.key),
                        "payload": rej.raw,
                        "fingerprint": _fingerprint(self.graph, node, rej),
                        "created_at": now,
                    }
                    for node, rej in self.rejected
                ],
                keys=("fingerprint",),
                update=(),
            )
        if self.lease is not None:
            if self.lease.graph != self.graph:
                raise RuntimeError(f"checkpoint of {self.graph!r} handed the lease of {self.lease.graph!r}")
            # Fencing: a holder frozen past its ttl (SIGSTOP, GC pause, stalled disk) may
            # have lost the graph to another process. This must be checked in this very
            # transaction, the one that commits the batch and its cursor: a check in a
            # transaction of its own leaves a gap before this commit in which the lease
            # can be lost. Here it locks the lease row until commit, or raises LeaseLost
            # and the whole batch rolls back. Last, so the row is locked only briefly.
            self.lease.fence(conn)
        self.committed = True


def _text(value: str) -> str:
    """A text column's value: PostgreSQL refuses a NUL byte in text, so it is written as ``\\x00``
    (the raw payload, JSON, keeps the record as it came)."""
    return value.replace("\x00", "\\x00") if "\x00" in value else value


def _fingerprint(graph: str, node: str, rejected: Rejected) -> str:
    text = json.dumps([graph, node, rejected.reason, rejected.raw], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
