"""Rules compiled to SQL: one set-based statement per question, the same answer on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select

from cdp_profiles.segments.rules import Rules


def members_query(rules: Rules, segment: str, dialect_name: str, now: datetime) -> Select[Any]:
    """``SELECT profile_id`` of the live profiles in ``segment`` at ``now``; one statement."""
    raise NotImplementedError


def where_query(rules: Rules, expression: str, dialect_name: str, now: datetime) -> Select[Any]:
    """Like :func:`members_query` for an ad-hoc rule (``cdp profiles list --where``); raises RulesError."""
    raise NotImplementedError


def computed_values_query(
    rules: Rules, names: Sequence[str] | None, dialect_name: str, now: datetime, profiles: Select[Any] | None = None
) -> Select[Any]:
    """Rows ``(profile_id, name, value)``: each computed trait of ``names`` (None: all) for every live profile.

    ``profiles`` (a select of one column of profile ids) limits it to those profiles.
    ``value`` is JSON text (``null``, ``3``, ``"DE"``, ``["a", "b"]``): :func:`decode_value` reads it.
    """
    raise NotImplementedError


def decode_value(text: str | None) -> Any:
    """A ``value`` of :func:`computed_values_query` as Python (None for SQL NULL or JSON null)."""
    raise NotImplementedError
