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
from sqlalchemy import select, update
from test_scheduler_kit import runs, wait_for

from cdp_core.records import Rejected
from cdp_core.runinfo import RunInfo
from cdp_core.store import Checkpoint, SystemStore, system_tables
from cdp_core.store.leases import Lease, LeaseBusy, LeaseInfo, LeaseLost, Leases, new_holder_id


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
    # A live lease is not taken (test_one_holder_at_a_time_then_the_next): here only what follows
    # its expiry, waited for as a condition, so that a loaded machine cannot make it flaky.
    dead, alive = Leases(system.engine, holder="dead", ttl=0.3), Leases(system.engine, holder="alive", ttl=30)
    assert dead.try_acquire("g") is not None
    stale = RunInfo(id="stale", graph="g", started_at=datetime.now(UTC))
    system.start_run(stale)
    other = RunInfo(id="other-graph", graph="h", started_at=datetime.now(UTC))
    system.start_run(other)
    wait_for(lambda: dead.holder_of("g") is None, 30, "the lease to expire")  # an expired lease is nobody's
    taken = alive.try_acquire("g")
    assert taken is not None and taken.holder == "alive"
    assert not dead.renew("g"), "the dead holder, back to life, learns it lost the lease"
    [abandoned] = runs(system.engine.url.render_as_string(hide_password=False), "g")
    assert abandoned.status == "abandoned" and abandoned.finished_at is not None
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
    # The heartbeat renews every third of the ttl: 2 s leaves it 1.3 s of slack on a loaded machine.
    holder, other = Leases(system.engine, holder="a", ttl=2), Leases(system.engine, holder="b", ttl=2)
    with holder.hold("g") as lease:
        with pytest.raises(LeaseBusy) as busy:
            other.hold("g")
        assert busy.value.holder is not None and busy.value.holder.holder == "a"
        assert "'g' is running in a" in str(busy.value)
        deadline = time.monotonic() + 5  # two and a half times the ttl
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
            conn.execute(update(system_tables.sync_leases).values(holder="b"))
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
    ttl = 3.0  # the child's heartbeat renews every second: slack for a loaded machine
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
        while taken is None and time.monotonic() - killed_at < ttl + 60:  # a bound, not a measurement
            taken = other.try_acquire("g")
            time.sleep(0.05)
        assert taken is not None, "the dead holder's lease never expired"
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


# -- fencing: a holder that lost its lease commits nothing more ------------------------------


def _frozen(leases: Leases, graph: str) -> Lease:
    """A held lease whose heartbeat never beats: its holder is frozen (SIGSTOP, a GC pause)."""
    info = leases.try_acquire(graph)
    assert info is not None
    return Lease(leases, info)


def _lease_row(system: SystemStore, graph: str) -> LeaseInfo | None:
    with system.engine.connect() as conn:
        row = conn.execute(select(system_tables.sync_leases).where(system_tables.sync_leases.c.graph == graph)).first()
    return None if row is None else LeaseInfo(**{k: getattr(row, k) for k in LeaseInfo.__dataclass_fields__})


def test_a_checkpoint_under_a_held_lease_commits_and_renews_it(system: SystemStore) -> None:
    leases = Leases(system.engine, holder="a", ttl=30)
    lease = _frozen(leases, "g")
    before = _lease_row(system, "g")
    time.sleep(0.05)
    system.commit(Checkpoint("g", "run-a", {"people": {"watermark": 1}}, lease=lease))
    assert system.cursor("g", "people") == {"watermark": 1}
    after = _lease_row(system, "g")
    assert before is not None and after is not None
    assert after.holder == "a" and after.expires_at > before.expires_at, "a commit proves the holder alive"
    assert not lease.lost.is_set()


def test_a_checkpoint_without_a_lease_commits_as_before(system: SystemStore) -> None:
    Leases(system.engine, holder="someone", ttl=30).try_acquire("g")  # not consulted without a lease
    system.commit(Checkpoint("g", "manual", {"people": 7}))
    assert system.cursor("g", "people") == 7


def test_a_checkpoint_of_a_holder_whose_lease_was_taken_over_is_refused(system: SystemStore) -> None:
    frozen = _frozen(Leases(system.engine, holder="a", ttl=0.3), "g")
    time.sleep(0.4)
    assert Leases(system.engine, holder="b", ttl=30).try_acquire("g") is not None
    system.commit(Checkpoint("g", "run-b", {"people": {"watermark": 9}}))  # the new holder's progress
    taken = _lease_row(system, "g")
    rejected = [("people", Rejected(reason="bad", raw={"id": 1}, key="1"))]
    with pytest.raises(LeaseLost) as lost:
        system.commit(Checkpoint("g", "run-a", {"people": {"watermark": 3}}, rejected, lease=frozen))
    assert lost.value.graph == "g" and lost.value.holder == "a" and lost.value.current == "b"
    assert str(lost.value) == (
        "lease on sync graph 'g' was lost by a (it is held by b now): the batch and its cursor were not committed"
    )
    assert frozen.lost.is_set(), "the run stops (and is not retried)"
    assert system.cursor("g", "people") == {"watermark": 9}, "the cursor did not move backwards"
    assert system.quarantine(graph="g") == [], "the refused checkpoint's quarantine rows rolled back too"
    assert _lease_row(system, "g") == taken, "the new holder's lease is untouched"


def test_a_checkpoint_of_a_lease_nobody_holds_any_more_is_refused(system: SystemStore) -> None:
    frozen = _frozen(Leases(system.engine, holder="a", ttl=0.3), "g")
    time.sleep(0.4)
    other = Leases(system.engine, holder="b", ttl=30)
    assert other.try_acquire("g") is not None
    other.release("g")  # b ran the graph and is done
    with pytest.raises(LeaseLost, match="held by nobody"):
        system.commit(Checkpoint("g", "run-a", {"people": 3}, lease=frozen))
    assert system.cursor("g", "people") is None
    assert _lease_row(system, "g") is None, "refusing does not bring the lease back"
