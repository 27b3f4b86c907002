"""Trait documents (cdp_profiles/store/traits.py): each strategy, and extending a document equals recomputing it."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cdp_profiles.identity import TraitRules
from cdp_profiles.store.sortkey import encode as sort_key
from cdp_profiles.store.traits import TraitRecord, Traits, compute_traits, merge_traits, origin

T0 = datetime(2024, 1, 1, tzinfo=UTC)
RULES = TraitRules(
    default="most_recent",
    strategies={
        "first": "oldest",
        "signup": "first_non_empty",
        "name": "source_priority",
        "tags": "accumulate",
        "spent": "accumulate",
        "mixed": "accumulate",
    },
    source_priority=["crm.c", "shop.c"],
)


def rec(key: str, minutes: int | None, stream: str = "crm.c", **data: Any) -> TraitRecord:
    when = None if minutes is None else T0 + timedelta(minutes=minutes)
    return (sort_key(when, stream, key), when, stream, data)


def values(traits: Traits) -> dict[str, Any]:
    return traits.values


def test_most_recent_skips_empty_values_and_undated_records_count_as_latest() -> None:
    doc = compute_traits([rec("1", 0, city="Köln"), rec("2", 5, city=""), rec("3", 2, city="Bonn")], RULES)
    assert values(doc) == {"city": "Bonn"}
    assert origin(doc.keys["city"]) == ("crm.c", T0 + timedelta(minutes=2))
    assert values(compute_traits([rec("1", 0, city="Köln"), rec("2", None, city="Ulm")], RULES)) == {"city": "Ulm"}


def test_oldest_keeps_the_first_known_value_even_when_empty() -> None:
    assert values(compute_traits([rec("1", 0, first=""), rec("2", 1, first="x")], RULES)) == {"first": ""}


def test_first_non_empty() -> None:
    assert values(
        compute_traits([rec("1", 0, signup=None), rec("2", 3, signup="b"), rec("3", 1, signup="a")], RULES)
    ) == {"signup": "a"}


def test_source_priority_then_most_recent() -> None:
    records = [
        rec("1", 0, "shop.c", name="Shop"),
        rec("2", 1, "crm.c", name="Crm old"),
        rec("3", 2, "crm.c", name="Crm"),
    ]
    records.append(rec("4", 3, "other.c", name="Other"))
    assert values(compute_traits(records, RULES)) == {"name": "Crm"}
    assert values(compute_traits([rec("1", 0, "other.c", name="O"), rec("2", 1, "shop.c", name="S")], RULES)) == {
        "name": "S"
    }


def test_accumulate_sorted_union_and_exact_sum() -> None:
    doc = compute_traits(
        [rec("1", 0, tags=["b", "a"], spent=0.1), rec("2", 1, tags="c", spent=0.2), rec("3", 2, tags=["a"])], RULES
    )
    assert values(doc) == {"tags": ["a", "b", "c"], "spent": sum_exact(0.1, 0.2)}
    assert values(compute_traits([rec("1", 0, spent=2), rec("2", 1, spent=3)], RULES)) == {"spent": 5}
    assert origin(doc.keys["tags"])[0] == "crm.c"


def sum_exact(*numbers: float) -> float:
    from fractions import Fraction

    return float(sum(Fraction(n) for n in numbers))


def test_nps_answers_outrank_record_fields_of_the_same_name() -> None:
    assert values(compute_traits([rec("1", 0, nps_score=7)], RULES)) == {"nps_score": 7}  # no answer yet
    answer = (sort_key(T0, "s.a", "1"), 3, "detractor", T0, "s.a")
    early = merge_traits(compute_traits([rec("1", 0, nps_score=7)], RULES), [], RULES, [answer])
    late = merge_traits(compute_traits([], RULES, [answer]), [rec("1", 9, nps_score=7)], RULES)
    assert early == late and early is not None and early.values == {"nps_score": 3, "nps_category": "detractor"}


def test_the_latest_answer_sets_score_and_category() -> None:
    answers = [
        (sort_key(T0, "s.a", "1"), 3, "detractor", T0, "s.a"),
        (sort_key(None, "s.a", "2"), 10, "promoter", None, "s.a"),
    ]
    doc = compute_traits([rec("1", 0, nps_score=7)], RULES, answers)
    assert values(doc) == {"nps_score": 3, "nps_category": "detractor"}  # an undated answer is the oldest


def test_numbers_then_a_list_cannot_be_extended() -> None:
    doc = compute_traits([rec("1", 0, mixed=1)], RULES)
    assert merge_traits(doc, [rec("2", 1, mixed=["x"])], RULES) is None
    assert values(compute_traits([rec("1", 0, mixed=1), rec("2", 1, mixed=["x"])], RULES)) == {
        "mixed": ["x", 1]
    }  # sorted by JSON text


def _random_records(rng: random.Random, count: int) -> list[TraitRecord]:
    out = []
    for i in range(count):
        data: dict[str, Any] = {}
        for name in ("city", "first", "signup", "name", "nps_score"):
            if rng.random() < 0.7:
                data[name] = rng.choice(["", None, "a", "b", "c", "Köln"])
        if rng.random() < 0.5:
            data["tags"] = rng.choice([[], ["x"], ["y", "x"], "z", [{"k": 1}]])
        if rng.random() < 0.5:
            data["spent"] = rng.choice([1, 2.5, 0.1, 0.7, 3])
        minutes = None if rng.random() < 0.1 else rng.randrange(100)
        out.append(rec(str(i), minutes, rng.choice(["crm.c", "shop.c", "web.c"]), **data))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_extending_a_document_equals_recomputing_it(seed: int) -> None:
    rng = random.Random(seed)
    records = _random_records(rng, rng.randrange(1, 30))
    answers = [
        (sort_key(w, "s.a", str(i)), s, "x", w, "s.a")
        for i, (s, w) in enumerate(
            (rng.randrange(11), None if rng.random() < 0.2 else T0 + timedelta(minutes=rng.randrange(100)))
            for _ in range(rng.randrange(4))
        )
    ]
    everything = compute_traits(records, RULES, answers)
    rng.shuffle(records)
    doc = Traits()
    start = 0
    while start < len(records):
        step = rng.randrange(1, 6)
        extended = merge_traits(doc, records[start : start + step], RULES, answers[start : start + step])
        assert extended is not None
        doc = extended
        start += step
    doc = merge_traits(doc, [], RULES, answers[start:]) or Traits()
    assert doc == everything
    assert Traits.load(doc.values, doc.sources()) == doc  # what the profile row keeps is enough


def test_origin_of_an_undated_record() -> None:
    assert origin(sort_key(None, "crm.c", "7")) == ("crm.c", None)


def test_sources_that_point_nowhere_mean_no_known_source() -> None:
    loaded = Traits.load({"a": 1, "b": 2, "c": 3}, {"r": ["~|crm.c|1"], "n": {"a": 0, "b": 5, "c": None}})
    assert loaded.keys == {"a": "~|crm.c|1"} and loaded.values == {"a": 1, "b": 2, "c": 3}
