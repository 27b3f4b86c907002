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

from cdp_profiles.segments.config import ComputedTraitConfig, ComputedTraitsConfig, SegmentConfig, SegmentsConfig, check_rules
from cdp_profiles.segments.memory import Explanation, evaluate, explain, is_member
from cdp_profiles.segments.person import Person, load_person
from cdp_profiles.segments.rules import Rules, RulesError, compile_rules, rules_from
from cdp_profiles.segments.sql import computed_values_query, decode_value, members_query, where_query

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
