"""The profile store read back as a source: incremental profiles, and the full-refresh snapshot for mirrors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cdp_core.base import ConnectorContext
from cdp_core.builtins.profile_store import ProfileStoreConfig, ProfileStoreSource
from cdp_core.identity import IdentityConfig
from cdp_core.records import Record
from cdp_core.store import Checkpoint
from cdp_core.store.engine import make_engine
from cdp_core.store.profiles import ProfileWriter
from cdp_core.store.schema import create_schema

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _store(url: str, count: int) -> None:
    engine = make_engine(url)
    create_schema(engine)
    records = [
        Record(stream="crm.c", key=str(i), data={"city": "Ulm", "n": i}, identifiers={"email": f"p{i}@x.de"},
               occurred_at=T0 + timedelta(minutes=i))
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
