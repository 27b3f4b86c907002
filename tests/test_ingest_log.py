"""The ingest log (cdp_core/ingest/): append with de-duplication, group commit, the reader's cursor.

Every store test runs on SQLite and on PostgreSQL (``store_url``); the late-commit test is
PostgreSQL's own (SQLite has one writer at a time).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select, text

from cdp_core.ingest import GroupCommitter, IngestEntry, IngestLogStream, append
from cdp_core.ingest.log import CHUNK, LOG
from cdp_core.records import Record, RecordKind
from cdp_core.store.engine import make_engine
from cdp_core.store.schema import create_schema
from cdp_core.timeutil import as_utc

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = make_engine(store_url)
    create_schema(engine)
    yield engine
    engine.dispose()


def entry(message_id: str, source: str = "web", kind: str = "track", **body: object) -> IngestEntry:
    return IngestEntry(source, message_id, kind, {"messageId": message_id, **body}, NOW)


def as_record(e: IngestEntry) -> list[Record]:
    if e.body.get("bad"):
        raise ValueError(f"bad message {e.message_id}")
    return [Record(stream="messages", kind=RecordKind.event, key=e.message_id, data={"event": e.kind})]


def stream(store_url: str, source: str = "web", page_size: int = 2) -> IngestLogStream:
    return IngestLogStream("messages", source=source, store_url=store_url, records=as_record, page_size=page_size)


def read_all(s: IngestLogStream, cursor: object = None) -> tuple[list[str], object]:
    keys: list[str] = []
    for page in s.read(cursor):
        keys.extend(r.key for r in page.records)
        keys.extend(f"rejected:{r.key}" for r in page.rejects)
        cursor = page.cursor
    return keys, cursor


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(LOG)).scalar_one())


def test_append_stores_and_drops_a_repeated_message_id(engine: Engine) -> None:
    first = append(engine, [entry("a"), entry("b"), entry("a")])
    assert (first.accepted, first.duplicates, first.stored) == (2, 1, (True, True, False))
    again = append(engine, [entry("b"), entry("c"), entry("b", source="app")])
    assert (again.accepted, again.duplicates, again.stored) == (2, 1, (False, True, True))
    assert count(engine) == 4
    with engine.connect() as conn:
        row = conn.execute(select(LOG).where(LOG.c.message_id == "c")).one()
    assert row.kind == "track" and row.body == {"messageId": "c"}


def test_bodies_read_back_as_sent(engine: Engine) -> None:
    # append writes the JSON text itself (orjson, json.dumps for what orjson refuses): what a reader gets back is
    # the parsed body, also text beyond ASCII, floats and an integer over 64 bits (json.loads takes those).
    bodies = {
        "plain": {
            "traits": {"name": "Jürgen Groß", "city": "Köln 東京"},
            "price": 19.99,
            "n": 3,
            "ok": True,
            "none": None,
        },
        "big": {"properties": {"order_id": 123456789012345678901234567890, "tiny": 1e-300}},
        "nested": {"context": {"a": [1, {"b": ["c", 2.5]}], "empty": {}}, "quote": 'say "hi"\n'},
    }
    append(engine, [IngestEntry("web", key, "track", body, NOW) for key, body in bodies.items()])
    with engine.connect() as conn:
        rows = conn.execute(select(LOG.c.message_id, LOG.c.body, LOG.c.received_at)).all()
    assert {r.message_id: r.body for r in rows} == bodies
    assert {as_utc(r.received_at) for r in rows} == {NOW}


def test_a_large_call_is_written_in_several_statements_and_still_drops_repeats(engine: Engine) -> None:
    # More entries than one INSERT takes (log.CHUNK), a repeat of an entry of the first statement in the last one.
    entries = [entry(f"m{i}") for i in range(CHUNK * 2 + 10)] + [entry("m3")]
    result = append(engine, entries)
    assert (result.accepted, result.duplicates, result.stored[-1]) == (CHUNK * 2 + 10, 1, False)
    assert count(engine) == CHUNK * 2 + 10


def test_the_reader_pages_by_cursor_and_never_repeats(engine: Engine, store_url: str) -> None:
    append(engine, [entry(f"m{i}") for i in range(5)] + [entry("other", source="app")])
    keys, cursor = read_all(stream(store_url))
    assert keys == ["m0", "m1", "m2", "m3", "m4"]
    assert read_all(stream(store_url), cursor)[0] == []
    append(engine, [entry("m5"), entry("m2")])
    assert read_all(stream(store_url), cursor)[0] == ["m5"]


def test_an_entry_the_records_function_refuses_is_quarantined(engine: Engine, store_url: str) -> None:
    append(engine, [entry("ok"), entry("no", bad=True)])
    pages = list(stream(store_url, page_size=10).read(None))
    assert [r.key for r in pages[0].records] == ["ok"]
    [rejected] = pages[0].rejects
    assert rejected.reason == "bad message no" and rejected.raw["body"] == {"messageId": "no", "bad": True}


def test_the_group_committer_answers_each_request_with_its_own_result(engine: Engine) -> None:
    committer = GroupCommitter(engine)
    try:
        futures = [committer.submit([entry(f"g{i}"), entry("shared")]) for i in range(20)]
        results = [f.result(timeout=60) for f in futures]
    finally:
        committer.close()
    assert sum(r.accepted for r in results) == 21
    assert [r.stored[1] for r in results].count(True) == 1  # "shared" is stored once, by one request
    assert all(r.stored[0] for r in results)
    assert count(engine) == 21


def test_concurrent_requests_share_transactions(engine: Engine) -> None:
    """Requests that arrive while a group commits go into the next group together (one committer thread)."""
    committer = GroupCommitter(engine, threads=1)
    gate = threading.Event()
    original = committer._commit

    def slow_first(group: list) -> None:  # type: ignore[type-arg]
        gate.wait(60)
        original(group)

    committer._commit = slow_first  # type: ignore[method-assign]
    try:
        first = committer.submit([entry("first")])
        rest = [committer.submit([entry(f"r{i}")]) for i in range(10)]
        gate.set()
        for f in [first, *rest]:
            assert f.result(timeout=60).accepted == 1
    finally:
        committer.close()
    assert committer.groups <= 3  # 11 requests, not 11 transactions


@pytest.fixture
def pg_engine(postgres_database: str) -> Iterator[Engine]:
    engine = make_engine(postgres_database)
    create_schema(engine)
    yield engine
    engine.dispose()


@pytest.mark.postgres
def test_a_row_that_commits_late_is_not_skipped_on_postgresql(pg_engine: Engine, postgres_database: str) -> None:
    """Transaction A takes the lower id and commits last: the reader waits for it instead of passing it."""
    reader = stream(postgres_database, page_size=100)
    with pg_engine.connect() as a:
        a.execute(
            text(
                "INSERT INTO ingest_log (source, message_id, kind, body, received_at, txid) "
                "VALUES ('web', 'late', 'track', '{}', now(), pg_current_xact_id()::text::bigint)"
            )
        )  # open, not committed: holds the lower id
        append(pg_engine, [entry("early")])  # commits first, with a higher id and a higher txid
        keys, cursor = read_all(reader)
        assert keys == []  # "early" waits: an older transaction is still open
        a.commit()
    keys, cursor = read_all(reader, cursor)
    assert keys == ["late", "early"]
    assert read_all(reader, cursor)[0] == []
