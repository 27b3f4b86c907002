"""Graph leases in the store, on SQLite and PostgreSQL: atomic, renewed while held, expiring when the holder dies."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from test_scheduler_kit import runs

from cdp_core.runinfo import RunInfo
from cdp_core.store import SystemStore
from cdp_core.store.lease_models import SyncLease
from cdp_core.store.leases import LeaseBusy, Leases, new_holder_id


@pytest.fixture
def system(store_url: str) -> Iterator[SystemStore]:
    store = SystemStore(store_url).create()
    yield store
    store.engine.dispose()


def test_a_holder_id_names_host_and_process() -> None:
    first, second = new_holder_id(), new_holder_id()
    assert first != second
    assert first.split(":")[1] == str(__import__("os").getpid())


def test_one_holder_at_a_time_then_the_next(system: SystemStore) -> None:
    a, b = Leases(system.engine, holder="a", ttl=30), Leases(system.engine, holder="b", ttl=30)
    got = a.try_acquire("ingest")
    assert got is not None and got.holder == "a"
    assert b.try_acquire("ingest") is None
    assert a.try_acquire("ingest") is None, "not re-entrant: a holder cannot run a graph twice either"
    assert b.try_acquire("export") is not None, "leases are per graph"
    assert set(a.current()) == {"ingest", "export"}
    assert b.holder_of("ingest").holder == "a"  # type: ignore[union-attr]
    b.release("ingest")  # not b's: nothing happens
    assert b.try_acquire("ingest") is None
    a.release("ingest")
    assert b.try_acquire("ingest") is not None


def test_renewal_pushes_the_expiry_and_only_for_the_holder(system: SystemStore) -> None:
    a, b = Leases(system.engine, holder="a", ttl=5), Leases(system.engine, holder="b", ttl=5)
    first = a.try_acquire("g")
    assert first is not None
    time.sleep(0.05)
    assert a.renew("g")
    assert a.holder_of("g").expires_at > first.expires_at  # type: ignore[union-attr]
    assert not b.renew("g")


def test_an_expired_lease_is_taken_over_and_its_dead_holders_runs_are_abandoned(system: SystemStore) -> None:
    dead, alive = Leases(system.engine, holder="dead", ttl=0.3), Leases(system.engine, holder="alive", ttl=30)
    assert dead.try_acquire("g") is not None
    stale = RunInfo(id="stale", graph="g", started_at=datetime.now(UTC))
    system.start_run(stale)
    other = RunInfo(id="other-graph", graph="h", started_at=datetime.now(UTC))
    system.start_run(other)
    assert alive.try_acquire("g") is None
    time.sleep(0.4)
    assert dead.holder_of("g") is None, "an expired lease is nobody's"
    taken = alive.try_acquire("g")
    assert taken is not None and taken.holder == "alive"
    assert not dead.renew("g"), "the dead holder, back to life, learns it lost the lease"
    [abandoned] = runs(system.engine.url.render_as_string(hide_password=False), "g")
    assert abandoned.status == "failed" and abandoned.finished_at is not None
    assert abandoned.finished_at <= taken.acquired_at
    assert "abandoned" in (system.runs("g")[0].error or "")
    assert system.runs("h")[0].status == "running", "another graph's run is left alone"


def test_threads_racing_for_one_lease_get_it_once(system: SystemStore) -> None:
    winners: list[str] = []
    barrier = threading.Barrier(8)

    def race(i: int) -> None:
        leases = Leases(system.engine, holder=f"h{i}", ttl=30)
        barrier.wait()
        if leases.try_acquire("g") is not None:
            winners.append(leases.holder)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(winners) == 1
    assert Leases(system.engine).holder_of("g").holder == winners[0]  # type: ignore[union-attr]


def test_a_held_lease_outlives_its_ttl_while_the_heartbeat_runs(system: SystemStore) -> None:
    holder, other = Leases(system.engine, holder="a", ttl=0.6), Leases(system.engine, holder="b", ttl=0.6)
    with holder.hold("g") as lease:
        with pytest.raises(LeaseBusy) as busy:
            other.hold("g")
        assert busy.value.holder is not None and busy.value.holder.holder == "a"
        assert "'g' is running in a" in str(busy.value)
        deadline = time.monotonic() + 1.8  # three times the ttl
        while time.monotonic() < deadline:
            assert other.try_acquire("g") is None
            time.sleep(0.1)
        assert not lease.lost.is_set()
    assert other.try_acquire("g") is not None, "released on leaving the block"


def test_a_holder_whose_lease_was_taken_over_learns_it(system: SystemStore) -> None:
    holder = Leases(system.engine, holder="a", ttl=0.6)
    lease = holder.hold("g")
    try:
        with system.engine.begin() as conn:  # as if "b" took over while "a" was frozen
            conn.execute(update(SyncLease.__table__).values(holder="b"))
        assert lease.lost.wait(2), "the heartbeat finds the row is no longer its own"
    finally:
        lease.release()
    assert Leases(system.engine).holder_of("g").holder == "b"  # type: ignore[union-attr]


HOLDER = r"""
import sys, time
from cdp_core.store import SystemStore
from cdp_core.store.leases import Leases
system = SystemStore(sys.argv[1]).create()
lease = Leases(system.engine, holder="child", ttl=float(sys.argv[2])).hold("g")
print("held", flush=True)
time.sleep(600)
"""


def test_the_lease_of_a_sigkilled_holder_expires(system: SystemStore, store_url: str) -> None:
    ttl = 1.5
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, store_url, str(ttl)], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        time.sleep(ttl * 1.5)  # longer than the ttl: the heartbeat keeps it
        other = Leases(system.engine, holder="other", ttl=30)
        assert other.try_acquire("g") is None
        child.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        child.wait(10)
        taken = None
        while taken is None and time.monotonic() - killed_at < ttl + 3:
            taken = other.try_acquire("g")
            time.sleep(0.05)
        assert taken is not None, "the dead holder's lease never expired"
        assert time.monotonic() - killed_at <= ttl + 1.0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_expiry_is_in_the_row(system: SystemStore) -> None:
    leases = Leases(system.engine, holder="a", ttl=10)
    info = leases.try_acquire("g")
    assert info is not None
    assert timedelta(seconds=9.9) <= info.expires_at - info.acquired_at <= timedelta(seconds=10.1)
    assert leases.current()["g"].expires_at == info.expires_at
