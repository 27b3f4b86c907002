"""What the scheduler reads from the run history: last runs, last successes, and their summaries.

Only syncs count here: a retry of quarantined records (``cdp quarantine retry``) reads
no source, so it neither serves a schedule slot nor stands for a dependency's success.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from cdp_core.runinfo import RunInfo, RunKind, RunStatus
from cdp_core.store import SystemStore, system_tables
from cdp_core.store.system import _run_from_row
from cdp_core.timeutil import as_utc

_runs = system_tables.sync_runs


def last_run(system: SystemStore, graph: str, status: RunStatus | None = None, finished: bool = False) -> RunInfo | None:
    """The newest sync of a graph; only with that status, or only a finished one (not ``running``)."""
    stmt = (
        select(_runs)
        .where(_runs.c.graph == graph, _runs.c.kind == str(RunKind.sync))
        .order_by(_runs.c.started_at.desc())
        .limit(1)
    )
    if status is not None:
        stmt = stmt.where(_runs.c.status == str(status))
    elif finished:
        stmt = stmt.where(_runs.c.status != str(RunStatus.running))
    with system.engine.connect() as conn:
        row = conn.execute(stmt).first()
    return _run_from_row(row._mapping) if row is not None else None


def last_success_start(system: SystemStore, graph: str) -> datetime | None:
    """When the newest complete successful run of the graph started: the measure of "has this slot been served".

    A run interrupted by a shutdown (status ``interrupted``) does not count: the next
    start catches up from its cursor.
    """
    stmt = (
        select(_runs.c.started_at)
        .where(_runs.c.graph == graph, _runs.c.kind == str(RunKind.sync), _runs.c.status == str(RunStatus.succeeded))
        .order_by(_runs.c.started_at.desc())
        .limit(1)
    )
    with system.engine.connect() as conn:
        started = conn.execute(stmt).scalar_one_or_none()
    return as_utc(started) if started is not None else None


def summary(run: RunInfo | None) -> dict[str, Any] | None:
    """A run as ``cdp scheduler status`` shows it: status, times, duration and total counts."""
    if run is None:
        return None
    duration = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
    return {
        "id": run.id,
        "status": str(run.status),
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "duration_seconds": round(duration, 3) if duration is not None else None,
        **run.totals().to_dict(),
        "error": run.error,
    }
