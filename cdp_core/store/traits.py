"""Trait merge strategies: a profile's traits from the records that describe it.

Pure and order-free: records arrive sorted by their canonical sort key, so the
same records always give the same traits, whatever order they were loaded in.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from cdp_core.identity import TraitRules, TraitStrategy

TraitRecord = tuple[str, datetime | None, str, dict[str, Any]]
"""(sort key, occurred_at, stream, data)"""


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def compute_traits(records: list[TraitRecord], rules: TraitRules) -> dict[str, dict[str, Any]]:
    """trait name -> {"value", "source", "set_at"} under the configured strategies."""
    ordered = sorted(records, key=lambda r: r[0])
    names: dict[str, None] = {}
    for _, _, _, data in ordered:
        names.update(dict.fromkeys(data))
    rank = {stream: i for i, stream in enumerate(rules.source_priority)}
    traits: dict[str, dict[str, Any]] = {}
    for name in names:
        strategy = rules.strategies.get(name, rules.default)
        having = [(r, r[3][name]) for r in ordered if name in r[3]]
        non_empty = [(r, v) for r, v in having if not _empty(v)]
        chosen: tuple[TraitRecord, Any] | None
        if strategy is TraitStrategy.accumulate:
            if not non_empty:
                continue
            last = non_empty[-1][0]
            traits[name] = {"value": _accumulate([v for _, v in non_empty]), "source": last[2], "set_at": last[1]}
            continue
        if strategy is TraitStrategy.most_recent:
            chosen = non_empty[-1] if non_empty else None
        elif strategy is TraitStrategy.oldest:
            chosen = having[0] if having else None
        elif strategy is TraitStrategy.first_non_empty:
            chosen = non_empty[0] if non_empty else None
        else:  # source priority, ties by most recent
            chosen = min(
                reversed(non_empty), key=lambda rv: rank.get(rv[0][2], len(rank)), default=None
            )
        if chosen is not None:
            record, value = chosen
            traits[name] = {"value": value, "source": record[2], "set_at": record[1]}
    return traits


def _accumulate(values: list[Any]) -> Any:
    if all(_number(v) for v in values):
        return sum(values)
    seen: dict[str, Any] = {}
    for value in values:
        for item in value if isinstance(value, list) else [value]:
            seen.setdefault(json.dumps(item, sort_keys=True, default=str), item)
    return list(seen.values())
