"""A checkpoint: the cursors and quarantine rows that one batch covers, committed with it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection

from cdp_core.records import JsonValue, Rejected
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

    def write(self, conn: Connection) -> None:
        """Write the cursors and quarantine rows through ``conn``, in its transaction."""
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
