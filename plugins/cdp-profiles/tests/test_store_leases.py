"""A frozen run that lost its lease commits nothing to the profile store after waking.

The profile store commits each batch and its cursor in one transaction: the kernel's lease
fence (each checkpoint commit verifies the lease) must hold on that path too.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cdp_core import Record, Register, Transform, hookimpl
from cdp_core.config import load_config
from cdp_core.plugins import load_plugins
from cdp_core.runinfo import RunStatus
from cdp_core.runner import Runner
from cdp_core.scheduler import run_guarded
from cdp_core.store import SystemStore, make_engine, system_tables
from cdp_core.store.leases import Lease, LeaseInfo, Leases
from sqlalchemy import Engine, create_engine, event, select, update
from sqlalchemy.exc import OperationalError

from cdp_profiles import plugin as profiles_plugin
from cdp_profiles.store import tables
from cdp_profiles.store.schema import PROFILES


@pytest.fixture
def system(store_url: str) -> Iterator[SystemStore]:
    store = SystemStore(store_url).create([PROFILES])
    yield store
    store.engine.dispose()


def _frozen(leases: Leases, graph: str) -> Lease:
    """A held lease whose heartbeat never beats: its holder is frozen (SIGSTOP, a GC pause)."""
    info = leases.try_acquire(graph)
    assert info is not None
    return Lease(leases, info)


def _lease_row(system: SystemStore, graph: str) -> LeaseInfo | None:
    with system.engine.connect() as conn:
        row = conn.execute(select(system_tables.sync_leases).where(system_tables.sync_leases.c.graph == graph)).first()
    return None if row is None else LeaseInfo(**{k: getattr(row, k) for k in LeaseInfo.__dataclass_fields__})


FREEZE = {"reached": threading.Event(), "thaw": threading.Event()}


class Freeze(Transform):
    """In the thread named "frozen", stands still before its second batch until thawed
    (the first batch is committed by then): the whole process frozen, as by SIGSTOP."""

    def __init__(self, options: Any) -> None:
        self.seen = 0

    def process(self, batch: list[Record], ctx: Any) -> list[Record]:
        self.seen += 1
        if threading.current_thread().name == "frozen" and self.seen == 2:
            FREEZE["reached"].set()
            assert FREEZE["thaw"].wait(60)
        return batch


class FreezePlugin:
    @hookimpl
    def cdp_register_transforms(self, register: Register) -> None:
        register("freeze", Freeze)


class _FrozenLeases(Leases):
    def hold(self, graph: str) -> Lease:
        return _frozen(self, graph)


def _people_config(folder: Path, store_url: str, prefix: str) -> Path:
    folder.mkdir()
    with (folder / "people.jsonl").open("w") as out:
        for n in range(300):
            out.write(json.dumps({"id": f"{prefix}{n}", "email": f"{prefix}{n}@example.org", "n": n}) + "\n")
    path = folder / "connectors.toml"
    path.write_text(
        f"""
[store]
url = "{store_url}"
[connectors.files]
type = "jsonl"
streams.people = {{ path = "people.jsonl", cursor_field = "n", batch_size = 100, identifiers = {{ email = "email" }} }}
[connectors.store]
type = "profile_store"
[syncs.ingest.nodes.people]
source = "files.people"
[syncs.ingest.nodes.freeze]
transform = "freeze"
inputs = ["people"]
[syncs.ingest.nodes.store]
destination = "store"
inputs = ["freeze"]
"""
    )
    return path


def _stored_keys(system: SystemStore) -> set[str]:
    with system.engine.connect() as conn:
        return set(conn.execute(select(tables.record_index.c.key)).scalars())


def test_a_frozen_run_that_lost_its_lease_commits_nothing_after_waking(
    system: SystemStore, store_url: str, tmp_path: Path
) -> None:
    """Scheduler "a" runs the graph, commits a batch, freezes past its ttl; "b" takes the
    graph over and runs it to the end; "a" wakes up with its next batch in hand."""
    FREEZE["reached"].clear()
    FREEZE["thaw"].clear()
    plugins = load_plugins(entry_points=False, extra=[("freeze", FreezePlugin()), ("profiles", profiles_plugin)])
    config_a = load_config(_people_config(tmp_path / "a", store_url, "a"), plugins, env={})
    config_b = load_config(_people_config(tmp_path / "b", store_url, "b"), plugins, env={})
    outcome: list[Any] = []
    leases_a = _FrozenLeases(system.engine, holder="a", ttl=0.5)
    frozen = threading.Thread(
        target=lambda: outcome.append(run_guarded(config_a, plugins, system, "ingest", leases=leases_a, retries=2)),
        name="frozen",
    )
    frozen.start()
    try:
        assert FREEZE["reached"].wait(60), "a never got to its second batch"
        assert _stored_keys(system) == {f"a{n}" for n in range(100)}, "a's first batch was committed under its lease"
        time.sleep(0.6)  # a's lease expires
        with Leases(system.engine, holder="b", ttl=30).hold("ingest") as lease_b:
            run_b = Runner(config_b, plugins, system, lease=lease_b).run("ingest")
            assert run_b.status is RunStatus.succeeded, run_b.error
            cursor, keys, row = system.cursor("ingest", "people"), _stored_keys(system), _lease_row(system, "ingest")
            assert cursor == {"watermark": 299, "type": "number"} and row is not None and row.holder == "b"
            FREEZE["thaw"].set()
            frozen.join(60)
            assert not frozen.is_alive()
            assert _lease_row(system, "ingest") == row, "b's lease is untouched"
        [done] = outcome
        assert done.run.status is RunStatus.failed
        assert done.attempts == 1, "a run that lost its lease is not retried"
        assert done.run.error == (
            "LeaseLost: lease on sync graph 'ingest' was lost by a (it is held by b now): "
            "the batch and its cursor were not committed"
        )
        assert system.cursor("ingest", "people") == cursor, "the cursor did not move backwards"
        assert _stored_keys(system) == keys, "none of a's second batch landed"
        assert not keys & {f"a{n}" for n in range(100, 300)}
        [run_a] = [r for r in system.runs("ingest") if r.id == done.run.id]
        assert run_a.status is RunStatus.failed and run_a.error == done.run.error
    finally:
        FREEZE["thaw"].set()
        frozen.join(60)


def _renew_without_waiting(url: str, graph: str, holder: str) -> bool:
    """The heartbeat's renewal from a connection of its own that does not wait for a lock:
    True if it committed, False if the store's transaction held the write lock."""
    engine = (
        create_engine(url, connect_args={"timeout": 0}) if url.startswith("sqlite") else make_engine(url)
    )
    try:
        with engine.begin() as conn:
            now = datetime.now(UTC)
            conn.execute(
                update(system_tables.sync_leases)
                .where(system_tables.sync_leases.c.graph == graph, system_tables.sync_leases.c.holder == holder)
                .values(renewed_at=now, expires_at=now + timedelta(seconds=1))
            )
        return True
    except OperationalError as exc:
        assert "database is locked" in str(exc)
        return False
    finally:
        engine.dispose()


def test_twenty_syncs_under_a_one_second_lease_never_fail_on_a_lock(
    system: SystemStore, store_url: str, tmp_path: Path
) -> None:
    """20 syncs with a 1 s lease whose heartbeat renews while they write. Besides the real
    heartbeat, in every store transaction right after its first read of the store, the lease
    is renewed from another connection (what the heartbeat does at the worst moment, every
    time): on SQLite the store transaction holds the write lock from its start, so that
    renewal is refused at once (it waits for the commit when it is the heartbeat), and the
    store's first write is never refused for a snapshot that another commit made stale."""
    FREEZE["reached"].clear()
    plugins = load_plugins(entry_points=False, extra=[("freeze", FreezePlugin()), ("profiles", profiles_plugin)])
    folder = tmp_path / "g"
    config_path = _people_config(folder, store_url, "p")
    config = load_config(config_path, plugins, env={})
    leases = Leases(system.engine, holder="me", ttl=1.0)
    renewals: list[bool] = []

    def after_first_read(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith('SELECT r.stream, r."key", r.set_id, r.occurred_at, r.profile_id, r.identifiers FROM'):
            renewals.append(_renew_without_waiting(store_url, "ingest", "me"))

    # every engine: the profile store opens its own
    event.listen(Engine, "after_cursor_execute", after_first_read)
    try:
        for run in range(20):
            if run:  # new people for this run, after the cursor
                with (folder / "people.jsonl").open("a") as out:
                    for n in range(300 + 50 * (run - 1), 300 + 50 * run):
                        out.write(json.dumps({"id": f"p{n}", "email": f"p{n}@example.org", "n": n}) + "\n")
            outcome = run_guarded(config, plugins, system, "ingest", leases=leases)
            assert outcome.run is not None and outcome.run.status is RunStatus.succeeded, (run, outcome.run)
    finally:
        event.remove(Engine, "after_cursor_execute", after_first_read)
    assert len(_stored_keys(system)) == 300 + 50 * 19
    assert len(renewals) == 3 + 19, "every store transaction read the store before its first write"
    if store_url.startswith("sqlite"):
        assert not any(renewals), "the store transaction held SQLite's write lock from its start"
    else:
        assert all(renewals), "PostgreSQL: a concurrent commit is no reason to fail (row locks)"
    assert not [r for r in system.runs("ingest", limit=50) if r.status is not RunStatus.succeeded]
