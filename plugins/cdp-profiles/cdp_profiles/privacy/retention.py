"""Retention: deleting what ``[privacy.retention]`` says is kept no longer (docs/privacy.md, "Retention").

One transaction, a few set-based statements per kind, whatever the number of rows:

- ``events``, ``orders``, ``nps_responses``, ``consents``: records of that kind whose time
  (when it happened; when stored for a record without a time) is before the cutoff go, with
  their ``record_index`` rows. Consents keep the decision in force for each person and
  purpose, however old: it still decides what may be exported. The identity graph stays as
  it is (a record's identifier set outlives its records), so nobody splits or merges.
- ``quarantine``: entries rejected before the cutoff.
- ``runs``: finished runs started before the cutoff, except each graph's latest run and
  latest successful sync, which the scheduler reads (docs/scheduler.md).
- ``ingest_log``: messages received before the cutoff that every node reading their source
  has read: one DELETE per source, up to its readers' smallest committed cursor
  (log_retention.py). What no node has read stays.

:func:`purge` is what ``cdp privacy purge`` and the daily ``privacy-retention`` job run; a
purge that deletes writes one audit row (kind ``purge``) with the count per kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cdp_core.ingest.log import LOG
from cdp_core.jobs import Job
from cdp_core.runinfo import RunKind, RunStatus
from cdp_core.store import system_tables
from cdp_core.store.transaction import write_transaction
from cdp_core.timeutil import utc_now
from sqlalchemy import ColumnElement, Connection, Engine, Table, and_, delete, exists, func, not_, select, tuple_

from cdp_profiles.consent import latest_consents
from cdp_profiles.privacy.audit import write_request
from cdp_profiles.privacy.config import RetentionConfig, privacy_of
from cdp_profiles.privacy.log_retention import LogReaders, log_readers, purgeable, read_up_to
from cdp_profiles.store import tables
from cdp_profiles.store.schema import WRITE_LOCK

_index, _quarantine, _runs = tables.record_index, system_tables.quarantine, system_tables.sync_runs
RECORD_KINDS: dict[str, tuple[str, Table]] = {
    "events": ("event", tables.events),
    "orders": ("order", tables.orders),
    "nps_responses": ("nps_response", tables.nps_responses),
    "consents": ("consent", tables.consents),
}
"""Retention kind -> (``record_index.kind``, its table)."""


@dataclass
class PurgeResult:
    now: datetime
    dry_run: bool
    cutoffs: dict[str, datetime] = field(default_factory=dict)
    """kind -> rows older than this go (the kinds given a retention)."""
    counts: dict[str, int] = field(default_factory=dict)
    """kind -> rows deleted (a dry run: rows that would be)."""
    request_id: str | None = None
    """The audit row written (None for a dry run, or when no kind has a retention)."""
    held: list[str] = field(default_factory=list)
    """Why the ingest log was kept whole although it has a retention (readers that cannot be known)."""

    def summary(self) -> str:
        verb = "would purge" if self.dry_run else "purged"
        text = f"{verb}: " + (", ".join(f"{k} {n:,}" for k, n in self.counts.items()) or "nothing (no retention set)")
        return text + "".join(f"; ingest_log kept: {why}" for why in self.held)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "now": self.now.isoformat(),
            "kinds": {k: {"before": self.cutoffs[k].isoformat(), "rows": n} for k, n in self.counts.items()},
            "request_id": self.request_id,
            "ingest_log_held": self.held,
        }


def purge(
    engine: Engine, retention: RetentionConfig, readers: LogReaders, now: datetime, dry_run: bool = False
) -> PurgeResult:
    """Delete (or with ``dry_run`` count) what is older than its kind's retention, as of ``now``.

    :param readers: who reads the ingest log (:func:`log_readers` of the config): what they have
        not all read is kept.
    """
    periods = retention.periods()
    result = PurgeResult(now=now, dry_run=dry_run)
    if not periods:
        return result
    with write_transaction(engine, lock=WRITE_LOCK) as conn:
        for kind, period in periods.items():
            cutoff = now - period
            result.cutoffs[kind] = cutoff
            if kind == "ingest_log":
                result.held = list(readers.unknown)
                result.counts[kind] = _purge_log(conn, readers, cutoff, dry_run)
            else:
                result.counts[kind] = _purge_kind(conn, kind, cutoff, dry_run)
        if not dry_run:
            details = {"counts": result.counts, "retention": {k: _days(p) for k, p in periods.items()}}
            result.request_id = write_request(
                conn, "purge", "done", created_at=now, finished_at=max(now, utc_now()), details=details
            )
    return result


def _days(period: timedelta) -> str:
    return f"{period.days}d" if period == timedelta(days=period.days) else str(period)


def _purge_kind(conn: Connection, kind: str, cutoff: datetime, dry_run: bool) -> int:
    if kind in RECORD_KINDS:
        return _purge_records(conn, kind, cutoff, dry_run)
    if kind == "quarantine":
        return _apply(conn, _quarantine, _quarantine.c.created_at < cutoff, dry_run)
    if kind == "runs":
        return _apply(conn, _runs, _old_runs(cutoff), dry_run)
    raise ValueError(f"unknown retention kind {kind!r}")


def _apply(conn: Connection, table: Table, where: ColumnElement[bool], dry_run: bool) -> int:
    if dry_run:
        return int(conn.execute(select(func.count()).select_from(table).where(where)).scalar_one())
    return int(conn.execute(delete(table).where(where)).rowcount)


def _purge_records(conn: Connection, kind: str, cutoff: datetime, dry_run: bool) -> int:
    index_kind, table = RECORD_KINDS[kind]
    old = and_(_index.c.kind == index_kind, func.coalesce(_index.c.occurred_at, _index.c.updated_at) < cutoff)
    if kind == "consents":  # the decision in force for each person and purpose stays, however old
        in_force = latest_consents().subquery("in_force")
        old = and_(old, tuple_(_index.c.stream, _index.c.key).not_in(select(in_force.c.stream, in_force.c.key)))
    doomed = select(_index.c.stream, _index.c.key).where(old)
    if dry_run:
        return int(conn.execute(select(func.count()).select_from(doomed.subquery())).scalar_one())
    # the records first, while their index rows still say which they are; then the index rows
    deleted = conn.execute(delete(table).where(tuple_(table.c.stream, table.c.key).in_(doomed))).rowcount
    conn.execute(delete(_index).where(old))
    return int(deleted)


def _purge_log(conn: Connection, readers: LogReaders, cutoff: datetime, dry_run: bool) -> int:
    """One statement per ingest source all of whose readers have committed a cursor."""
    return sum(
        _apply(conn, LOG, purgeable(s, up_to, cutoff), dry_run) for s, up_to in read_up_to(conn, readers).items()
    )


def _old_runs(cutoff: datetime) -> ColumnElement[bool]:
    """Finished runs started before ``cutoff`` but a graph's latest run and its latest successful sync."""
    newer = _runs.alias("newer")
    later = and_(newer.c.graph == _runs.c.graph, newer.c.started_at > _runs.c.started_at)
    success = and_(_runs.c.kind == str(RunKind.sync), _runs.c.status == str(RunStatus.succeeded))
    later_success = and_(later, newer.c.kind == str(RunKind.sync), newer.c.status == str(RunStatus.succeeded))
    latest_success = and_(success, not_(exists().where(later_success)))
    return and_(
        _runs.c.started_at < cutoff,
        _runs.c.status != str(RunStatus.running),
        exists().where(later),
        not_(latest_success),
    )


# -- the scheduler's daily job -----------------------------------------------------------------

SCHEDULE = "45 3 * * *"
"""03:45 UTC, every day: after the daily segments refresh (03:15)."""


def purge_on_schedule(config: Any) -> str | None:
    """``cdp privacy purge`` for the scheduler; nothing to do without ``[privacy.retention]``."""
    from cdp_profiles.store.schema import job_store

    retention = privacy_of(config.sections).retention
    if not retention.periods():
        return "no retention configured ([privacy.retention])"
    readers = log_readers(config)
    with job_store(config) as engine:
        return purge(engine, retention, readers, utc_now()).summary()


RETENTION_JOB = Job(
    schedule=SCHEDULE,
    run=purge_on_schedule,
    description="delete what [privacy.retention] keeps no longer (events, orders, NPS answers, consents, quarantine, "
    "runs, the ingest log as far as read)",
)
