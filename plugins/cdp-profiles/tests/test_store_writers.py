"""The profile store's writers run one at a time on PostgreSQL too.

SQLite admits one writer at a time by itself (``BEGIN IMMEDIATE``, cdp_core/store/transaction.py).
PostgreSQL would run two writers side by side, each deciding from what it read before the other
committed: a sync's batch and ``cdp serve``'s could each found a profile for the same new person,
or a forget miss the record a batch adds to its person. Every writer of the profile tables names
the product's ``WRITE_LOCK`` instead: while one holds it, the others wait.

Each case below holds the lock in an open transaction, starts one writer in a thread, and watches
PostgreSQL's own view of that writer's session until it waits for the advisory lock. A writer
that does not take the lock finishes instead, and the case fails. Nothing here depends on timing:
the test waits for a state, not for a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cdp_core.config import load_config
from cdp_core.plugins import load_plugins
from cdp_core.records import Record, RecordKind
from cdp_core.store.checkpoint import Checkpoint
from cdp_core.store.transaction import advisory_key, write_transaction
from sqlalchemy import Engine, text

from cdp_profiles import plugin as profiles_plugin
from cdp_profiles.identity import IdentityConfig
from cdp_profiles.membership.refresh import refresh
from cdp_profiles.privacy.config import RetentionConfig
from cdp_profiles.privacy.forget import forget
from cdp_profiles.privacy.keys import PrivacyKey
from cdp_profiles.privacy.log_retention import LogReaders
from cdp_profiles.privacy.retention import purge
from cdp_profiles.segments import compile_rules
from cdp_profiles.store.profiles import ProfileWriter
from cdp_profiles.store.schema import WRITE_LOCK

pytestmark = pytest.mark.postgres

T0 = datetime(2024, 6, 1, 9, tzinfo=UTC)
KEY = "k" * 40
RULES = compile_rules({"events_n": "count(events)"}, {"active": "count(events) > 0"})
WAIT_LIMIT = 120.0  # seconds: only a bound on a hung test, never reached by a writer that waits
CONFIG = """
[store]
url = "{url}"

[privacy]
key = "${{CDP_PRIVACY_KEY}}"

[connectors.store]
type = "profile_store"
"""


def anna(key: str, kind: RecordKind = RecordKind.profile, days: int = 0) -> Record:
    data = {"name": "page_view", "properties": {}} if kind is RecordKind.event else {"first_name": "Anna"}
    return Record(
        stream="crm.contacts" if kind is RecordKind.profile else "web.events", key=key, kind=kind, data=data,
        identifiers={"email": "anna@example.org"}, occurred_at=T0 + timedelta(days=days),
    )  # fmt: skip


@pytest.fixture
def store(postgres_database: str) -> Iterator[Engine]:
    from cdp_core.store.engine import make_engine

    from cdp_profiles.store.schema import ensure_schema

    engine = make_engine(postgres_database)
    ensure_schema(engine)
    ProfileWriter(engine, IdentityConfig()).write(
        [anna("c1"), anna("e1", RecordKind.event, days=1)], Checkpoint(graph="t", run_id="r1")
    )
    yield engine
    engine.dispose()


def _forget(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], Any]:
    monkeypatch.setenv("CDP_PRIVACY_KEY", KEY)
    path = tmp_path / "connectors.toml"
    path.write_text(CONFIG.format(url=engine.url.render_as_string(hide_password=False)))
    config = load_config(path, load_plugins(entry_points=False, extra=[("profiles", profiles_plugin)]))
    return lambda: forget(engine, config, "anna@example.org", PrivacyKey(KEY))


WRITERS: dict[str, Callable[[Engine, Path, pytest.MonkeyPatch], Callable[[], Any]]] = {
    "a batch": lambda engine, *_: lambda: ProfileWriter(engine, IdentityConfig()).write(
        [anna("c2", days=2)], Checkpoint(graph="serve", run_id="r2")
    ),
    "a segment refresh": lambda engine, *_: lambda: refresh(engine, RULES, now=T0 + timedelta(days=3)),
    "the retention sweep": lambda engine, *_: lambda: purge(
        engine, RetentionConfig(events="1d"), LogReaders(), T0 + timedelta(days=30)
    ),
    "a forget": _forget,
}


def _waiting_for_the_lock(engine: Engine) -> bool:
    """Whether a session waits for the store's advisory lock (the test's own holds it: only the writer can)."""
    with engine.connect() as conn:
        waiting = conn.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND classid = 0 AND objid = :key AND objsubid = 1"
            ),
            {"key": advisory_key(WRITE_LOCK)},
        ).scalar_one()
    return bool(waiting)


@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_writer_waits_while_another_holds_the_store(
    store: Engine, writer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = WRITERS[writer](store, tmp_path, monkeypatch)
    outcome: dict[str, Any] = {}

    def go() -> None:
        try:
            outcome["result"] = run()
        except BaseException as exc:  # reported by the main thread
            outcome["error"] = exc

    thread = threading.Thread(target=go, name=f"writer: {writer}")
    with write_transaction(store, lock=WRITE_LOCK):
        thread.start()
        waited = threading.Event()
        deadline = threading.Event()
        timer = threading.Timer(WAIT_LIMIT, deadline.set)
        timer.start()
        try:
            while not deadline.is_set():
                if _waiting_for_the_lock(store):
                    waited.set()
                    break
                if not thread.is_alive():
                    break
                deadline.wait(0.05)
        finally:
            timer.cancel()
        assert waited.is_set(), f"{writer} ran while another writer held the store ({outcome})"
        assert thread.is_alive()
    thread.join(WAIT_LIMIT)
    assert not thread.is_alive() and "error" not in outcome, outcome.get("error")
