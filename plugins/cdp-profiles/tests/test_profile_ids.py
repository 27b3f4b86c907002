"""What a profile id depends on (docs/store.md, "Profile ids"), on both databases.

A person with an early record (email only) and a later one (email and phone): delivered in
one batch, in either order, or early record first across runs, the id comes from the early
record. Delivered late record first, in an earlier run, the id comes from the late record
and stays when the early one arrives: the store keeps ids stable rather than independent of
arrival order across runs.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from cdp_core.records import Record
from cdp_core.store.checkpoint import Checkpoint
from sqlalchemy import Engine, select, text

from cdp_profiles.identity import IdentityConfig
from cdp_profiles.store import sortkey, tables
from cdp_profiles.store.profiles import ProfileWriter, set_id
from cdp_profiles.store.replay import profile_id

T0 = datetime(2024, 1, 1, tzinfo=UTC)
EARLY = Record(stream="crm.contacts", key="1", identifiers={"email": "ada@example.org"}, occurred_at=T0)
LATE = Record(
    stream="shop.customers",
    key="9",
    identifiers={"email": "ada@example.org", "phone": "+4930123456"},
    occurred_at=T0 + timedelta(days=3),
)
OTHER = Record(stream="crm.contacts", key="2", identifiers={"email": "bob@example.org"}, occurred_at=T0)


def _id_of(record: Record) -> str:
    """The id a profile founded by ``record`` gets."""
    ids = sorted(record.identifiers.items())
    return profile_id(sortkey.encode(record.occurred_at, record.stream, record.key), set_id(ids))


def _live_ids(engine: Engine) -> dict[str, str]:
    """email -> id of the live profile owning it."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(tables.identities.c.value, tables.identities.c.profile_id).where(tables.identities.c.type == "email")
        ).all()
        live = set(conn.execute(select(tables.profiles.c.id).where(tables.profiles.c.merged_into.is_(None))).scalars())
    assert {pid for _, pid in rows} <= live
    return dict((value, pid) for value, pid in rows)


def _write(engine: Engine, batches: list[list[Record]]) -> dict[str, str]:
    with engine.begin() as conn:  # each arrangement on an empty store
        for table in ("identities", "id_set_members", "id_sets", "record_index", "profile_records", "profiles"):
            conn.execute(text(f"DELETE FROM {table}"))
    writer = ProfileWriter(engine, IdentityConfig())
    for n, batch in enumerate(batches):
        checkpoint = Checkpoint(graph="g", run_id=f"run{n}")
        writer.write(batch, checkpoint)
        assert not checkpoint.rejected
    return _live_ids(engine)


@pytest.mark.parametrize(
    "batches",
    [
        pytest.param([list(order)], id="one-batch-" + "-".join(r.key for r in order))
        for order in itertools.permutations([EARLY, LATE, OTHER])
    ]
    + [
        pytest.param([[EARLY], [LATE], [OTHER]], id="early-run-first"),
        pytest.param([[OTHER, EARLY], [LATE]], id="early-run-first-with-another-person"),
    ],
)
def test_within_a_batch_and_earliest_first_the_id_comes_from_the_earliest_record(
    store_engine: Engine, batches: list[list[Record]]
) -> None:
    assert _write(store_engine, batches) == {"ada@example.org": _id_of(EARLY), "bob@example.org": _id_of(OTHER)}


def test_a_given_id_stays_when_an_earlier_record_arrives_in_a_later_run(store_engine: Engine) -> None:
    first = _write(store_engine, [[LATE, OTHER]])
    assert first == {"ada@example.org": _id_of(LATE), "bob@example.org": _id_of(OTHER)}
    writer = ProfileWriter(store_engine, IdentityConfig())
    writer.write([EARLY], Checkpoint(graph="g", run_id="run-late"))
    assert _live_ids(store_engine) == first, "an id once given stays"
    assert _id_of(LATE) != _id_of(EARLY), "so this arrival order gave another id than a clean run"
    with store_engine.connect() as conn:
        founder = conn.execute(select(tables.profiles.c.founder).where(tables.profiles.c.id == first["ada@example.org"])).scalar_one()
    assert founder == set_id(sorted(EARLY.identifiers.items())), "the founder is the earliest record's set all the same"
