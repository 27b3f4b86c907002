"""Stream trait mappings in the profile store: mapped traits on the profile, the whole record kept, values
not of their type counted, and the incremental path equal to a recompute from the stored records."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cdp_core.plugins import load_plugins
from cdp_core.records import Record
from cdp_core.runinfo import RunStatus
from cdp_core.store import Checkpoint
from cdp_core.store.engine import make_engine
from cdp_core.testing.helpers import run_graph
from cdp_core.traits import TraitMap
from sqlalchemy import Engine, select

from cdp_profiles import plugin as profiles_plugin
from cdp_profiles.identity import IdentityConfig
from cdp_profiles.store import tables
from cdp_profiles.store.extend import Extend
from cdp_profiles.store.profiles import ProfileWriter
from cdp_profiles.store.schema import ensure_schema
from cdp_profiles.store.traits import Traits, origin

T0 = datetime(2024, 1, 1, tzinfo=UTC)
CRM = TraitMap.of(
    {
        "first_name": "firstname",
        "age": {"field": "age", "type": "number"},
        "labels": {"field": "tags", "type": "list"},
        "city": "address.city",
    }
)
RULES = IdentityConfig(traits={"strategies": {"labels": "accumulate", "tags": "accumulate"}})


def rec(key: str, minutes: int, data: dict[str, Any], email: str, mapping: TraitMap | None = CRM, stream: str = "crm.c") -> Record:
    return Record(
        stream=stream,
        key=key,
        data=data,
        identifiers={"email": email},
        occurred_at=T0 + timedelta(minutes=minutes),
        trait_map=mapping,
    )


def write(engine: Engine, records: list[Record], batch_size: int = 10_000, config: IdentityConfig = RULES) -> list[Checkpoint]:
    writer = ProfileWriter(engine, config)
    checkpoints = []
    for start in range(0, len(records), batch_size):
        checkpoint = Checkpoint(graph="g", run_id=f"run{start}")
        # Each batch gets copies, as a runner hands them over: the mapping must survive them.
        writer.write([r.model_copy(deep=True) for r in records[start : start + batch_size]], checkpoint)
        checkpoints.append(checkpoint)
    return checkpoints


def profiles(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(tables.profiles.c.traits).where(tables.profiles.c.merged_into.is_(None))).scalars()
        return sorted((dict(t) for t in rows), key=lambda t: str(sorted(t.items())))


def test_only_mapped_fields_become_traits_and_the_record_keeps_everything(store_engine: Engine) -> None:
    data = {"id": "c1", "firstname": "Anna", "age": "41", "tags": "VIP, Abo", "address": {"city": "Köln"}, "status": 3}
    write(store_engine, [rec("c1", 0, data, "anna@x.de")])
    # labels accumulate: their sorted union
    assert profiles(store_engine) == [{"first_name": "Anna", "age": 41, "labels": ["Abo", "VIP"], "city": "Köln"}]
    with store_engine.connect() as conn:
        stored = conn.execute(select(tables.profile_records.c.data, tables.profile_records.c.traits)).one()
    assert stored.data == data
    assert stored.traits == {"first_name": "Anna", "age": 41, "labels": ["VIP", "Abo"], "city": "Köln"}


def test_a_stream_without_a_mapping_keeps_every_field_as_a_trait(store_engine: Engine) -> None:
    write(store_engine, [rec("s1", 0, {"id": "s1", "firstname": "Ben"}, "ben@x.de", mapping=None, stream="shop.c")])
    assert profiles(store_engine) == [{"id": "s1", "firstname": "Ben"}]
    with store_engine.connect() as conn:
        assert conn.execute(select(tables.profile_records.c.traits)).scalar_one() is None


def test_a_value_not_of_its_type_sets_no_trait_is_counted_and_the_record_is_stored(store_engine: Engine) -> None:
    records = [
        rec("c1", 0, {"firstname": "Anna", "age": "forty"}, "anna@x.de"),
        rec("c2", 1, {"firstname": "Ben", "age": "n/a"}, "ben@x.de"),
        rec("c3", 2, {"firstname": "Cem", "age": "33"}, "cem@x.de"),
    ]
    (checkpoint,) = write(store_engine, records)
    assert checkpoint.rejected == []
    assert checkpoint.warnings == {("", "crm.c: trait 'age' not set: field 'age' is text that is not a number"): 2}
    traits = profiles(store_engine)
    assert {"first_name": "Anna"} in traits and {"first_name": "Cem", "age": 33} in traits
    with store_engine.connect() as conn:
        assert conn.execute(select(tables.profile_records.c.data).where(tables.profile_records.c.key == "c1")).scalar_one()["age"] == "forty"


def test_merge_strategies_apply_per_trait_name_across_mapped_and_unmapped_streams(store_engine: Engine) -> None:
    write(
        store_engine,
        [
            rec("c1", 0, {"firstname": "Anna", "tags": "a,b"}, "anna@x.de"),
            rec("n1", 1, {"first_name": "Anni", "labels": ["c"]}, "anna@x.de", mapping=None, stream="news.m"),
        ],
    )
    assert profiles(store_engine) == [{"first_name": "Anni", "labels": ["a", "b", "c"]}]


# -- incremental == recompute from the stored records ---------------------------------------------


def people(seed: int = 5, count: int = 240) -> list[Record]:
    """Two streams (one mapped, one not) about overlapping people, then 50 re-deliveries with new data."""
    rng = random.Random(seed)
    records = []
    for i in range(count):
        person = rng.randrange(count // 3)
        email = rng.choice([f"p{person}@x.de", f"family{person // 4}@x.de"])
        mapped = rng.random() < 0.6
        data = {
            "firstname": rng.choice(["Anna", "Ben", ""]),
            "age": rng.choice(["30", "x", 41, ""]),
            "tags": rng.choice(["a,b", "c", ""]),
            "address": {"city": rng.choice(["Köln", "Ulm"])},
            "n": i,
        }
        records.append(rec(str(i), rng.randrange(3000), data, email, CRM if mapped else None, "crm.c" if mapped else "shop.c"))
    again = []
    for r in rng.sample(records, 50):
        data = {**r.data, "firstname": rng.choice(["Zoe", ""]), "tags": "z", "age": "77"}
        again.append(rec(r.key, rng.randrange(3000), data, r.identifiers["email"], r.trait_map, r.stream))
    return records + again


def snapshot(engine: Engine) -> set[tuple[Any, ...]]:
    """Each live profile by its identifiers, with every trait's value, source stream and time."""
    with engine.connect() as conn:
        owned: dict[str, set[tuple[str, str]]] = {}
        for row in conn.execute(select(tables.identities.c.type, tables.identities.c.value, tables.identities.c.profile_id)):
            owned.setdefault(row.profile_id, set()).add((row.type, row.value))
        out = set()
        query = select(tables.profiles.c.id, tables.profiles.c.traits, tables.profiles.c.trait_sources).where(tables.profiles.c.merged_into.is_(None))
        for row in conn.execute(query):
            loaded = Traits.load(row.traits, row.trait_sources)
            traits = tuple(sorted((k, repr(v), origin(loaded.keys[k])) for k, v in loaded.values.items()))
            out.add((frozenset(owned[row.id]), traits))
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> set[tuple[Any, ...]]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('ref')}/ref.sqlite")
    ensure_schema(engine)
    write(engine, people())  # one batch: of a re-delivered record the store keeps the newest version
    try:
        return snapshot(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize("batch_size", [1, 9, 10_000])
def test_incremental_equals_a_recompute_with_mappings(
    store_engine: Engine, batch_size: int, reference: set[tuple[Any, ...]]
) -> None:
    paths = {"fast": 0, "slow": 0}
    classify = Extend._classify

    def counting(self: Extend, comp: Any, *args: Any) -> None:
        classify(self, comp, *args)
        paths["slow" if comp.slow else "fast"] += 1

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Extend, "_classify", counting)
        write(store_engine, people(), batch_size=batch_size)
    got = snapshot(store_engine)
    names = {name for _, traits in got for name, _, _ in traits}
    assert {"first_name", "labels", "age", "city"} <= names and "firstname" in names  # mapped and unmapped alike
    assert {"address", "tags"} <= names and paths["fast"] > 0  # the unmapped stream's fields as they are
    assert batch_size == 10_000 or paths["slow"] > 0  # re-deliveries recompute from the stored records
    assert got == reference


# -- a run: the mapping from the file's stream to the store, counted warnings ------------------


GRAPH = """
[connectors.crm]
type = "csv"
[connectors.crm.streams.contacts]
path = "contacts.csv"
identifiers = {{ email = "email" }}
timestamp_field = "updated"
traits = {{ first_name = "firstname", country = "country", age = {{ type = "number" }}, tags = {{ type = "list" }} }}

[connectors.store]
type = "profile_store"

[syncs.main.nodes.crm]
source = "crm.contacts"
[syncs.main.nodes.rename]
transform = "rename"
inputs = ["crm"]
options = {{ fields = {{ firstname = "first_name" }} }}
[syncs.main.nodes.clean]
transform = "normalize"
inputs = ["rename"]
options = {{ fields = {{ first_name = "name", country = "country" }} }}
[syncs.main.nodes.store]
destination = "store"
inputs = ["clean"]

[store]
url = "{url}"
"""


def test_a_run_maps_renamed_and_normalized_fields_and_counts_bad_values(tmp_path: Path, store_url: str) -> None:
    (tmp_path / "contacts.csv").write_text(
        "id,email,firstname,country,age,tags,updated\n"
        '1,anna@x.de,  Anna ,Deutschland,41,"VIP, Abo",2024-01-01\n'
        "2,ben@x.de,Ben,Österreich,old,,2024-01-02\n"
    )
    run = run_graph(tmp_path, GRAPH.format(url=store_url), load_plugins(entry_points=False, extra=[("profiles", profiles_plugin)]))
    assert run.status is RunStatus.succeeded, run.error
    assert run.nodes["store"].warnings == {"crm.contacts: trait 'age' not set: field 'age' is text that is not a number": 1}
    engine = make_engine(store_url)
    try:
        got = profiles(engine)
    finally:
        engine.dispose()
    assert {"first_name": "Anna", "country": "DE", "age": 41, "tags": ["VIP", "Abo"]} in got
    assert {"first_name": "Ben", "country": "AT"} in got


def test_a_record_the_store_quarantined_gets_todays_mapping_when_retried(tmp_path: Path, store_url: str) -> None:
    """The store quarantined the record after the rename: its payload keeps the mapping as it was there."""
    from cdp_core.config import load_config
    from cdp_core.retry import Retry, retry_guarded
    from cdp_core.store import SystemStore
    from cdp_core.store.leases import Leases

    (tmp_path / "contacts.csv").write_text(
        "id,email,firstname,country,age,tags,updated\n1,anna@blocked.de,Anna,Deutschland,41,VIP,2024-01-01\n"
    )
    plugins = load_plugins(entry_points=False, extra=[("profiles", profiles_plugin)])
    blocked = GRAPH.format(url=store_url) + '\n[identity]\nblocked = ["email:*@blocked.de"]\n'
    run = run_graph(tmp_path, blocked, plugins)
    assert run.status is RunStatus.succeeded and run.nodes["store"].rejected == 1
    system = SystemStore(store_url)
    try:
        [entry] = system.quarantined(graph="main")
        payload = system.payloads([entry.id])[entry.id]
    finally:
        system.engine.dispose()
    assert payload["trait_map"]["first_name"] == {"field": "first_name"}  # renamed with the data
    # The block was a mistake: lifted, the record is sent again from the store's node.
    path = tmp_path / "connectors.toml"
    path.write_text(GRAPH.format(url=store_url))
    config = load_config(path, plugins, env={})
    system = SystemStore(store_url)
    try:
        retry = Retry(system.quarantined(graph="main"))
        again = retry_guarded(config, plugins, system, "main", retry, leases=Leases(system.engine))
        assert again.status is RunStatus.succeeded and retry.sent == 1
    finally:
        system.engine.dispose()
    engine = make_engine(store_url)
    try:
        assert profiles(engine) == [{"first_name": "Anna", "country": "DE", "age": 41, "tags": ["VIP"]}]
    finally:
        engine.dispose()
