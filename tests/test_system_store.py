"""SystemStore (sync state, runs, quarantine) and one runner round trip, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, func, insert, inspect, select

from cdp_core.config import load_config
from cdp_core.plugins import load_plugins
from cdp_core.records import Rejected
from cdp_core.runinfo import NodeStats, RunInfo, RunStatus
from cdp_core.runner import Runner
from cdp_core.store import Checkpoint, SystemStore
from cdp_core.store.engine import normalize_url

GRAPH = "crm_to_file"


@pytest.fixture
def store(store_url: str) -> Iterator[SystemStore]:
    system = SystemStore(store_url).create()
    yield system
    system.engine.dispose()


def _reject(reason: str = "invalid email", **raw: object) -> Rejected:
    return Rejected(reason=reason, raw=raw or {"id": "7", "email": "not-an-email"}, key=str(raw.get("id", "7")))


# -- schema ------------------------------------------------------------------------------


def test_create_makes_the_system_tables_and_is_idempotent(store: SystemStore) -> None:
    store.commit(Checkpoint(GRAPH, "run-1", {"contacts": {"watermark": "2024-05-01"}}, [("contacts", _reject())]))
    store.create()  # a second create (every CLI command calls it) keeps the tables and their rows
    SystemStore(store.engine).create()
    tables = set(inspect(store.engine).get_table_names())
    assert {"sync_state", "sync_runs", "quarantine"} <= tables
    assert store.cursor(GRAPH, "contacts") == {"watermark": "2024-05-01"}
    assert store.quarantine_count() == 1


# -- cursors -----------------------------------------------------------------------------


def test_cursor_of_an_unknown_node_is_none(store: SystemStore) -> None:
    assert store.cursor(GRAPH, "nowhere") is None


@pytest.mark.parametrize(
    "cursor",
    [
        {"watermark": "2024-05-01T10:00:00Z", "max": "2024-05-02T00:00:00Z", "offset": 1234, "mtime_ns": 1716000000123456789},
        {"after": "Zoë Müller", "nested": {"ids": [1, 2, 3], "ok": True, "ratio": 0.25}},
        "opaque-token",
        42,
    ],
)
def test_cursor_round_trips_json(store: SystemStore, cursor: object) -> None:
    store.commit(Checkpoint(GRAPH, "run-1", {"contacts": cursor}))
    assert store.cursor(GRAPH, "contacts") == cursor


def test_cursor_is_overwritten_and_none_is_stored(store: SystemStore) -> None:
    store.commit(Checkpoint(GRAPH, "run-1", {"contacts": {"watermark": "1"}, "orders": {"page": 3}}))
    store.commit(Checkpoint(GRAPH, "run-2", {"contacts": {"watermark": "2"}}))
    assert store.cursor(GRAPH, "contacts") == {"watermark": "2"}
    assert store.cursor(GRAPH, "orders") == {"page": 3}
    store.commit(Checkpoint(GRAPH, "run-3", {"orders": None}))
    assert store.cursor(GRAPH, "orders") is None
    with store.engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(inspect_table(store, "sync_state"))).scalar_one()
    assert rows == 2


def test_cursors_are_per_graph(store: SystemStore) -> None:
    store.commit(Checkpoint("a", "run-1", {"contacts": 1}))
    store.commit(Checkpoint("b", "run-2", {"contacts": 2}))
    assert (store.cursor("a", "contacts"), store.cursor("b", "contacts")) == (1, 2)


# -- checkpoints: one transaction ------------------------------------------------------------


def test_commit_writes_cursors_and_quarantine_and_marks_committed(store: SystemStore) -> None:
    checkpoint = Checkpoint(
        GRAPH,
        "run-1",
        {"contacts": {"watermark": "2024-05-01"}},
        [("contacts", _reject("line 3: missing primary key id", id="", email="a@b.de")), ("clean", _reject())],
    )
    store.commit(checkpoint)
    assert checkpoint.committed
    assert store.cursor(GRAPH, "contacts") == {"watermark": "2024-05-01"}
    rows = store.quarantine(graph=GRAPH)
    assert [(r["node"], r["reason"], r["run_id"]) for r in rows] == [
        ("contacts", "line 3: missing primary key id", "run-1"),
        ("clean", "invalid email", "run-1"),
    ]
    assert rows[0]["payload"] == {"id": "", "email": "a@b.de"}
    assert rows[1]["record_key"] == "7"
    assert store.quarantine(node="clean")[0]["reason"] == "invalid email"
    assert store.quarantine(run_id="other") == []


def test_commit_is_atomic_when_the_quarantine_write_fails(store: SystemStore) -> None:
    # A payload the JSON column cannot serialize fails the quarantine insert, which runs
    # after the cursor upsert: the cursor must not be left behind.
    store.commit(Checkpoint(GRAPH, "run-1", {"contacts": {"watermark": "old"}}))
    bad = Rejected(reason="unserializable", raw={"tags": {"a", "b"}})
    with pytest.raises(Exception):  # noqa: B017,PT011 - TypeError or StatementError, depending on the driver
        store.commit(Checkpoint(GRAPH, "run-2", {"contacts": {"watermark": "new"}}, [("contacts", bad)]))
    assert store.cursor(GRAPH, "contacts") == {"watermark": "old"}
    assert store.quarantine_count() == 0


def test_failure_inside_a_batch_transaction_rolls_back_batch_cursor_and_quarantine(store: SystemStore) -> None:
    # What a destination sharing the store's database does: batch and checkpoint in one transaction.
    metadata = MetaData()
    batch_table = Table("test_batch", metadata, Column("id", Integer, primary_key=True), Column("email", String(200)))
    metadata.create_all(store.engine)
    checkpoint = Checkpoint(GRAPH, "run-1", {"contacts": {"watermark": "2024-05-01"}}, [("contacts", _reject())])
    with pytest.raises(RuntimeError, match="disk full"):
        with store.engine.begin() as conn:
            conn.execute(insert(batch_table), [{"id": 1, "email": "anna@example.com"}])
            checkpoint.write(conn)
            raise RuntimeError("disk full")
    assert store.cursor(GRAPH, "contacts") is None
    assert store.quarantine_count() == 0
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(batch_table)).scalar_one() == 0

    # and the same transaction without the failure lands whole
    checkpoint = Checkpoint(GRAPH, "run-2", {"contacts": {"watermark": "2024-05-01"}}, [("contacts", _reject())])
    with store.engine.begin() as conn:
        conn.execute(insert(batch_table), [{"id": 1, "email": "anna@example.com"}])
        checkpoint.write(conn)
    assert checkpoint.committed
    assert store.cursor(GRAPH, "contacts") == {"watermark": "2024-05-01"}
    assert store.quarantine_count() == 1
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(batch_table)).scalar_one() == 1


# -- quarantine dedupe ------------------------------------------------------------------------


def test_the_same_reject_is_quarantined_once(store: SystemStore) -> None:
    reject = _reject("score 11 is not in 0..10", token="abc", score="11")
    store.commit(Checkpoint(GRAPH, "run-1", {"nps": 1}, [("nps", reject)]))
    # re-delivered after a crash, and met again by a later full re-read (another run)
    store.commit(Checkpoint(GRAPH, "run-1", {"nps": 1}, [("nps", reject)]))
    store.commit(Checkpoint(GRAPH, "run-2", {"nps": 2}, [("nps", reject.model_copy())]))
    rows = store.quarantine()
    assert len(rows) == 1
    assert rows[0]["run_id"] == "run-1"  # the first sighting is kept
    assert store.quarantine_count(GRAPH) == 1


def test_duplicate_rejects_inside_one_checkpoint_are_stored_once(store: SystemStore) -> None:
    reject = _reject()
    store.commit(Checkpoint(GRAPH, "run-1", {}, [("contacts", reject), ("contacts", reject)]))
    assert store.quarantine_count() == 1


def test_quarantine_fingerprint_tells_apart_node_reason_payload_and_graph(store: SystemStore) -> None:
    store.commit(
        Checkpoint(
            GRAPH,
            "run-1",
            {},
            [
                ("contacts", _reject("invalid email", id="1", email="x")),
                ("clean", _reject("invalid email", id="1", email="x")),  # other node
                ("contacts", _reject("blocked value", id="1", email="x")),  # other reason
                ("contacts", _reject("invalid email", id="2", email="x")),  # other payload
            ],
        )
    )
    store.commit(Checkpoint("other_graph", "run-2", {}, [("contacts", _reject("invalid email", id="1", email="x"))]))
    assert store.quarantine_count(GRAPH) == 4
    assert store.quarantine_count("other_graph") == 1
    assert store.quarantine_count() == 5
    assert len(store.quarantine(limit=3)) == 3


# -- runs ---------------------------------------------------------------------------------------


def _run(run_id: str, graph: str, started: datetime) -> RunInfo:
    return RunInfo(id=run_id, graph=graph, started_at=started)


def test_runs_newest_first_filtered_and_limited(store: SystemStore) -> None:
    base = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    for i in range(5):
        store.start_run(_run(f"r{i}", GRAPH, base + timedelta(minutes=i)))
    store.start_run(_run("other", "nightly", base + timedelta(hours=1)))
    assert [r.id for r in store.runs(GRAPH)] == ["r4", "r3", "r2", "r1", "r0"]
    assert [r.id for r in store.runs(GRAPH, limit=2)] == ["r4", "r3"]
    assert [r.id for r in store.runs(limit=2)] == ["other", "r4"]
    assert [r.id for r in store.runs("nightly")] == ["other"]
    assert store.runs("never") == []
    assert all(r.status is RunStatus.running and r.finished_at is None for r in store.runs(GRAPH))


def test_run_and_node_stats_round_trip(store: SystemStore) -> None:
    started = datetime(2024, 5, 1, 8, 0, 0, 123456, tzinfo=UTC)
    run = RunInfo(
        id="run-1",
        graph=GRAPH,
        started_at=started,
        nodes={"contacts": NodeStats(kind="source"), "out": NodeStats(kind="destination")},
    )
    store.start_run(run)
    assert store.runs(GRAPH)[0] == run

    run.status = RunStatus.failed
    run.finished_at = started + timedelta(seconds=12.5)
    run.error = "HTTPStatusError: 503 from api.example.com für Kontakt Jürgen"
    run.nodes["contacts"] = NodeStats(kind="source", records_in=0, records_out=250, rejected=3, seconds=1.25)
    run.nodes["out"] = NodeStats(kind="destination", records_in=247, records_out=200, seconds=0.5, error="boom")
    store.save_run(run)

    loaded = store.runs(GRAPH)[0]
    assert loaded == run
    assert loaded.started_at.tzinfo is not None and loaded.started_at == started
    assert loaded.finished_at == started + timedelta(seconds=12.5)
    assert loaded.nodes["contacts"].per_second == pytest.approx(200.0)
    assert isinstance(loaded.nodes["out"], NodeStats)
    assert json.loads(json.dumps(loaded.to_dict()))["status"] == "failed"


def test_run_times_survive_a_session_time_zone_other_than_utc(store_url: str, db_backend: str) -> None:
    """A PostgreSQL server or role may run with any TimeZone; run times must still read back in UTC."""
    if db_backend == "sqlite":
        engine = create_engine(normalize_url(store_url))
    else:
        engine = create_engine(normalize_url(store_url), connect_args={"options": "-c TimeZone=America/New_York"})
    try:
        system = SystemStore(engine).create()
        started = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
        system.start_run(_run("r1", GRAPH, started))
        assert system.runs(GRAPH)[0].started_at == started
    finally:
        engine.dispose()


# -- reset --------------------------------------------------------------------------------------


def test_reset_one_node_or_a_whole_graph(store: SystemStore) -> None:
    store.commit(Checkpoint(GRAPH, "run-1", {"contacts": 1, "orders": 2}, [("contacts", _reject())]))
    store.commit(Checkpoint("other", "run-2", {"contacts": 3}))
    assert store.reset(GRAPH, "contacts") == 1
    assert store.cursor(GRAPH, "contacts") is None
    assert store.cursor(GRAPH, "orders") == 2
    assert store.reset(GRAPH) == 1
    assert store.cursor(GRAPH, "orders") is None
    assert store.reset(GRAPH) == 0
    assert store.cursor("other", "contacts") == 3  # other graphs keep their state
    assert store.quarantine_count() == 1  # reset forgets cursors, not quarantine


def inspect_table(store: SystemStore, name: str) -> Table:
    return Table(name, MetaData(), autoload_with=store.engine)


# -- the runner, end to end ---------------------------------------------------------------------

CONTACTS = """\
id,email,firstname,lastname,lastmodifieddate
101,anna.schmidt@example.com,Anna,Schmidt,2024-05-01T09:00:00Z
102,  Jürgen.Müller@Example.de ,Jürgen,Müller,2024-05-02T09:00:00Z
,no-id@example.com,Ohne,Id,2024-05-03T09:00:00Z
103,bad@example.com,Too,Many,2024-05-04T09:00:00Z,extra
104,no-date@example.com,Ohne,Datum,
105,zoe@example.com,Zoë,Weiß,2024-05-05T09:00:00Z
"""


def _write_config(tmp_path: Path, store_url: str) -> Path:
    (tmp_path / "contacts.csv").write_text(CONTACTS, encoding="utf-8")
    path = tmp_path / "connectors.toml"
    path.write_text(
        f"""
[store]
url = "{store_url}"

[connectors.crm]
type = "csv"

[connectors.crm.streams.contacts]
path = "contacts.csv"
cursor_field = "lastmodifieddate"
timestamp_field = "lastmodifieddate"
identifiers = {{ email = "email", hubspot_contact_id = "id" }}
batch_size = 2

[connectors.out]
type = "jsonl_file"
path = "out/contacts.jsonl"

[syncs.{GRAPH}.nodes.contacts]
source = "crm.contacts"

[syncs.{GRAPH}.nodes.file]
destination = "out"
inputs = ["contacts"]
""",
        encoding="utf-8",
    )
    return path


def test_runner_csv_to_jsonl_is_incremental_and_quarantines(tmp_path: Path, store_url: str) -> None:
    plugins = load_plugins(entry_points=False)
    config = load_config(_write_config(tmp_path, store_url), plugins)
    system = SystemStore(config.store_url).create()
    out = tmp_path / "out" / "contacts.jsonl"
    try:
        run = Runner(config, plugins).run(GRAPH)
        assert run.status is RunStatus.succeeded, run.error
        assert run.nodes["contacts"].records_out == 3
        assert run.nodes["contacts"].rejected == 3  # no id, a field too many, no cursor value
        assert run.nodes["file"].records_in == 3 and run.nodes["file"].records_out == 3
        written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert [r["key"] for r in written] == ["101", "102", "105"]
        assert written[1]["data"]["firstname"] == "Jürgen"
        assert written[1]["identifiers"]["hubspot_contact_id"] == "102"
        assert system.cursor(GRAPH, "contacts") == {"watermark": "2024-05-05T09:00:00Z", "type": "timestamp"}
        reasons = sorted(r["reason"] for r in system.quarantine(graph=GRAPH))
        assert len(reasons) == 3
        assert any("missing primary key" in r for r in reasons)
        assert any("fields, header has" in r for r in reasons)
        assert any("no value in cursor field" in r for r in reasons)
        assert system.runs(GRAPH)[0] == run

        # Second run: nothing new is read; rows rejected again are not quarantined twice.
        again = Runner(config, plugins).run(GRAPH)
        assert again.status is RunStatus.succeeded, again.error
        assert again.nodes["contacts"].records_out == 0
        assert again.nodes["file"].records_out == 0
        assert len(out.read_text(encoding="utf-8").splitlines()) == 3
        assert system.quarantine_count(GRAPH) == 3
        assert [r.id for r in system.runs(GRAPH)] == [again.id, run.id]

        # A new, newer row is the only thing the third run reads.
        with (tmp_path / "contacts.csv").open("a", encoding="utf-8") as handle:
            handle.write("106,ole@example.com,Ole,Hansen,2024-05-06T09:00:00Z\n")
        third = Runner(config, plugins, system).run(GRAPH)
        assert third.status is RunStatus.succeeded, third.error
        assert third.nodes["contacts"].records_out == 1
        keys = [json.loads(line)["key"] for line in out.read_text(encoding="utf-8").splitlines()]
        assert keys == ["101", "102", "105", "106"]
        assert system.cursor(GRAPH, "contacts") == {"watermark": "2024-05-06T09:00:00Z", "type": "timestamp"}
    finally:
        system.engine.dispose()


# -- write transactions hold SQLite's write lock from their start -------------------------


def _write_without_waiting(url: str) -> bool:
    """A write from a connection of its own that does not wait for a lock: True if it committed."""
    from sqlalchemy.exc import OperationalError

    engine = create_engine(url, connect_args={"timeout": 0})
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM sync_state WHERE graph = 'elsewhere'")
        return True
    except OperationalError as exc:
        assert "database is locked" in str(exc)
        return False
    finally:
        engine.dispose()


def test_a_commit_holds_the_write_lock_before_its_first_statement(tmp_path: Path) -> None:
    """SQLite: a checkpoint's transaction starts with BEGIN IMMEDIATE, so no other connection
    (a lease heartbeat) can commit between its reads and its first write, which SQLite would
    then refuse without waiting (SQLITE_BUSY_SNAPSHOT, "database is locked")."""
    from sqlalchemy import event

    url = f"sqlite:///{tmp_path}/store.sqlite"
    store = SystemStore(url).create()
    seen: list[bool] = []

    def before(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "sync_state" in statement:
            seen.append(_write_without_waiting(url))

    event.listen(store.engine, "before_cursor_execute", before)
    try:
        store.commit(Checkpoint(GRAPH, "run-1", {"contacts": {"watermark": 1}}))
    finally:
        event.remove(store.engine, "before_cursor_execute", before)
        store.engine.dispose()
    assert seen == [False], "another writer was shut out from the start of the transaction"


def test_a_write_transaction_reads_then_writes_past_a_concurrent_commit(store_url: str) -> None:
    """Read, let another connection try to commit, then write: the write never fails. SQLite
    refuses the other writer meanwhile (the lock is held); PostgreSQL lets it commit."""
    from sqlalchemy import text

    from cdp_core.store.engine import make_engine
    from cdp_core.store.transaction import write_transaction

    SystemStore(store_url).create().engine.dispose()
    engine = make_engine(store_url)
    other = (
        create_engine(store_url, connect_args={"timeout": 0}) if store_url.startswith("sqlite") else make_engine(store_url)
    )
    try:
        with write_transaction(engine) as conn:
            assert conn.execute(text("SELECT count(*) FROM sync_state")).scalar_one() == 0
            try:
                with other.begin() as o:
                    o.execute(
                        text("INSERT INTO sync_state (graph, node, cursor, run_id, updated_at) VALUES ('o', 'n', '1', 'r', :t)"),
                        {"t": datetime.now(UTC)},
                    )
                committed = True
            except Exception as exc:  # noqa: BLE001
                assert "database is locked" in str(exc)
                committed = False
            conn.execute(
                text("INSERT INTO sync_state (graph, node, cursor, run_id, updated_at) VALUES ('g', 'n', '2', 'r', :t)"),
                {"t": datetime.now(UTC)},
            )
        assert committed is not store_url.startswith("sqlite")
        with engine.connect() as conn:
            graphs = set(conn.execute(text("SELECT graph FROM sync_state")).scalars())
        assert graphs == ({"g"} if store_url.startswith("sqlite") else {"g", "o"})
    finally:
        engine.dispose()
        other.dispose()
