"""What observers and the CLI learn about a run: its identity, status and per-node counts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class RunStatus(StrEnum):
    running = "running"
    succeeded = "succeeded"
    interrupted = "interrupted"
    """Stopped on request (a scheduler shutdown, a lost lease) after a committed page:
    consistent, but not complete; the next run resumes from the cursor."""
    failed = "failed"
    abandoned = "abandoned"
    """Its process died (kill -9, a lost machine) and its lease expired; whoever took the
    lease over marked it, ending when the lease expired, with the counts it had committed."""


class RunKind(StrEnum):
    """What a run does: read its graph's sources (a sync), or send quarantined records again."""

    sync = "sync"
    retry = "retry"
    """``cdp quarantine retry``: never counts as a served schedule slot or a dependency's success."""


@dataclass
class NodeStats:
    """Counts for one node of one run.

    ``records_in`` is what reached the node, ``records_out`` what it passed on
    (for a destination: what it wrote), ``rejected`` what went to quarantine,
    ``already_quarantined`` how many of those were in quarantine before (the same
    record rejected for the same reason by an earlier run): ``new_rejects`` is the rest.
    ``held_back`` is what a destination node's export gates kept from it, by reason
    (``{"no ads consent": 3}``): neither written nor rejected (cdp_core/gates.py).
    ``suppressed`` is what the run's record screens dropped at the node (a suppressed person's
    records and quarantine entries, cdp_core/screens.py): neither passed on, written nor
    quarantined. A source counts what it read but dropped; a destination what was dropped from
    its batch before the write, and its rejects that were dropped instead of quarantined.
    For a destination, ``records_in`` = ``records_out`` + ``rejected`` + ``held_back_total`` + ``suppressed``.
    """

    kind: str
    records_in: int = 0
    records_out: int = 0
    rejected: int = 0
    seconds: float = 0.0
    error: str | None = None
    already_quarantined: int = 0
    warnings: dict[str, int] = field(default_factory=dict)
    """What the node worked around, message -> count: e.g. a trait not set because its value was
    not of the declared type (the record itself was stored)."""
    held_back: dict[str, int] = field(default_factory=dict)
    suppressed: int = 0

    @property
    def new_rejects(self) -> int:
        return self.rejected - self.already_quarantined

    @property
    def held_back_total(self) -> int:
        return sum(self.held_back.values())

    def held_back_text(self) -> str:
        """``"no ads consent: 2, ads consent revoked: 1"`` (reasons in name order), or ``""``."""
        return ", ".join(f"{reason}: {count:,}" for reason, count in sorted(self.held_back.items()))

    def hold_back(self, counts: dict[str, int]) -> None:
        """Add a batch's held-back counts by reason."""
        for reason, count in counts.items():
            if count:
                self.held_back[reason] = self.held_back.get(reason, 0) + count

    @property
    def per_second(self) -> float:
        handled = max(self.records_in, self.records_out)
        return handled / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class RunTotals:
    """A run's counts as the CLI, the scheduler status and alerts show them."""

    read: int
    """What the source nodes passed on."""
    written: int
    """What the destination nodes wrote."""
    rejected: int
    """What any node sent to quarantine."""
    already_quarantined: int = 0
    """Of ``rejected``, what was in quarantine before this run (rejected again, for the same reason)."""
    held_back: int = 0
    """What the destination nodes' export gates kept from them (no consent for the node's purpose)."""
    suppressed: int = 0
    """What the run's record screens dropped at any node (a suppressed person's records and rejects)."""

    @property
    def new_rejects(self) -> int:
        return self.rejected - self.already_quarantined

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class RunInfo:
    """One run of one sync graph."""

    id: str
    graph: str
    started_at: datetime
    status: RunStatus = RunStatus.running
    finished_at: datetime | None = None
    error: str | None = None
    nodes: dict[str, NodeStats] = field(default_factory=dict)
    kind: RunKind = RunKind.sync

    def totals(self) -> RunTotals:
        """Read, written, rejected, held back and suppressed over all nodes (transforms count only their rejects)."""
        nodes = self.nodes.values()
        return RunTotals(
            read=sum(s.records_out for s in nodes if s.kind == "source"),
            written=sum(s.records_out for s in nodes if s.kind == "destination"),
            rejected=sum(s.rejected for s in nodes),
            already_quarantined=sum(s.already_quarantined for s in nodes),
            held_back=sum(s.held_back_total for s in nodes),
            suppressed=sum(s.suppressed for s in nodes),
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = str(self.status)
        data["kind"] = str(self.kind)
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        return data
