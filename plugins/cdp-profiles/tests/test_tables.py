"""cdp_profiles/store/tables.py is generated from the table models: a model changed without regenerating fails here."""

from __future__ import annotations

from cdp_profiles.store import tables
from cdp_profiles.store.generate_tables import TABLES


def test_the_core_tables_are_generated_from_the_current_models() -> None:
    assert TABLES.stale() is None, TABLES.stale()


def test_every_table_of_the_product_is_there() -> None:
    from cdp_profiles.store.schema import PROFILES

    assert set(tables.metadata.tables) == set(PROFILES.tables())
