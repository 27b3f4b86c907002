"""The store's bulk statements (cdp_profiles/store/bulk.py) on both databases.

On PostgreSQL inserts, upserts and key tables of COPY_MIN_ROWS rows or more go through
COPY (into the table, or into a staging table and one INSERT ... SELECT); fewer rows, and
upserts that repeat a key, go row by row. Both paths must store exactly the same thing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, select

from cdp_profiles.store import tables
from cdp_profiles.store.bulk import COPY_MIN_ROWS, Bulk

T0 = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
IDENTITY_COLUMNS = ("type", "value", "profile_id", "source", "first_seen")


@pytest.fixture
def engine(store_engine: Engine) -> Engine:
    return store_engine


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every COPY the bulk statements run: (table, rows)."""
    seen: list[tuple[str, int]] = []
    original = Bulk._copy

    def spy(self: Bulk, table: str, columns: Any, rows: Any) -> None:
        rows = list(rows)
        seen.append((table, len(rows)))
        original(self, table, columns, rows)

    monkeypatch.setattr(Bulk, "_copy", spy)
    return seen


def identities(engine: Engine) -> dict[tuple[str, str], tuple[str, str | None, str | None]]:
    with engine.connect() as conn:
        return {
            (r.type, r.value): (r.profile_id, r.source, r.first_seen)
            for r in conn.execute(
                select(
                    tables.identities.c.type, tables.identities.c.value, tables.identities.c.profile_id, tables.identities.c.source, tables.identities.c.first_seen
                )
            )
        }


@pytest.mark.parametrize("count", [3, COPY_MIN_ROWS, 500])
def test_upsert_inserts_then_updates_on_both_paths(
    engine: Engine, db_backend: str, copies: list[tuple[str, int]], count: int
) -> None:
    first = [("email", f"p{i}@x.de", f"profile-{i}", "crm", f"k{i}") for i in range(count)]
    with engine.begin() as conn:
        Bulk(conn).upsert("identities", IDENTITY_COLUMNS, first, keys=("type", "value"))
    # half again, with a new owner, and as many new ones
    second = [("email", f"p{i}@x.de", f"winner-{i}", None, "z") for i in range(count // 2, count + count // 2)]
    with engine.begin() as conn:
        Bulk(conn).upsert("identities", IDENTITY_COLUMNS, second, keys=("type", "value"), update=("profile_id",))
    got = identities(engine)
    assert len(got) == count + count // 2
    for i in range(count + count // 2):
        if i < count // 2:
            assert got[("email", f"p{i}@x.de")] == (f"profile-{i}", "crm", f"k{i}")
        elif i < count:
            assert got[("email", f"p{i}@x.de")] == (f"winner-{i}", "crm", f"k{i}")  # only profile_id updated
        else:
            assert got[("email", f"p{i}@x.de")] == (f"winner-{i}", None, "z")
    copied = db_backend == "postgresql" and count >= COPY_MIN_ROWS
    assert bool(copies) == copied, copies
    if copied:
        assert all(table.startswith("cdp_stage_identities_") for table, _ in copies)


def test_a_repeated_key_goes_row_by_row_and_the_last_wins(engine: Engine, copies: list[tuple[str, int]]) -> None:
    rows = [("email", f"p{i % 50}@x.de", f"profile-{i}", "crm", f"k{i}") for i in range(200)]
    with engine.begin() as conn:
        Bulk(conn).upsert("identities", IDENTITY_COLUMNS, rows, keys=("type", "value"))
    got = identities(engine)
    assert len(got) == 50
    assert got[("email", "p7@x.de")] == ("profile-157", "crm", "k157")
    assert not copies


def test_upsert_assign_and_do_nothing_through_the_stage(engine: Engine) -> None:
    sets = [(f"s{i:03d}", f'[["email", "p{i}@x.de"]]', f"2024-05-{10 + i % 10:02d}|crm|{i}", None) for i in range(100)]
    columns = ("id", "identifiers", "sort_key", "profile_id")
    with engine.begin() as conn:
        db = Bulk(conn)
        db.upsert(
            "id_sets",
            columns,
            [(a, db.json([["email", f"p{i}@x.de"]]), k, p) for i, (a, _, k, p) in enumerate(sets)],
            keys=("id",),
        )
    later = [(a, None, "2024-05-15|shop|x", "p1") for a, _, _, _ in sets]
    with engine.begin() as conn:
        db = Bulk(conn)
        db.upsert(
            "id_sets",
            columns,
            [(a, db.json([]), k, p) for a, _, k, p in later],
            keys=("id",),
            update=("profile_id",),
            assign={"sort_key": db.least('"id_sets"."sort_key"', 'excluded."sort_key"')},
        )
        members = [("email", f"p{i}@x.de", f"s{i:03d}") for i in range(100)]
        db.upsert("id_set_members", ("type", "value", "set_id"), members, keys=("type", "value", "set_id"), update=())
        db.upsert("id_set_members", ("type", "value", "set_id"), members, keys=("type", "value", "set_id"), update=())
    with engine.connect() as conn:
        stored = {r.id: (r.identifiers, r.sort_key, r.profile_id) for r in conn.execute(select(tables.id_sets))}
        assert conn.execute(select(tables.id_set_members)).all().__len__() == 100
    for i, (sid, _, key, _) in enumerate(sets):
        assert stored[sid] == ([["email", f"p{i}@x.de"]], min(key, "2024-05-15|shop|x"), "p1")


def test_insert_keeps_json_times_decimals_nulls_and_text(engine: Engine) -> None:
    """Values as the write path hands them in (Bulk.json, Bulk.time, Bulk.number) read back unchanged."""
    count = COPY_MIN_ROWS * 2
    with engine.begin() as conn:
        db = Bulk(conn)
        db.insert(
            "orders",
            ("stream", "key", "order_id", "amount", "currency", "status", "items", "occurred_at"),
            [
                (
                    "shop.orders",
                    f"o{i}",
                    f"#{i}",
                    db.number(Decimal("19.99") * i) if i % 3 else None,
                    "EUR",
                    "paid\ttab \\ back\nslash" if i == 1 else "Grüße",
                    db.json([{"sku": f"A{i}", "qty": i, "name": 'Äpfel "bio"'}]) if i % 2 else None,
                    db.time(T0 + timedelta(minutes=i)) if i % 5 else None,
                )
                for i in range(count)
            ],
        )
    with engine.connect() as conn:
        rows = {r.key: r for r in conn.execute(select(tables.orders))}
    assert len(rows) == count
    one = rows["o1"]
    assert one.status == "paid\ttab \\ back\nslash"
    assert one.items == [{"sku": "A1", "qty": 1, "name": 'Äpfel "bio"'}]
    assert one.amount == Decimal("19.99")
    assert one.occurred_at.replace(tzinfo=UTC) == T0 + timedelta(minutes=1)
    zero = rows["o0"]
    assert (zero.amount, zero.items, zero.occurred_at, zero.status) == (None, None, None, "Grüße")


def test_key_tables_of_any_size_join(engine: Engine) -> None:
    rows = [("email", f"p{i}@x.de", f"profile-{i}", "crm", f"k{i}") for i in range(300)]
    with engine.begin() as conn:
        db = Bulk(conn)
        db.upsert("identities", IDENTITY_COLUMNS, rows, keys=("type", "value"))
        for wanted in ([("email", "p3@x.de")], [("email", f"p{i}@x.de") for i in range(0, 600, 2)]):
            ids = db.keys(("type", "value"), wanted)
            found = db.query(
                f"SELECT i.profile_id FROM {ids} f {db.join} identities i ON i.type = f.type AND i.value = f.value"
            )
            expected = {f"profile-{v.split('@')[0][1:]}" for _, v in wanted if int(v.split("@")[0][1:]) < 300}
            assert {r[0] for r in found} == expected


def test_a_key_table_is_not_clobbered_by_a_later_one_of_the_same_shape(engine: Engine) -> None:
    """A caller's keys stay as it wrote them while a function it calls fills key tables of its own."""
    for _ in range(2):  # and again in the next transaction, which reuses the connection's tables
        with engine.begin() as conn:
            db = Bulk(conn)
            mine = db.keys(("id",), [("a",), ("b",)])
            theirs = db.keys(("id",), [("c",)])
            pair = db.keys(("stream", "key"), [("s", "1")])
            assert len({mine, theirs, pair}) == 3
            assert sorted(r[0] for r in db.query(f"SELECT id FROM {mine}")) == ["a", "b"]
            assert [r[0] for r in db.query(f"SELECT id FROM {theirs}")] == ["c"]


def test_index_joins_hold_for_the_transaction_only(engine: Engine, db_backend: str) -> None:
    def show(conn: Any) -> str | None:
        return None if db_backend == "sqlite" else conn.exec_driver_sql("SHOW enable_hashjoin").scalar()

    with engine.begin() as conn:
        Bulk(conn).index_joins()
        assert show(conn) == (None if db_backend == "sqlite" else "off")
    with engine.begin() as conn:  # the pool hands the same connection back: nothing may leak
        assert show(conn) == (None if db_backend == "sqlite" else "on")
