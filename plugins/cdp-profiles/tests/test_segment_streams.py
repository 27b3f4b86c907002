"""Segments as sources (``store.segment_NAME``), computed traits on the store's records, and the refresh a sync does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cdp_core.base import ConnectorContext
from cdp_core.records import RecordKind
from cdp_core.store.checkpoint import Checkpoint
from sqlalchemy import Engine
from test_segment_refresh import RULES, T0, order, person, pid, write

from cdp_profiles.membership import reads
from cdp_profiles.membership.refresh import refresh
from cdp_profiles.profile_store import ProfileStoreConfig, ProfileStoreDestination, ProfileStoreSource
from cdp_profiles.segments import ComputedTraitsConfig, SegmentsConfig

SECTIONS: dict[str, Any] = {
    "segments": SegmentsConfig.model_validate({n: {"where": r.source} for n, r in RULES.segments.items()}),
    "computed_traits": ComputedTraitsConfig.model_validate({n: {"expression": r.source} for n, r in RULES.computed.items()}),
}


@pytest.fixture
def engine(store_engine: Engine) -> Iterator[Engine]:
    write(store_engine, "r1", person("a", "anna@x.de", "Berlin", T0), person("b", "bob@x.de", "Berlin", T0),
          person("c", "carla@x.de", "Munich", T0), order("o1", "anna@x.de", T0))  # fmt: skip
    yield store_engine


def source(engine: Engine, tmp_path: Path, page_size: int = 1) -> ProfileStoreSource:
    context = ConnectorContext(name="store", store_url=str(engine.url.render_as_string(hide_password=False)),
                               base_dir=tmp_path, sections=SECTIONS)  # fmt: skip
    return ProfileStoreSource(ProfileStoreConfig(page_size=page_size), context)


def test_a_segment_stream_per_configured_segment(engine: Engine, tmp_path: Path) -> None:
    names = [s.name for s in source(engine, tmp_path).streams()]
    assert names[-2:] == ["segment_berliners", "segment_buyers"]
    with pytest.raises(KeyError, match="segment_berliners"):
        source(engine, tmp_path).stream("segment_berlin")


def test_a_segment_stream_sends_its_current_members_every_run_with_traits(engine: Engine, tmp_path: Path) -> None:
    anna, bob = pid(engine, "anna@x.de"), pid(engine, "bob@x.de")
    refresh(engine, RULES, now=T0)  # computed traits
    src = source(engine, tmp_path)
    stream = src.stream("segment_berliners")
    pages = list(stream.read(None))
    records = [r for p in pages for r in p.records]
    assert sorted(r.key for r in records) == sorted([anna, bob])
    assert [p.cursor is None for p in pages] == [False, False, True]  # full refresh: the next run starts over
    first = next(r for r in records if r.key == anna)
    assert first.kind is RecordKind.profile and first.stream == "store.segment_berliners"
    assert first.identifiers == {"email": "anna@x.de"}
    assert first.data == {"profile_id": anna, "city": "Berlin", "order_count": 1, "city_caps": "BERLIN"}
    resumed = [r.key for p in stream.read(pages[0].cursor) for r in p.records]
    assert resumed == [r.key for r in records][1:]

    write(engine, "r2", person("b2", "bob@x.de", "Hamburg", T0))  # Bob leaves Berlin; no refresh ran since
    again = [r.key for p in stream.read(None) for r in p.records]
    assert again == [anna]  # the pass refreshed the membership first: a mirror removes Bob
    with engine.connect() as conn:
        assert [(h.profile_id, h.left_at is not None) for h in reads.history(conn, "berliners", 10, bob)] == [(bob, True)]
    src.close()


def test_profiles_streams_carry_computed_traits(engine: Engine, tmp_path: Path) -> None:
    refresh(engine, RULES, now=T0)
    records = [r for p in source(engine, tmp_path, 10).stream("profiles_all").read(None) for r in p.records]
    traits = sorted((r.data["city_caps"], r.data["order_count"]) for r in records)
    assert traits == [("BERLIN", 0), ("BERLIN", 1), ("MUNICH", 0)]


def test_the_store_destination_refreshes_after_the_records_of_its_run(engine: Engine, tmp_path: Path) -> None:
    anna = pid(engine, "anna@x.de")
    refresh(engine, RULES, now=T0)
    context = ConnectorContext(name="store", store_url=engine.url.render_as_string(hide_password=False),
                               base_dir=tmp_path, sections=SECTIONS)  # fmt: skip
    dest = ProfileStoreDestination(ProfileStoreConfig(), context)
    dest.open()
    dest.write([order("o2", "anna@x.de", T0), person("a2", "anna@x.de", "Potsdam", T0)], Checkpoint(graph="g", run_id="r9"))
    dest.close()
    with engine.connect() as conn:
        values = reads.computed_values(conn, [anna])[anna]
        assert values["order_count"][0] == 2 and values["city_caps"][0] == "POTSDAM"
        assert values["order_count"][1] > T0  # recomputed now
        assert [m.segment for m in reads.segments_of(conn, anna)] == []  # left Berlin; one order only
        assert reads.member_counts(conn) == {"berliners": 1}


def test_a_destination_without_segments_or_computed_traits_refreshes_nothing(engine: Engine, tmp_path: Path) -> None:
    context = ConnectorContext(name="store", store_url=engine.url.render_as_string(hide_password=False), base_dir=tmp_path)
    dest = ProfileStoreDestination(ProfileStoreConfig(), context)
    dest.open()
    dest.write([order("o2", "anna@x.de", T0)], Checkpoint(graph="g", run_id="r9"))
    dest.close()
    with engine.connect() as conn:
        assert reads.member_counts(conn) == {} and reads.last_refreshes(conn) == {}
