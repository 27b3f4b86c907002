"""Rules evaluated in memory over one :class:`Person`: the same answers as the SQL, and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cdp_profiles.segments.person import Person
from cdp_profiles.segments.rules import Rules


@dataclass
class Explanation:
    """One condition of a rule: its text, its value for the person, whether it held, and its parts."""

    text: str
    value: Any
    held: bool
    children: list[Explanation] = field(default_factory=list)


def evaluate(rules: Rules, segment_or_expression: str, person: Person, now: datetime) -> Any:
    """A segment's membership (bool), a computed trait's value, or an ad-hoc expression's value."""
    raise NotImplementedError


def is_member(rules: Rules, segment: str, person: Person, now: datetime) -> bool:
    """Whether ``person`` is in ``segment`` at ``now``."""
    raise NotImplementedError


def explain(rules: Rules, segment_or_expression: str, person: Person, now: datetime) -> Explanation:
    """The tree of conditions of a segment (or expression) with their values for ``person``."""
    raise NotImplementedError
