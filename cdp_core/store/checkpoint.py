"""A checkpoint: the cursors and quarantine rows that one batch covers, committed with it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection

from cdp_core.records import JsonValue, Record, Rejected
from cdp_core.store.models import QuarantineRecord, SyncState
from cdp_core.store.sql import upsert


@dataclass
class Checkpoint:
    """What becomes true once a batch is durable.

    The runner commits it itself, unless a destination that shares the store's
    database (``commits_checkpoint = True``) commits it inside the transaction
    that writes the batch: then the batch and its cursor land together or not at all.
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
        now = datetime.now(UTC)
        upsert(
            conn,
            SyncState.__table__,  # type: ignore[arg-type]
            [
                {"graph": self.graph, "node": node, "cursor": cursor, "run_id": self.run_id, "updated_at": now}
                for node, cursor in self.cursors.items()
            ],
            keys=("graph", "node"),
        )
        if self.rejected:
            upsert(
                conn,
                QuarantineRecord.__table__,  # type: ignore[arg-type]
                [
                    {
                        "run_id": self.run_id,
                        "graph": self.graph,
                        "node": node,
                        "reason": rej.reason,
                        "record_key": rej.key,
                        "payload": rej.raw,
                        "fingerprint": _fingerprint(self.graph, node, rej),
                        "created_at": now,
                    }
                    for node, rej in self.rejected
                ],
                keys=("fingerprint",),
                update=(),
            )
        self.committed = True


def _fingerprint(graph: str, node: str, rejected: Rejected) -> str:
    text = json.dumps([graph, node, rejected.reason, rejected.raw], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
