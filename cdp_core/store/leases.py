"""Leases in the store: at most one process runs a given sync graph at any moment.

Why a lease and not a lock: schedulers on several machines share one store, and
a process may die without cleaning up (SIGKILL, a lost VM). A lease is a row
``(graph, holder, expires_at)`` that its holder keeps renewing while it runs
(a heartbeat thread); once ``expires_at`` has passed, the holder counts as dead
and anyone may take the lease over. It works the same on SQLite and PostgreSQL:

- **acquire** is one ``INSERT ... ON CONFLICT (graph) DO UPDATE ... WHERE
  sync_leases.expires_at <= :now RETURNING holder``: it inserts a free lease or
  takes over an expired one, atomically; a live holder's row is left alone and
  nothing is returned;
- **renew** is ``UPDATE ... WHERE graph = :g AND holder = :me``: one row means the
  lease is still ours (nobody can take a lease over without replacing the row);
- **release** deletes our row;
- **fence** (:meth:`Leases.fence`) is the renew statement run inside the transaction
  that commits a batch's checkpoint: a holder that was frozen past its ttl and lost
  the lease gets :class:`LeaseLost` there, and its batch rolls back with it.

Time comes from the database on PostgreSQL (``now()``), so the hosts' clocks
need not agree; SQLite is on one host, whose clock is used.

A holder id is ``host:pid:random``: unique per process start, readable in
``cdp scheduler status``. When a lease is taken over from a dead holder, the
runs that holder left as ``running`` are marked ``abandoned``, ending at
the moment the lease expired.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Connection, Engine, Interval, delete, func, literal, select, text, update

from cdp_core.runinfo import RunStatus
from cdp_core.store import system_tables
from cdp_core.store.sql import upsert_statement
from cdp_core.store.transaction import write_transaction
from cdp_core.timeutil import as_utc, utc_now

log = logging.getLogger("cdp.leases")

_leases = system_tables.sync_leases
_runs = system_tables.sync_runs

DEFAULT_TTL = 30.0
TTL_ENV = "CDP_LEASE_TTL"


def default_ttl() -> float:
    """Seconds a lease lives without renewal: ``$CDP_LEASE_TTL`` or 30."""
    value = os.environ.get(TTL_ENV)
    return float(value) if value else DEFAULT_TTL


def new_holder_id() -> str:
    """``host:pid:random``: the random part tells two starts of one pid apart."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class LeaseInfo:
    graph: str
    holder: str
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "holder": self.holder,
            "acquired_at": self.acquired_at.isoformat(),
            "renewed_at": self.renewed_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }


class LeaseBusy(Exception):
    """Another live process holds the graph's lease."""

    def __init__(self, graph: str, holder: LeaseInfo | None) -> None:
        self.graph = graph
        self.holder = holder
        who = f"{holder.holder} (since {holder.acquired_at:%Y-%m-%d %H:%M:%S} UTC)" if holder else "another process"
        super().__init__(f"sync graph {graph!r} is running in {who}")


class LeaseLost(Exception):
    """The lease a run was holding is no longer ours: another holder took the graph over.

    Raised from inside a checkpoint's transaction, so the batch it covers rolls back.
    """

    def __init__(self, graph: str, holder: str, current: str | None) -> None:
        self.graph = graph
        self.holder = holder
        self.current = current
        now = f"held by {current}" if current is not None else "held by nobody"
        super().__init__(
            f"lease on sync graph {graph!r} was lost by {holder} (it is {now} now): "
            "the batch and its cursor were not committed"
        )


class Leases:
    """Acquire, renew and release graph leases for one holder (one process)."""

    def __init__(self, engine: Engine, *, holder: str | None = None, ttl: float | None = None) -> None:
        self.engine = engine
        self.holder = holder or new_holder_id()
        self.ttl = default_ttl() if ttl is None else ttl
        if self.ttl <= 0:
            raise ValueError("a lease's ttl must be positive")

    # -- single operations --------------------------------------------------------------
    def try_acquire(self, graph: str) -> LeaseInfo | None:
        """Take the lease if it is free or expired; None if a live holder has it."""
        # Reads the previous holder, then writes: the write lock from the start on SQLite.
        with write_transaction(self.engine) as conn:
            now = _now(conn)
            previous = _row(conn, graph)
            lease = LeaseInfo(graph=graph, holder=self.holder, acquired_at=now, renewed_at=now,
                              expires_at=now + timedelta(seconds=self.ttl))
            stmt = upsert_statement(
                conn.dialect.name,
                _leases,
                ["graph"],
                ["holder", "acquired_at", "renewed_at", "expires_at"],
                where=_leases.c.expires_at <= now,
            ).values(**asdict(lease)).returning(_leases.c.holder)
            if conn.execute(stmt).scalar_one_or_none() != self.holder:
                return None
            if previous is not None and previous.holder != self.holder:
                _abandon_runs(conn, previous)
            return lease

    def renew(self, graph: str) -> bool:
        """Push the expiry out by one ttl; False if the lease is no longer ours."""
        with self.engine.begin() as conn:
            now = _now(conn)
            stmt = (
                update(_leases)
                .where(_leases.c.graph == graph, _leases.c.holder == self.holder)
                .values(renewed_at=now, expires_at=now + timedelta(seconds=self.ttl))
            )
            return conn.execute(stmt).rowcount == 1

    def fence(self, conn: Connection, graph: str) -> None:
        """Check, through ``conn`` and in its transaction, that the lease is still ours, and
        renew it; raise :class:`LeaseLost` (naming the current holder) if it is not.

        One ``UPDATE ... WHERE graph = :g AND holder = :me`` (a second statement only on
        failure, to name who holds it now). It must run in the transaction that commits
        the batch and its cursor, not in one of its own before it: a check in another
        transaction leaves a gap between the check and the commit in which the process
        can freeze, lose the lease and then still commit. Inside the transaction the
        UPDATE keeps the lease row locked until commit or rollback (a row lock on
        PostgreSQL, where a takeover waits and then finds the renewed expiry; SQLite's
        single writer lock), so a takeover happened either before it (we see the other
        holder and roll back) or after our commit.

        The expiry is renewed from the clock at this statement (``clock_timestamp()``
        on PostgreSQL, not ``now()``, which is the start of a possibly long transaction).
        """
        if conn.dialect.name == "postgresql":
            now: Any = func.clock_timestamp()
            expires: Any = now + literal(timedelta(seconds=self.ttl), Interval())
        else:
            now = utc_now()
            expires = now + timedelta(seconds=self.ttl)
        stmt = (
            update(_leases)
            .where(_leases.c.graph == graph, _leases.c.holder == self.holder)
            .values(renewed_at=now, expires_at=expires)
        )
        if conn.execute(stmt).rowcount != 1:
            current = _row(conn, graph)
            raise LeaseLost(graph, self.holder, current.holder if current is not None else None)

    def release(self, graph: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(_leases).where(_leases.c.graph == graph, _leases.c.holder == self.holder))

    def current(self) -> dict[str, LeaseInfo]:
        """Every live (unexpired) lease, by graph."""
        with self.engine.connect() as conn:
            now = _now(conn)
            rows = conn.execute(select(_leases).where(_leases.c.expires_at > now)).all()
        return {row.graph: _info(row) for row in rows}

    def holder_of(self, graph: str) -> LeaseInfo | None:
        return self.current().get(graph)

    # -- held for the length of a run ----------------------------------------------------
    def hold(self, graph: str) -> Lease:
        """Acquire the lease and keep it renewed until released; raise LeaseBusy if it is taken."""
        info = self.try_acquire(graph)
        if info is None:
            raise LeaseBusy(graph, self.holder_of(graph))
        lease = Lease(self, info)
        lease.start()
        return lease


class Lease:
    """A held lease with its heartbeat thread. ``lost`` is set when it can no longer be
    renewed in time; whoever runs under it must then stop after the current batch."""

    def __init__(self, leases: Leases, info: LeaseInfo) -> None:
        self.leases = leases
        self.info = info
        self.graph = info.graph
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{info.graph}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def fence(self, conn: Connection) -> None:
        """:meth:`Leases.fence` for this lease, in ``conn``'s transaction; on
        :class:`LeaseLost` also sets ``lost``, so the run stops and is not retried."""
        try:
            self.leases.fence(conn, self.graph)
        except LeaseLost:
            self.lost.set()
            raise

    def _beat(self) -> None:
        # This thread is not the run's: name the graph on its log lines explicitly.
        extra = {"graph": self.graph}
        ttl = self.leases.ttl
        last_ok = time.monotonic()
        while not self._stop.wait(ttl / 3):
            try:
                if not self.leases.renew(self.graph):
                    log.error(
                        "lease on %s was taken over by another process; stopping after this batch", self.graph, extra=extra
                    )
                    self.lost.set()
                    return
                last_ok = time.monotonic()
            except Exception as exc:  # noqa: BLE001 - a database hiccup; the next beat tries again
                log.warning("cannot renew the lease on %s: %s", self.graph, type(exc).__name__, extra=extra)
                if time.monotonic() - last_ok >= ttl * 0.8:
                    log.error(
                        "lease on %s could not be renewed before it expires; stopping after this batch",
                        self.graph,
                        extra=extra,
                    )
                    self.lost.set()
                    return

    def release(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()
        try:
            self.leases.release(self.graph)
        except Exception as exc:  # noqa: BLE001 - it expires by itself
            log.warning("cannot release the lease on %s (it expires by itself): %s", self.graph, type(exc).__name__)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


# -- internals ---------------------------------------------------------------------------


def _now(conn: Connection) -> datetime:
    if conn.dialect.name == "postgresql":
        value = conn.execute(text("SELECT now()")).scalar_one()
        return as_utc(value)
    return utc_now()


def _info(row: Any) -> LeaseInfo:
    return LeaseInfo(
        graph=row.graph,
        holder=row.holder,
        # SQLite hands back naive datetimes; every lease time is written in UTC.
        acquired_at=as_utc(row.acquired_at),
        renewed_at=as_utc(row.renewed_at),
        expires_at=as_utc(row.expires_at),
    )


def _row(conn: Connection, graph: str) -> LeaseInfo | None:
    row = conn.execute(select(_leases).where(_leases.c.graph == graph)).first()
    return _info(row) if row is not None else None


def _abandon_runs(conn: Connection, dead: LeaseInfo) -> None:
    """The dead holder's runs of this graph will never finish: say so in the run history."""
    count = conn.execute(
        update(_runs)
        .where(_runs.c.graph == dead.graph, _runs.c.status == "running", _runs.c.started_at <= dead.expires_at)
        .values(
            status=str(RunStatus.abandoned),
            finished_at=dead.expires_at,
            error=f"abandoned: the process running it ({dead.holder}) stopped renewing its lease",
        )
    ).rowcount
    if count:
        log.warning("%d run(s) of %s abandoned by %s marked abandoned", count, dead.graph, dead.holder)
