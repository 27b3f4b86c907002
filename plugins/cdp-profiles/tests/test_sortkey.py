"""The canonical sort key: one encoding, one parser, text order = canonical order."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cdp_core import Record
from cdp_core.store import Checkpoint
from cdp_core.store.engine import make_engine

from cdp_profiles.identity import IdentityConfig
from cdp_profiles.store import sortkey
from cdp_profiles.store.profiles import ProfileWriter
from cdp_profiles.store.schema import ensure_schema

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_encode_and_decode_are_inverse_and_the_key_may_hold_the_separator() -> None:
    key = sortkey.encode(T0, "crm.contacts", "a|b|c")
    assert key == "2024-05-01T12:00:00.000000|crm.contacts|a|b|c"
    assert sortkey.decode(key) == sortkey.SortKey(T0, "crm.contacts", "a|b|c")
    assert sortkey.stream_of(key) == "crm.contacts"
    assert sortkey.record_of(key) == "crm.contacts|a|b|c"
    assert sortkey.decode(sortkey.encode(None, "s.x", "1")) == sortkey.SortKey(None, "s.x", "1")


def test_an_offset_time_is_stored_as_utc() -> None:
    berlin = T0.astimezone(timezone(timedelta(hours=2)))
    assert sortkey.encode(berlin, "s.x", "1") == sortkey.encode(T0, "s.x", "1")
    assert sortkey.encode(T0.replace(tzinfo=None), "s.x", "1") == sortkey.encode(T0, "s.x", "1")


def test_text_order_is_time_order_with_timeless_records_last() -> None:
    """The tables compare keys as text: that must order records by time; ties by the text of STREAM|KEY."""
    rng = random.Random(7)
    def when() -> datetime | None:
        shift = timedelta(seconds=rng.randint(-(10**6), 10**6), microseconds=rng.randint(0, 999_999))
        return None if rng.random() < 0.2 else T0 + shift

    records = [(when(), rng.choice(["a.x", "b.y", "a.x-2"]), str(rng.randint(0, 50))) for _ in range(500)]
    by_text = sorted(records, key=lambda r: sortkey.encode(*r))
    times = [(r[0] is None, r[0] or T0) for r in by_text]
    assert times == sorted(times)


def test_a_stream_holding_the_separator_is_refused() -> None:
    with pytest.raises(sortkey.SortKeyError, match="reserves"):
        sortkey.encode(T0, "crm|x.contacts", "1")


def test_the_store_quarantines_a_record_whose_stream_holds_the_separator(store_url: str) -> None:
    """A plugin that names its records' stream with '|' loses nothing and corrupts no source priority."""
    engine = make_engine(store_url)
    try:
        ensure_schema(engine)
        good = Record(stream="crm.contacts", key="1", identifiers={"email": "a@example.org"}, data={"city": "Berlin"})
        bad = Record(stream="crm|x.contacts", key="2", identifiers={"email": "b@example.org"}, data={"city": "Bonn"})
        checkpoint = Checkpoint(graph="g", run_id="r1")
        ProfileWriter(engine, IdentityConfig()).write([good, bad], checkpoint)
        [(_, rejected)] = checkpoint.rejected
        assert rejected.key == "2" and "reserves" in rejected.reason
    finally:
        engine.dispose()
