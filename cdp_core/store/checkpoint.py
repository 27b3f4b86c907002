"""A checkpoint: the cursors and quarantine rows that one batch covers, committed with it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, select, update

from cdp_core.records import JsonValue, Record, Rejected
from cdp_core.store import system_tables
from cdp_core.store.sql import upsert
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
    aborted: bool = False
    """Set by the runner when the batch failed before this checkpoint was committed: a
    destination that wrote outside the store (a file) undoes its part before its next write."""
    redact: Callable[[str], str] | None = None
    """The config's redactor (set by the runner): a reason a plugin wrote may quote a secret
    (an error text with a token), and quarantine is a table people read."""
    progress: Callable[[], dict[str, dict[str, Any]]] | None = None
    """The run's node counts as they are once this batch is committed (set by the runner):
    saved on the run's row in the same transaction, so a run whose process dies keeps them."""
    screen: Callable[[Rejected], bool] | None = None
    """Whether a quarantine entry must be dropped as suppressed (the run's record screens,
    cdp_core/screens.py; set by the runner when it has any): checked in :meth:`write`, the one
    place quarantine rows are written, so no node's reject reaches the table past it."""

    def keep(self, state: JsonValue) -> None:
        """Commit ``state`` as the current destination node's own state with this batch.

        For a destination whose output lives outside the store (a file's length): the
        runner hands it back to ``Destination.resume`` at the start of the next run.
        """
        self.cursors[self.node] = state
    resolved: list[int] = field(default_factory=list)
    """Quarantine rows this batch sent again (``cdp quarantine retry``): removed when it commits,
    unless one is rejected again for the same reason (then it stays as it is)."""
    already_quarantined: dict[str, int] = field(default_factory=dict)
    """Set by :meth:`write`: per node, how many of ``rejected`` were in quarantine before."""

    suppressed: dict[str, int] = field(default_factory=dict)
    """Set by :meth:`write`: per node, how many of ``rejected`` were dropped as suppressed (not written)."""
    dropped: set[int] = field(default_factory=set)
    """Set by :meth:`write`: the positions in ``rejected`` of the entries dropped as suppressed."""

    warnings: dict[tuple[str, str], int] = field(default_factory=dict)
    """(node, message) -> count: what a destination stored but not quite as sent (a trait value not
    of its declared type). Counted on the run's node (``NodeStats.warnings``); no record is lost."""

    def warn(self, message: str, count: int = 1) -> None:
        """Count a problem the current destination worked around; the same message is counted once per record."""
        key = (self.node, message)
        self.warnings[key] = self.warnings.get(key, 0) + count

    def reject(self, record: Record, reason: str) -> None:
        """Quarantine a record the current destination cannot take; the batch goes on."""
        self.rejected.append((self.node, Rejected(reason=reason, raw=record.raw(), key=record.key)))

    def quarantined(self) -> list[tuple[str, Rejected]]:
        """The entries of ``rejected`` that went to quarantine: all but those dropped as suppressed."""
        if not self.dropped:
            return self.rejected
        return [entry for i, entry in enumerate(self.rejected) if i not in self.dropped]

    def write(self, conn: Connection) -> None:
        """Write the cursors and quarantine rows through ``conn``, in its transaction.

        Only the destination named by ``commit_by`` may call this (the runner
        commits the checkpoint itself otherwise). An entry ``screen`` says is suppressed
        is not written: it is counted in ``suppressed`` instead.
        """
        if self.committed:
            raise RuntimeError("checkpoint already committed")
        if self.commit_by is not None and self.node != self.commit_by:
            raise RuntimeError(f"destination {self.node!r} may not commit a checkpoint owned by {self.commit_by!r}")
        now = utc_now()
        upsert(
            conn,
            system_tables.sync_state,
            [
                {"graph": self.graph, "node": node, "cursor": cursor, "run_id": self.run_id, "updated_at": now}
                for node, cursor in self.cursors.items()
            ],
            keys=("graph", "node"),
        )
        self.suppressed, self.dropped = {}, set()
        if self.screen is not None:
            for i, (node, rej) in enumerate(self.rejected):
                if self.screen(rej):
                    self.dropped.add(i)
                    self.suppressed[node] = self.suppressed.get(node, 0) + 1
        rows = [
            {
                "run_id": self.run_id,
                "graph": self.graph,
                "node": node,
                "reason": _text(self.redact(rej.reason) if self.redact else rej.reason),
                "record_key": None if rej.key is None else _text(rej.key),
                "payload": rej.raw,
                "fingerprint": _fingerprint(self.graph, node, rej),
                "created_at": now,
            }
            for node, rej in self.quarantined()
        ]
        known = _known_fingerprints(conn, [row["fingerprint"] for row in rows])
        self.already_quarantined = {}
        seen = set(known)
        for row in rows:
            if row["fingerprint"] in seen:
                self.already_quarantined[row["node"]] = self.already_quarantined.get(row["node"], 0) + 1
            seen.add(row["fingerprint"])
        if self.resolved:
            kept = set(known.values())  # rejected again for the same reason: the row stays as it is
            gone = [qid for qid in self.resolved if qid not in kept]
            for start in range(0, len(gone), _CHUNK):
                conn.execute(delete(_quarantine).where(_quarantine.c.id.in_(gone[start : start + _CHUNK])))
        upsert(conn, _quarantine, rows, keys=("fingerprint",), update=())
        if self.progress is not None:
            conn.execute(
                update(system_tables.sync_runs)
                .where(system_tables.sync_runs.c.id == self.run_id, system_tables.sync_runs.c.status == "running")
                .values(nodes=self.progress())
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


_quarantine = system_tables.quarantine
_CHUNK = 5_000
"""Values per ``IN (...)``: well below the databases' limits on bound parameters."""


def _known_fingerprints(conn: Connection, fingerprints: list[str]) -> dict[str, int]:
    """Which of ``fingerprints`` are in quarantine already: fingerprint -> row id."""
    known: dict[str, int] = {}
    unique = sorted(set(fingerprints))
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start : start + _CHUNK]
        stmt = select(_quarantine.c.fingerprint, _quarantine.c.id).where(_quarantine.c.fingerprint.in_(chunk))
        known.update({fp: qid for fp, qid in conn.execute(stmt)})
    return known


def _text(value: str) -> str:
    """A text column's value: PostgreSQL refuses a NUL byte in text, so it is written as ``\\x00``
    (the raw payload, JSON, keeps the record as it came)."""
    return value.replace("\x00", "\\x00") if "\x00" in value else value


def _fingerprint(graph: str, node: str, rejected: Rejected) -> str:
    text = json.dumps([graph, node, rejected.reason, rejected.raw], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
