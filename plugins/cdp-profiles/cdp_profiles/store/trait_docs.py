"""Reading a profile's traits: ``profiles.traits`` and ``profiles.trait_sources`` (docs/store.md).

``traits`` is a plain JSON object, trait name -> value. ``trait_sources`` says which
record decided each trait (cdp_profiles/store/traits.py): its sort key ``TIME|STREAM|KEY``
gives the trait's source stream and the time it was set. This module is the read side:
the traits in Python, and SQL expressions that pick one trait's value out of the
object on SQLite and PostgreSQL (for filters and aggregates that must not fetch every
profile's traits).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import case, func
from sqlalchemy.sql.elements import ColumnElement

from cdp_profiles.store.traits import Traits, origin


def trait_values(traits: Any) -> dict[str, Any]:
    """name -> value of every trait (None or ``{}``: no traits)."""
    return dict(traits or {})


def trait_entries(traits: Any, sources: Any) -> list[dict[str, Any]]:
    """Every trait as ``{"name", "value", "source", "set_at"}``, by name."""
    loaded = Traits.load(traits, sources)
    entries = []
    for name in sorted(loaded.values):
        source, set_at = origin(loaded.keys.get(name))
        entries.append({"name": name, "value": loaded.values[name], "source": source, "set_at": set_at})
    return entries


# -- SQL ------------------------------------------------------------------------------------
# One trait's value picked out of ``profiles.traits`` in SQL, for filters and aggregates that
# must not fetch every profile's traits. A name is always a bound parameter on PostgreSQL; on SQLite it
# is a quoted path label, so dots, spaces and brackets in a name are taken literally.


def _sqlite_value(doc: ColumnElement[Any], name: str) -> tuple[ColumnElement[Any], str]:
    """(JSON, path) such that ``json_extract(JSON, path)`` is the value of trait ``name`` on SQLite."""
    if '"' not in name:
        return doc, f'$."{name}"'
    # SQLite's path syntax cannot quote a double quote: find the entry among the object's keys
    # and wrap it as {"v": value} (json_each gives booleans as 1/0 and objects as text; its type says which)
    each = func.json_each(doc).table_valued("key", "value", "type")
    as_json = case(
        (each.c.type.in_(("true", "false", "null")), func.json(each.c.type)),
        (each.c.type.in_(("object", "array")), func.json(each.c.value)),
        else_=each.c.value,
    )
    return sa.select(func.json_object("v", as_json)).where(each.c.key == name).scalar_subquery(), "$.v"


sqlite_json_path = _sqlite_value
"""(JSON, path) such that ``json_extract(JSON, path)`` reads key ``name`` on SQLite, any name (segment rules use it)."""


def value_json(doc: ColumnElement[Any], name: str, dialect: str) -> ColumnElement[Any]:
    """The JSON text of trait ``name``'s value (``"Berlin"``, ``9``, ``true``, ``null``); NULL without that trait.

    ``json.loads`` gives the value back as it was written: strings, numbers,
    booleans, lists and objects. (SQLite's ``json_extract`` alone would give ``1``
    for ``true`` and a string unquoted: the value's ``json_type`` says which it was,
    and reals are written with 17 digits, which reads back as the same double.)
    """
    if dialect == "postgresql":
        return sa.cast(doc.op("->")(sa.cast(sa.literal(name), sa.Text)), sa.Text)
    json, path = _sqlite_value(doc, name)
    kind, value = func.json_type(json, path), func.json_extract(json, path)
    return case(
        (kind.in_(("true", "false", "null")), kind),
        (kind == "text", func.json_quote(value)),
        (kind == "real", func.printf("%!.17g", value)),
        else_=sa.cast(value, sa.Text),  # integer, object or array (their JSON text); NULL: no such trait
    )


def value_text(doc: ColumnElement[Any], name: str, dialect: str) -> ColumnElement[Any]:
    """Trait ``name``'s value as plain text: ``"Berlin"`` -> ``Berlin``, ``9`` -> ``9``, ``true`` -> ``true``.

    NULL when the trait is missing or null. Lists and objects give their JSON text.
    """
    if dialect == "postgresql":
        return doc.op("->>")(sa.cast(sa.literal(name), sa.Text))
    json, path = _sqlite_value(doc, name)
    kind = func.json_type(json, path)
    return case((kind.in_(("true", "false")), kind), else_=sa.cast(func.json_extract(json, path), sa.Text))
