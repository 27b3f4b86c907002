"""Trait merge strategies: a profile's traits, from the records that describe it.

A profile row keeps its traits in two JSON columns:

- ``traits``: ``{name: value}``, plain, for anyone reading the store;
- ``trait_sources``: which record decided each trait, ``{"r": [sort key, ...], "n": {name: index
  into r}}``, plus ``"x": {name: exact sum}`` for numeric ``accumulate`` traits. A sort key is
  ``TIME|STREAM|KEY`` (cdp_profiles/store/replay.py), so it gives the trait's source stream and the
  time it was set (``~`` for a record without a time) without repeating them per trait.

That state is what lets new records extend a profile's traits without reading its old
records back: :func:`merge_traits` of a state and records it has not seen gives what
:func:`compute_traits` over all of them gives, because every strategy is a choice by
sort key (or source rank, then sort key) or an order-free aggregate (a sorted union,
an exact sum). A record seen before (a re-delivery with new data) cannot be merged: its
old values may be the ones chosen; the caller recomputes from every record then.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Any

from cdp_profiles.identity import TraitRules, TraitStrategy
from cdp_profiles.store import sortkey

TraitRecord = tuple[str, datetime | None, str, dict[str, Any]]
"""(sort key, occurred_at, stream, data)"""
NpsAnswer = tuple[str, int, str, datetime | None, str]
"""(sort key, score, category, answered_at, stream)"""

NPS_TRAITS = ("nps_score", "nps_category")
"""Set from the person's latest NPS answer; record fields of these names count only while there is none."""

_MOST_RECENT = TraitStrategy.most_recent
_OLDEST = TraitStrategy.oldest
_FIRST_NON_EMPTY = TraitStrategy.first_non_empty
_SOURCE_PRIORITY = TraitStrategy.source_priority


@dataclass
class Traits:
    """A profile's traits and, per trait, the sort key of the record that decided it."""

    values: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    exact: dict[str, str] = field(default_factory=dict)
    """Numeric ``accumulate`` traits: the exact sum as a fraction ("7/2"), so adding stays exact."""
    answered: bool = False
    """The NPS traits come from an answer (which outranks any record field of their names)."""

    def sources(self) -> dict[str, Any]:
        """The ``trait_sources`` column."""
        refs: dict[str, int] = {}
        names = {name: refs.setdefault(key, len(refs)) for name, key in self.keys.items()}
        out: dict[str, Any] = {"r": list(refs), "n": names}
        if self.exact:
            out["x"] = self.exact
        if self.answered:
            out["a"] = True
        return out

    @classmethod
    def load(cls, values: Any, sources: Any) -> Traits:
        sources = sources or {}
        refs = sources.get("r") or []
        # "n" gives an index into "r"; a store migrated from the traits table gives the key itself
        keys = {}
        for name, ref in (sources.get("n") or {}).items():
            key = refs[ref] if isinstance(ref, int) and 0 <= ref < len(refs) else ref
            if isinstance(key, str):
                keys[name] = key  # anything else (a hand-edited row): no known source, recomputed on the next change
        return cls(dict(values or {}), keys, dict(sources.get("x") or {}), bool(sources.get("a")))


def record_traits(row: dict[str, Any]) -> dict[str, Any]:
    """The traits a stored profile record gives: its stream's mapping applied when it arrived
    (``traits``), or, for a stream without a mapping, every field of its data."""
    traits = row.get("traits")
    return row["data"] if traits is None else traits


def origin(key: str | None) -> tuple[str | None, datetime | None]:
    """(source stream, set_at) from a deciding record's sort key."""
    if not key:
        return None, None
    parts = sortkey.decode(key)
    return parts.stream or None, parts.when


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def later(a: str, b: str) -> bool:
    """Is sort key ``a`` later than ``b``? Records without a time ('~') count as oldest for 'latest answer'."""
    if a.startswith("~") != b.startswith("~"):
        return b.startswith("~")
    return a > b


def compute_traits(records: Iterable[TraitRecord], rules: TraitRules, answers: Iterable[NpsAnswer] = ()) -> Traits:
    """The traits from all of a profile's records and NPS answers."""
    traits = merge_traits(Traits(), records, rules, answers)
    assert traits is not None  # empty traits can always be extended
    return traits


def merge_traits(
    traits: Traits, records: Iterable[TraitRecord], rules: TraitRules, answers: Iterable[NpsAnswer] = ()
) -> Traits | None:
    """``traits`` extended by records (and answers) it has not seen; None when only a recompute can tell.

    ``traits`` is not changed.
    """
    values = dict(traits.values)
    keys = dict(traits.keys)
    strategies = rules.strategies
    default = rules.default
    rank: dict[str, int] | None = None
    pending: dict[str, list[tuple[str, Any]]] = {}
    answered = traits.answered
    for key, _when, stream, data in records:
        for name, value in data.items():
            strategy = strategies.get(name, default)
            current = keys.get(name)
            if strategy is _MOST_RECENT:
                if (current is not None and key <= current) or _empty(value):
                    continue
            elif strategy is _OLDEST:
                if current is not None and key >= current:
                    continue
            elif strategy is _FIRST_NON_EMPTY:
                if (current is not None and key >= current) or _empty(value):
                    continue
            elif strategy is _SOURCE_PRIORITY:
                if _empty(value):
                    continue
                if current is not None:
                    if rank is None:
                        rank = {s: i for i, s in enumerate(rules.source_priority)}
                    theirs = rank.get(sortkey.stream_of(current), len(rank))
                    mine = rank.get(stream, len(rank))
                    if mine > theirs or (mine == theirs and key <= current):
                        continue
            else:  # accumulate: needs every new value at once
                if not _empty(value):
                    pending.setdefault(name, []).append((key, value))
                continue
            if answered and name in NPS_TRAITS:
                continue
            values[name] = value
            keys[name] = key
    exact = dict(traits.exact) if pending else traits.exact
    for name, items in pending.items():
        if answered and name in NPS_TRAITS:
            continue
        result = _accumulated(values.get(name), keys.get(name), exact.get(name), items)
        if result is None:
            return None
        values[name], keys[name], total = result
        if total is None:
            exact.pop(name, None)
        else:
            exact[name] = total
    for key, score, category, _when, _stream in answers:
        if not answered or later(key, keys["nps_score"]):
            values["nps_score"], values["nps_category"] = score, category
            keys["nps_score"] = keys["nps_category"] = key
            answered = True
    return Traits(values, keys, exact, answered)


def _accumulated(
    value: Any, key: str | None, total: str | None, items: list[tuple[str, Any]]
) -> tuple[Any, str, str | None] | None:
    """Lists: the sorted union of every item; numbers: the exact sum. None: cannot extend, recompute.

    Returns (value, deciding key: the latest contributing record, exact sum or None).
    """
    last = max(k for k, _ in items)
    if key is not None and key > last:
        last = key
    new = [v for _, v in items]
    numeric = all(_number(v) for v in new)
    if key is None or total is not None:
        if numeric:
            exact = sum((Fraction(v) for v in new), Fraction(total) if total is not None else Fraction(0))
            floats = isinstance(value, float) or any(isinstance(v, float) for v in new)
            return (float(exact) if floats else int(exact)), last, str(exact)
        if key is not None:
            return None  # numbers so far, now something else: the union needs the old values
        return _union([], new), last, None
    return _union(value if isinstance(value, list) else [value], new), last, None


def _union(items: list[Any], values: list[Any]) -> list[Any]:
    seen = {_canonical(item): item for item in items}
    for value in values:
        for item in value if isinstance(value, list) else [value]:
            seen.setdefault(_canonical(item), item)
    return [seen[k] for k in sorted(seen)]


def _canonical(item: Any) -> str:
    return json.dumps(item, sort_keys=True, ensure_ascii=False, default=str)
