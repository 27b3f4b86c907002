"""Segments and computed traits: one rule language, compiled to SQL and evaluated in memory (docs/segments.md).

The language is the kernel's expression language (cdp_core/transforms/expressions.py)
read with the profile's names: traits, computed traits, ``identifiers.TYPE``,
``consent('ads')``, ``has_consent('ads')``, ``in_segment('promoters')`` and aggregates
over a person's events, orders and NPS answers (``count(orders, days = 90) >= 2``).

- :func:`rules_from` compiles the ``[computed_traits.NAME]`` and ``[segments.NAME]``
  sections (with the ``[consent]`` purposes) into :class:`Rules`;
- :func:`members_query`, :func:`where_query` and :func:`computed_values_query` are one
  set-based SQL statement each, the same answer on SQLite and PostgreSQL;
- :func:`evaluate` and :func:`explain` read one person's plain data
  (:class:`Person`, loaded by :func:`load_person`) and give the same answers, with why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdp_core.exports import lazy_exports

if TYPE_CHECKING:
    from cdp_profiles.segments.config import (
        ComputedTraitConfig,
        ComputedTraitsConfig,
        SegmentConfig,
        SegmentsConfig,
        check_rules,
    )
    from cdp_profiles.segments.memory import Explanation, evaluate, explain, is_member
    from cdp_profiles.segments.person import Person, load_person
    from cdp_profiles.segments.rules import Rules, RulesError, compile_rules, rules_from
    from cdp_profiles.segments.sql import computed_values_query, decode_value, members_query, where_query

_EXPORTS = {
    **dict.fromkeys(
        ("ComputedTraitConfig", "ComputedTraitsConfig", "SegmentConfig", "SegmentsConfig", "check_rules"),
        "cdp_profiles.segments.config",
    ),
    **dict.fromkeys(("Explanation", "evaluate", "explain", "is_member"), "cdp_profiles.segments.memory"),
    **dict.fromkeys(("Person", "load_person"), "cdp_profiles.segments.person"),
    **dict.fromkeys(("Rules", "RulesError", "compile_rules", "rules_from"), "cdp_profiles.segments.rules"),
    **dict.fromkeys(
        ("computed_values_query", "decode_value", "members_query", "where_query"), "cdp_profiles.segments.sql"
    ),
}
# Imported on first use: `cdp profiles show` reads the clock (segments.clock), not the rule language.
__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "ComputedTraitConfig",
    "ComputedTraitsConfig",
    "Explanation",
    "Person",
    "Rules",
    "RulesError",
    "SegmentConfig",
    "SegmentsConfig",
    "check_rules",
    "compile_rules",
    "computed_values_query",
    "decode_value",
    "evaluate",
    "explain",
    "is_member",
    "load_person",
    "members_query",
    "rules_from",
    "where_query",
]
