"""The profile store read back as a source: incremental profiles, and the full-refresh snapshot for mirrors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cdp_core.base import ConnectorContext
from cdp_core.records import Record
from cdp_core.store import Checkpoint
from cdp_core.store.engine import make_engine

from cdp_profiles.identity import IdentityConfig
from cdp_profiles.profile_store import ProfileStoreConfig, ProfileStoreSource
from cdp_profiles.store import tables
from cdp_profiles.store.profiles import ProfileWriter
from cdp_profiles.store.schema import ensure_schema

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _store(url: str, count: int) -> None:
    engine = make_engine(url)
    ensure_schema(engine)
    records = [
        Record(
            stream="crm.c",
            key=str(i),
            data={"city": "Ulm", "n": i},
            identifiers={"email": f"p{i}@x.de"},
            occurred_at=T0 + timedelta(minutes=i),
        )
        for i in range(count)
    ]
    ProfileWriter(engine, IdentityConfig()).write(records, Checkpoint("g", "r"))
    engine.dispose()


def _source(url: str, tmp_path: Path, page_size: int) -> ProfileStoreSource:
    context = ConnectorContext(name="store", store_url=url, base_dir=tmp_path)
    return ProfileStoreSource(ProfileStoreConfig(page_size=page_size), context)


def test_profiles_all_reads_everyone_every_run_and_resumes_mid_read(store_url: str, tmp_path: Path) -> None:
    _store(store_url, 7)
    source = _source(store_url, tmp_path, page_size=3)
    stream = source.stream("profiles_all")
    pages = list(stream.read(None))
    keys = [r.key for p in pages for r in p.records]
    assert len(keys) == 7 == len(set(keys))
    assert pages[-1].cursor is None and all(p.cursor is not None for p in pages[:-1])
    assert {r.identifiers["email"] for p in pages for r in p.records} == {f"p{i}@x.de" for i in range(7)}
    assert all(r.data["city"] == "Ulm" for p in pages for r in p.records)
    resumed = [r.key for p in stream.read(pages[0].cursor) for r in p.records]
    assert resumed == keys[3:]
    assert [r.key for p in stream.read(None) for r in p.records] == keys  # the next run: everyone again
    source.close()


def test_profiles_incremental_reads_only_changes(store_url: str, tmp_path: Path) -> None:
    _store(store_url, 4)
    source = _source(store_url, tmp_path, page_size=2)
    stream = source.stream("profiles")
    pages = list(stream.read(None))
    assert len({r.key for p in pages for r in p.records}) == 4
    assert [r.key for p in stream.read(pages[-1].cursor) for r in p.records] == []
    source.close()


def test_profiles_carry_the_trait_values(store_url: str, tmp_path: Path) -> None:
    """Traits written straight into profiles.traits: the record's data is name -> value, nothing of trait_sources."""
    engine = make_engine(store_url)
    ensure_schema(engine)
    profiles, identities = tables.profiles, tables.identities
    key = "2024-01-01T00:00:00.000000|crm|1"  # the deciding record's sort key

    def columns(traits: dict[str, Any], **exact: str) -> dict[str, Any]:
        sources: dict[str, Any] = {"r": [key], "n": dict.fromkeys(traits, 0)}
        return {"traits": traits, "trait_sources": {**sources, "x": exact} if exact else sources}

    rows: dict[str, dict[str, Any]] = {
        "p1": columns({"city": "Ulm", "vip": True, "visits": 3, "nps_score": 9, "nps_category": "promoter",
                       "note": None}, visits="3"),
        "p2": columns({}),
        "p3": columns({"city": "Bonn"}),  # merged into p1: not a profile of its own any more
    }  # fmt: skip
    with engine.begin() as conn:
        conn.execute(
            profiles.insert(),
            [
                {"id": p, "founder": "s", "sort_key": "k", "created_at": T0, "updated_at": T0 + timedelta(minutes=i),
                 "merged_into": "p1" if p == "p3" else None, **cols}
                for i, (p, cols) in enumerate(rows.items())
            ],
        )  # fmt: skip
        conn.execute(
            identities.insert(),
            [{"type": "email", "value": "p1@x.de", "profile_id": "p1", "source": "crm", "first_seen": None}],
        )
    engine.dispose()
    source = _source(store_url, tmp_path, page_size=10)
    expected = {
        "p1": {"profile_id": "p1", "city": "Ulm", "vip": True, "visits": 3, "nps_score": 9, "nps_category": "promoter",
               "note": None},
        "p2": {"profile_id": "p2"},
    }  # fmt: skip
    for name in ("profiles", "profiles_all"):
        records = [r for p in source.stream(name).read(None) for r in p.records]
        assert {r.key: r.data for r in records} == expected, name
        assert {r.key: r.identifiers for r in records} == {"p1": {"email": "p1@x.de"}, "p2": {}}
    source.close()
