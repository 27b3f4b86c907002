"""Migrations that move data (0005, 0007) or guard it (0008): every row carried over, up and down, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from cdp_core.store.schema import migration_transaction
from migration_helpers import (
    NOW,
    alembic_config,
    differences,
    forgetting_schema_cache,
    head_revision,
    model_table,
    revision,
    table_names,
    unmigrated_engine,
    upgrade_to,
)
from sqlalchemy import Engine, insert, inspect, select, text

from cdp_profiles.store import profile_models, segment_models  # noqa: F401 - their tables, on the metadata
from cdp_profiles.store.schema import ensure_schema
from cdp_profiles.store.trait_docs import trait_entries


@pytest.fixture(autouse=True)
def _forget_cache() -> Iterator[None]:
    yield from forgetting_schema_cache()


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    yield from unmigrated_engine(store_url)


# -- 0005: the traits table becomes profiles.traits and profiles.trait_sources -------------

_TRAIT_COLUMNS = ("profile_id", "name", "value", "source", "set_at")
_TRAIT_ROWS: list[dict[str, Any]] = [
    dict(zip(_TRAIT_COLUMNS, row, strict=True))
    for row in (
        ("p1", "city", "Berlin", "crm", NOW),
        ("p1", "age", 42, "shop", datetime(2024, 1, 2, 3, 4, 5, 250, UTC)),
        ("p1", "ltv", 0.1, None, None),
        ("p1", "pi", 3.141592653589793, None, None),  # 16 digits: SQLite keeps it as a REAL (NUMERIC affinity)
        ("p1", "vip", True, "crm", NOW),
        ("p1", "tags", ["a", "ü"], "crm", NOW),
        ("p1", "address", {"zip": "10115", "n": 1.5}, "crm", NOW),
        ("p1", 'say "hi".now', "it's", "crm", NOW),
        ("p1", "nothing", None, "crm", NOW),  # a JSON null (the ORM's None)
        ("p2", "nps_score", 6, "survey", datetime(2024, 2, 1, tzinfo=UTC)),
        ("p2", "nps_category", "detractor", "survey", None),
    )
]
_SQL_NULL_VALUE = {"profile_id": "p2", "name": "blank", "source": None, "set_at": None}  # value: SQL NULL


def _baseline_traits() -> sa.TableClause:
    return sa.table(
        "traits",
        *(sa.column(c) for c in ("profile_id", "name", "source")),
        sa.column("value", sa.JSON),
        sa.column("set_at", sa.DateTime(timezone=True)),
    )


def _baseline_profiles() -> sa.TableClause:
    at = sa.DateTime(timezone=True)
    return sa.table(
        "profiles",
        *(sa.column(c) for c in ("id", "founder", "sort_key", "merged_into")),
        sa.column("created_at", at),
        sa.column("updated_at", at),
    )


def _utc(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)  # SQLite gives naive UTC back


def _trait_rows(engine: Engine) -> dict[tuple[str, str], tuple[Any, Any, datetime | None]]:
    traits = _baseline_traits()
    with engine.connect() as conn:
        rows = conn.execute(
            select(traits.c.profile_id, traits.c.name, traits.c.value, traits.c.source, traits.c.set_at)
        )
        return {(r.profile_id, r.name): (r.value, r.source, _utc(r.set_at)) for r in rows}


def test_0005_folds_the_traits_table_into_the_profiles(engine: Engine, db_backend: str) -> None:
    upgrade_to(engine, "0004")
    profiles = _baseline_profiles()
    with engine.begin() as conn:
        conn.execute(
            insert(profiles),
            [
                {
                    "id": p,
                    "founder": f"s{p}",
                    "sort_key": "k",
                    "merged_into": merged,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for p, merged in (("p1", None), ("p2", None), ("p3", None), ("p4", "p1"))
            ],
        )
        conn.execute(insert(_baseline_traits()), _TRAIT_ROWS)
        conn.execute(insert(_baseline_traits()).values(value=sa.null()), [_SQL_NULL_VALUE])
        conn.execute(  # a trait whose profile is gone: nothing can read it, it is not kept
            insert(_baseline_traits()),
            [{"profile_id": "gone", "name": "city", "value": "Ulm", "source": None, "set_at": None}],
        )
    before = _trait_rows(engine)

    with migration_transaction(engine) as conn:
        if db_backend == "postgresql":  # a sort key's TIME is UTC whatever the session's time zone
            conn.exec_driver_sql("SET LOCAL TIME ZONE 'America/New_York'")
        command.upgrade(alembic_config(conn), "head")

    assert "traits" not in table_names(engine)
    assert revision(engine) == (head_revision(),)
    assert differences(engine) == []
    table = model_table("profiles")
    with engine.connect() as conn:
        query = select(table.c.id, table.c.traits, table.c.trait_sources, table.c.settled)
        rows = {r.id: r for r in conn.execute(query)}
    assert {p: r.settled for p, r in rows.items()} == {"p1": False, "p2": False, "p3": False, "p4": False}
    assert rows["p1"].traits == {
        "city": "Berlin",
        "age": 42,
        "ltv": 0.1,
        "pi": 3.141592653589793,
        "vip": True,
        "tags": ["a", "ü"],
        "address": {"zip": "10115", "n": 1.5},
        'say "hi".now': "it's",
        "nothing": None,
    }
    # the deciding record's sort key as far as the rows know it: UTC time ("~": none), stream, no record key
    crm = "2024-05-01T12:00:00.000000|crm|"
    assert rows["p1"].trait_sources == {
        "r": [],
        "n": {
            "city": crm,
            "age": "2024-01-02T03:04:05.000250|shop|",
            "ltv": "~||",
            "pi": "~||",
            "vip": crm,
            "tags": crm,
            "address": crm,
            'say "hi".now': crm,
            "nothing": crm,
        },
    }
    assert rows["p2"].traits == {"nps_score": 6, "nps_category": "detractor", "blank": None}
    assert rows["p2"].trait_sources == {
        "r": [],
        "n": {"nps_score": "2024-02-01T00:00:00.000000|survey|", "nps_category": "~|survey|", "blank": "~||"},
    }
    for p in ("p3", "p4"):  # no trait rows: no traits
        assert (rows[p].traits, rows[p].trait_sources) == ({}, {})
    for r in (rows["p1"], rows["p2"]):  # exactly the writer's TIME: naive UTC isoformat("T", "microseconds")
        for key in r.trait_sources["n"].values():
            when = key.split("|")[0]
            assert when == "~" or datetime.fromisoformat(when).isoformat("T", "microseconds") == when
    # read back as the view reads them: each row's value, source and time
    entries = {
        (r.id, e["name"]): (e["value"], e["source"], e["set_at"])
        for r in rows.values()
        for e in trait_entries(r.traits, r.trait_sources)
    }
    assert entries == {key: row for key, row in before.items() if key[0] != "gone"}

    # Traits the new writer extended: "n" gives an index into "r", and "x" is not a row of the old table.
    with engine.begin() as conn:
        extended = {"visits": 3, "plan": "gold"}
        sources = {
            "r": ["~|web|1", "2024-05-01T12:00:00.000000|web|2"],
            "n": {"visits": 0, "plan": 1},
            "x": {"visits": "3"},
        }
        update = table.update().where(table.c.id == "p3")
        conn.execute(update.values(traits=extended, trait_sources=sources, settled=True))

    with migration_transaction(engine) as conn:
        command.downgrade(alembic_config(conn), "0004")

    assert revision(engine) == ("0004",)
    columns = {c["name"] for c in inspect(engine).get_columns("profiles")}
    assert "traits" not in columns and "settled" not in columns
    after = _trait_rows(engine)
    expected = {key: row for key, row in before.items() if key[0] != "gone"}
    expected[("p3", "visits")] = (3, "web", None)
    expected[("p3", "plan")] = ("gold", "web", NOW)
    assert after == expected
    with engine.connect() as conn:  # "no value" is SQL NULL again, as the old writer stored it
        nulls = conn.execute(text("SELECT name FROM traits WHERE value IS NULL ORDER BY name")).scalars().all()
    assert nulls == ["blank", "nothing"]
    assert inspect(engine).get_pk_constraint("traits")["constrained_columns"] == ["profile_id", "name"]  # as 0001

    ensure_schema(engine)  # and up again
    with engine.connect() as conn:
        again = {r.id: r for r in conn.execute(select(table.c.id, table.c.traits, table.c.trait_sources))}
    for p in ("p1", "p2"):
        assert (again[p].traits, again[p].trait_sources) == (rows[p].traits, rows[p].trait_sources)
    assert again["p3"].traits == {"visits": 3, "plan": "gold"}
    assert again["p3"].trait_sources == {  # the record keys and "x" were not rows of the old table
        "r": [],
        "n": {"visits": "~|web|", "plan": "2024-05-01T12:00:00.000000|web|"},
    }


# Before the store wrote JSON with orjson, json.dumps wrote a NaN or infinite trait as the bare
# token NaN, Infinity or -Infinity, which is not JSON: SQLite's json() refused it and 0005 rolled back.
_NON_FINITE = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}
_NESTED_NON_FINITE = {"scores": [1, float("nan"), 2.5], "stats": {"max": float("inf"), "n": 2}}
_FINITE = {
    "city": "Berlin",
    "age": 42,
    "ltv": 0.1,
    "tags": ["a", "ü"],
    "nothing": None,
    "word": "NaN",  # a string, not a number: kept
    "motto": "to Infinity and beyond",
}


def test_0005_carries_non_finite_trait_values_over_as_null(engine: Engine, db_backend: str) -> None:
    upgrade_to(engine, "0004")
    with engine.begin() as conn:
        conn.execute(
            insert(_baseline_profiles()),
            [
                {
                    "id": p,
                    "founder": f"s{p}",
                    "sort_key": "k",
                    "merged_into": None,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for p in ("p1", "p2")
            ],
        )
    old = _baseline_traits()

    def row(profile: str, name: str, value: Any) -> dict[str, Any]:
        return {"profile_id": profile, "name": name, "value": value, "source": f"src-{name}", "set_at": NOW}

    with engine.begin() as conn:
        conn.execute(insert(old), [row("p1", name, value) for name, value in _FINITE.items()])
    if db_backend == "sqlite":
        with engine.begin() as conn:  # the JSON type writes them with json.dumps, as the old writer did
            conn.execute(insert(old), [row("p1", n, v) for n, v in {**_NON_FINITE, **_NESTED_NON_FINITE}.items()])
            conn.execute(insert(old), [row("p2", "nan", float("nan")), row("p2", "city", "Ulm")])
        with engine.connect() as conn:  # as bare tokens, not JSON
            stored = dict(conn.execute(text("SELECT name, value FROM traits WHERE profile_id = 'p1'")).all())
        assert (stored["nan"], stored["inf"], stored["-inf"]) == ("NaN", "Infinity", "-Infinity")
    else:
        # PostgreSQL's json type refuses the tokens: no old PostgreSQL store can hold them.
        for value in _NON_FINITE.values():
            refused = pytest.raises(sa.exc.DataError, match="invalid input syntax for type json")
            with refused, engine.begin() as conn:
                conn.execute(insert(old), [row("p1", "nan", value)])
        with engine.begin() as conn:
            conn.execute(insert(old), [row("p2", "city", "Ulm")])
    # A number beyond a double's range: valid JSON, but Python reads it as an infinity (SQLite already
    # stored it as one, the column's NUMERIC affinity makes it a REAL).
    cast = "CAST(:value AS json)" if db_backend == "postgresql" else ":value"
    with engine.begin() as conn:
        for name, value in (("huge", "1e400"), ("-huge", "-1e400")):
            conn.execute(
                text(f"INSERT INTO traits (profile_id, name, value, source) VALUES ('p1', :name, {cast}, :source)"),
                {"name": name, "value": value, "source": f"src-{name}"},
            )

    upgrade_to(engine, "head")

    assert "traits" not in table_names(engine)
    assert revision(engine) == (head_revision(),)
    table = model_table("profiles")
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(table.c.id, table.c.traits, table.c.trait_sources))}
        raw = conn.execute(text("SELECT id, CAST(traits AS TEXT) FROM profiles")).all()

    def not_json(token: str) -> None:
        raise AssertionError(f"{token} in profiles.traits")

    for _, document in raw:  # plain JSON for SQL readers: no NaN or Infinity token
        json.loads(document, parse_constant=not_json)
    nulls = {"huge": None, "-huge": None}
    if db_backend == "sqlite":
        nulls |= {"nan": None, "inf": None, "-inf": None, "scores": [1, None, 2.5], "stats": {"max": None, "n": 2}}
    assert rows["p1"].traits == {**_FINITE, **nulls}
    assert all(not isinstance(v, float) or math.isfinite(v) for v in rows["p1"].traits.values())
    at = "2024-05-01T12:00:00.000000"
    sources = {name: f"{at}|src-{name}|" for name in {**_FINITE, **nulls}} | {
        "huge": "~|src-huge|",
        "-huge": "~|src--huge|",
    }
    assert rows["p1"].trait_sources == {"r": [], "n": sources}
    p2 = {"nan": None, "city": "Ulm"} if db_backend == "sqlite" else {"city": "Ulm"}
    assert rows["p2"].traits == p2
    assert rows["p2"].trait_sources == {"r": [], "n": {name: f"{at}|src-{name}|" for name in p2}}

    with migration_transaction(engine) as conn:  # and down: a null is SQL NULL, as the old writer stored it
        command.downgrade(alembic_config(conn), "0004")
    after = _trait_rows(engine)
    assert after == {
        **{("p1", n): (v, f"src-{n}", NOW) for n, v in {**_FINITE, **nulls}.items() if n not in ("huge", "-huge")},
        ("p1", "huge"): (None, "src-huge", None),
        ("p1", "-huge"): (None, "src--huge", None),
        **{("p2", n): (v, f"src-{n}", NOW) for n, v in p2.items()},
    }
    upgrade_to(engine, "head")  # and up again
    with engine.connect() as conn:
        again = {r.id: r for r in conn.execute(select(table.c.id, table.c.traits, table.c.trait_sources))}
    assert {p: (r.traits, r.trait_sources) for p, r in again.items()} == {
        p: (r.traits, r.trait_sources) for p, r in rows.items()
    }


# -- 0006/0007: the member rows keep only identifiers the set's profile does not own ----------


def test_0007_keeps_only_members_the_sets_profile_does_not_own_and_downgrade_restores_all(engine: Engine) -> None:
    upgrade_to(engine, "0005")
    sets = sa.table(
        "id_sets", *(sa.column(c) for c in ("id", "sort_key", "profile_id")), sa.column("identifiers", sa.JSON)
    )
    members = sa.table("id_set_members", *(sa.column(c) for c in ("type", "value", "set_id")))
    identities = sa.table(
        "identities", *(sa.column(c) for c in ("type", "value", "profile_id", "source", "first_seen"))
    )
    graph = {  # set -> (its profile, its identifiers)
        "s1": ("p1", [["email", "a@x.de"], ["phone", "+4917612345678"]]),
        "s2": ("p1", [["email", "a@x.de"], ["shopify_customer_id", "7"]]),
        "s3": ("p2", [["email", "a@x.de"], ["email", "b@x.de"]]),  # a@x.de is p1's: kept apart by a limit
        "s4": ("p2", [["email", "b@x.de"], ["phone", "+4917600000000"]]),  # that phone: owned by nobody
    }
    owners = {("email", "a@x.de"): "p1", ("phone", "+4917612345678"): "p1", ("shopify_customer_id", "7"): "p1"}
    owners[("email", "b@x.de")] = "p2"
    everything = {(t, v, sid) for sid, (_, ids) in graph.items() for t, v in ids}
    with engine.begin() as conn:
        conn.execute(
            insert(sets),
            [
                {"id": sid, "sort_key": f"k{sid}", "profile_id": pid, "identifiers": ids}
                for sid, (pid, ids) in graph.items()
            ],
        )
        conn.execute(insert(members), [{"type": t, "value": v, "set_id": s} for t, v, s in sorted(everything)])
        conn.execute(
            insert(identities),
            [
                {"type": t, "value": v, "profile_id": p, "source": "crm", "first_seen": "k"}
                for (t, v), p in owners.items()
            ],
        )

    def stored() -> set[tuple[str, str, str]]:
        with engine.connect() as conn:
            return {
                (r.type, r.value, r.set_id)
                for r in conn.execute(select(members.c.type, members.c.value, members.c.set_id))
            }

    upgrade_to(engine, "head")
    assert differences(engine) == []
    assert stored() == {("email", "a@x.de", "s3"), ("phone", "+4917600000000", "s4")}
    with migration_transaction(engine) as conn:
        command.downgrade(alembic_config(conn), "0005")
    assert stored() == everything
    assert "ix_id_set_members_set" in {i["name"] for i in inspect(engine).get_indexes("id_set_members")}


# -- 0008: segment and computed-trait tables; the history is never dropped silently ---------


def test_0008_adds_the_segment_tables_and_refuses_to_drop_a_history(engine: Engine) -> None:
    upgrade_to(engine, "0007")
    assert not {"computed_traits", "segment_members", "segment_history", "segment_refreshes"} & table_names(engine)
    upgrade_to(engine, "0008")
    assert {"computed_traits", "segment_members", "segment_history", "segment_refreshes"} <= table_names(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(model_table("segment_history")), [{"segment": "vip", "profile_id": "p1", "entered_at": NOW}]
        )
    with pytest.raises(RuntimeError, match="segment_history holds 1 rows"):
        with migration_transaction(engine) as conn:
            command.downgrade(alembic_config(conn), "0007")
    assert revision(engine) == ("0008",)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM segment_history"))
    with migration_transaction(engine) as conn:
        command.downgrade(alembic_config(conn), "0007")
    assert not {"computed_traits", "segment_members", "segment_history", "segment_refreshes"} & table_names(engine)
