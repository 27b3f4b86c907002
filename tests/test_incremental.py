"""cdp_core.Incremental: the mark, the lookback, the delivered keys, and their JSON form."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cdp_core import CursorValueError, Incremental
from cdp_core.incremental import parse_timestamp


def roundtrip(cursor: Any) -> Any:
    return json.loads(json.dumps(cursor))


def read(inc: Incremental, rows: list[tuple[str, Any]]) -> list[str]:
    """The keys ``inc`` lets through, as a stream would deliver them."""
    return [key for key, value in rows if inc.admit(key, value)]


def test_first_read_then_resume_from_the_saved_cursor() -> None:
    inc = Incremental("updated_at").load(None)
    assert inc.start_value is None
    assert read(inc, [("a", "2024-05-01T10:00:00Z"), ("b", "2024-05-01T11:00:00Z")]) == ["a", "b"]
    cursor = roundtrip(inc.to_cursor())
    assert cursor == {"last_value": "2024-05-01T11:00:00+00:00", "seen": {"b": "2024-05-01T11:00:00+00:00"}}

    again = Incremental("updated_at").load(cursor)
    assert again.start_value == datetime(2024, 5, 1, 11, tzinfo=UTC)
    # an inclusive filter returns b again: dropped; c at the same instant is new
    assert read(again, [("b", "2024-05-01T11:00:00Z"), ("c", "2024-05-01T11:00:00Z")]) == ["c"]
    assert roundtrip(again.to_cursor())["seen"] == {k: "2024-05-01T11:00:00+00:00" for k in ("b", "c")}


def test_timestamps_compare_as_instants_not_text() -> None:
    inc = Incremental("updated_at")
    # as text "...T11:30:00+02:00" sorts after "...T10:00:00Z", yet it is 09:30 UTC
    read(inc, [("a", "2024-05-01T10:00:00Z"), ("b", "2024-05-01T11:30:00+02:00")])
    assert inc.last_value == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert inc.last_value.tzinfo is UTC


def test_a_newer_version_of_a_delivered_record_comes_again() -> None:
    inc = Incremental("updated_at").load({"last_value": "2024-05-01T10:00:00Z", "seen": {"a": "2024-05-01T10:00:00Z"}})
    assert read(inc, [("a", "2024-05-01T10:00:00Z")]) == []
    assert read(inc, [("a", "2024-05-01T10:05:00Z")]) == ["a"]


def test_records_before_the_start_are_dropped() -> None:
    inc = Incremental("updated_at", initial_value="2024-05-01T00:00:00Z").load(None)
    assert read(inc, [("old", "2024-04-30T23:59:59Z"), ("new", "2024-05-01T00:00:00Z")]) == ["new"]


def test_lookback_starts_the_next_read_earlier_and_drops_its_repeats() -> None:
    inc = Incremental("updated_at", lookback=timedelta(minutes=10))
    read(inc, [("a", "2024-05-01T09:45:00Z"), ("b", "2024-05-01T09:55:00Z"), ("c", "2024-05-01T10:00:00Z")])
    cursor = roundtrip(inc.to_cursor())
    assert cursor["last_value"] == "2024-05-01T10:00:00+00:00"
    assert sorted(cursor["seen"]) == ["b", "c"]  # a is older than the mark minus the lookback: forgotten

    again = Incremental("updated_at", lookback=timedelta(minutes=10)).load(cursor)
    assert again.start_value == datetime(2024, 5, 1, 9, 50, tzinfo=UTC)
    # the lagging index now shows d (inside the window, never delivered): only d is new
    rows = [("b", "2024-05-01T09:55:00Z"), ("d", "2024-05-01T09:52:00Z"), ("c", "2024-05-01T10:00:00Z")]
    assert read(again, rows) == ["d"]


def test_saving_the_start_instead_of_the_mark() -> None:
    inc = Incremental("updated_at", lookback=timedelta(seconds=60), cursor_key="updated_at_min", save="start")
    read(inc, [("a", "2024-05-01T10:00:00Z")])
    cursor = roundtrip(inc.to_cursor())
    assert cursor == {"updated_at_min": "2024-05-01T09:59:00+00:00", "seen": {"a": "2024-05-01T10:00:00+00:00"}}
    again = Incremental("updated_at", lookback=timedelta(seconds=60), cursor_key="updated_at_min", save="start")
    assert again.load(cursor).start_value == datetime(2024, 5, 1, 9, 59, tzinfo=UTC)
    assert again.to_cursor() == cursor  # nothing new read: the same cursor


def test_cap_keeps_the_mark_before_the_reads_start() -> None:
    inc = Incremental("updated_at", cursor_key="since", save="start")
    read(inc, [("a", "2024-05-01T10:00:30Z")])
    began = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert inc.to_cursor(cap=began) == {
        "since": "2024-05-01T10:00:00+00:00",
        "seen": {"a": "2024-05-01T10:00:30+00:00"},
    }


def test_keys_layout_and_epoch_units() -> None:
    keys = Incremental("last_changed", cursor_key="since", seen_as="keys")
    read(keys, [("b", "2024-05-01T10:00:00Z"), ("a", "2024-05-01T10:00:00Z"), ("z", "2024-05-01T09:00:00Z")])
    cursor = roundtrip(keys.to_cursor())
    assert cursor == {"since": "2024-05-01T10:00:00+00:00", "seen": ["a", "b"]}  # only those at the mark
    assert (
        read(
            Incremental("last_changed", cursor_key="since", seen_as="keys").load(cursor),
            [("a", "2024-05-01T10:00:00Z")],
        )
        == []
    )

    ms = Incremental("lastmodifieddate", unit="ms", cursor_key="mark")
    read(ms, [("1", "2024-05-01T10:00:00.123Z"), ("2", "1714557600000")])
    assert ms.to_cursor() == {"mark": 1714557600123, "seen": {"1": 1714557600123}}
    # a small number is read in the declared unit, not guessed from its size
    assert Incremental("t", unit="ms").parse(10_000) == datetime(1970, 1, 1, 0, 0, 10, tzinfo=UTC)
    assert Incremental("t", unit="s").encode(Incremental("t", unit="s").parse(1714557600)) == 1714557600


def test_progress_of_a_read_cut_short_resumes() -> None:
    def fresh_inc() -> Incremental:
        return Incremental("updated_at", lookback=timedelta(seconds=60), cursor_key="since", save="start")

    start = {"since": "2024-05-01T09:00:00+00:00", "seen": {"a": "2024-05-01T09:00:00+00:00"}}
    inc = fresh_inc().load(start)
    assert read(inc, [("a", "2024-05-01T09:00:00Z"), ("b", "2024-05-01T10:00:00Z")]) == ["b"]
    inc.prune()
    saved = roundtrip({**inc.start_cursor(), "newest": inc.encode(inc.last_value), "fresh": inc.encode_seen(inc.fresh)})
    assert saved["since"] == start["since"] and saved["seen"] == start["seen"]  # the read's own start, kept

    resumed = fresh_inc().load(saved).load_progress(saved["newest"], saved["fresh"])
    assert read(
        resumed, [("a", "2024-05-01T09:00:00Z"), ("b", "2024-05-01T10:00:00Z"), ("c", "2024-05-01T10:00:00Z")]
    ) == ["c"]
    assert resumed.to_cursor() == {
        "since": "2024-05-01T09:59:00+00:00",
        "seen": {"b": "2024-05-01T10:00:00+00:00", "c": "2024-05-01T10:00:00+00:00"},
    }


def test_max_seen_bounds_the_cursor() -> None:
    inc = Incremental("updated_at", seen_as="keys", max_seen=2)
    read(inc, [(k, "2024-05-01T10:00:00Z") for k in "abcd"])
    assert inc.to_cursor()["seen"] == ["a", "b"]


def test_numbers() -> None:
    inc = Incremental("version", type="number", lookback=5, initial_value="10")
    assert inc.start_value == 10
    assert read(inc, [("x", 9), ("a", 12), ("b", "20"), ("c", 17.5)]) == ["a", "b", "c"]
    cursor = roundtrip(inc.to_cursor())
    assert cursor == {"last_value": 20, "seen": {"b": 20, "c": 17.5}}  # at or after 20 - 5
    again = Incremental("version", type="number", lookback=5).load(cursor)
    assert again.start_value == 15 and read(again, [("c", 17.5), ("d", 16)]) == ["d"]


def test_opaque_tokens_keep_the_last_one_and_dedupe_inside_a_read() -> None:
    inc = Incremental("token", type="token", cursor_key="after", seen_as=None).load({"after": "t1"})
    assert inc.last_value == inc.start_value == "t1"  # the next request asks for what comes after it
    assert read(inc, [("t3", "t3"), ("t2", "t2"), ("t3", "t3")]) == ["t3", "t2"]
    assert inc.to_cursor() == {"after": "t3"}  # the last read, not the greatest: tokens are not ordered
    assert Incremental("token", type="token", cursor_key="after", seen_as=None).to_cursor() == {"after": None}


@pytest.mark.parametrize(
    ("kind", "value"),
    [("timestamp", "last tuesday"), ("timestamp", None), ("timestamp", True), ("number", "ten"), ("token", "")],
)
def test_an_unreadable_value_names_the_field_and_the_value(kind: Any, value: Any) -> None:
    inc = Incremental("updated_at", type=kind)
    with pytest.raises(CursorValueError, match=r"cursor field 'updated_at': .* is not ") as info:
        inc.admit("a", value)
    assert info.value.field == "updated_at" and info.value.value == value


def test_a_cursor_of_another_shape() -> None:
    with pytest.raises(ValueError, match="acme cursor: expected a JSON object"):
        Incremental("updated_at").load("2024-05-01", what="acme cursor")
    with pytest.raises(CursorValueError, match="'updated_at': 'soon'"):
        Incremental("updated_at").load({"last_value": "soon"})


def test_a_lookback_must_fit_the_type() -> None:
    with pytest.raises(TypeError, match="timedelta"):
        Incremental("updated_at", lookback=60)
    with pytest.raises(TypeError, match="number"):
        Incremental("version", type="number", lookback=timedelta(seconds=1))
    with pytest.raises(ValueError, match="token"):
        Incremental("token", type="token", lookback=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-02-12T10:15:00+01:00", datetime(2024, 2, 12, 9, 15, tzinfo=UTC)),
        (" 2024-02-12 ", datetime(2024, 2, 12, tzinfo=UTC)),
        ("2024-02-12 10:15:00.5Z", datetime(2024, 2, 12, 10, 15, 0, 500000, tzinfo=UTC)),
        ("20240212", datetime(2024, 2, 12, tzinfo=UTC)),
        ("20240212T101500Z", datetime(2024, 2, 12, 10, 15, tzinfo=UTC)),
        ("1700000000", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        ("-100", datetime(1969, 12, 31, 23, 58, 20, tzinfo=UTC)),
        ("2024-2-12", "not ISO 8601"),
        ("1234-", "not ISO 8601"),
        ("-123-4", "not ISO 8601"),
    ],
)
def test_timestamp_text_forms(text: str, expected: datetime | str) -> None:
    # "YYYY-..." is parsed as ISO at once; every other form goes through the patterns as before
    if isinstance(expected, str):
        with pytest.raises(ValueError, match=expected):
            parse_timestamp(text)
    else:
        assert parse_timestamp(text) == expected
