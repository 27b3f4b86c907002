"""The product's Core tables (cdp_profiles/store/tables.py), generated from its table models.

Run ``python -m cdp_profiles.store.generate_tables`` after changing a model (``*_models.py``) and
commit both; tests/test_tables.py fails while the two differ.
"""

from __future__ import annotations

from pathlib import Path

from cdp_core.store.table_source import GeneratedTables

from cdp_profiles.store.schema import PROFILES

TABLES = GeneratedTables(
    history=PROFILES,
    target=Path(__file__).with_name("tables.py"),
    module="cdp_profiles.store.tables",
    doc="""The profile product's tables as SQLAlchemy Core ``Table`` objects: what its code queries and writes.

The tables are declared as SQLModel classes (``profile_models``, ``segment_models``, ``privacy_models``,
``audience_models``), which the migrations are checked against; every other module uses these, so a
command loads neither SQLModel nor SQLAlchemy's ORM (cdp_core/store/table_source.py says why). Each
column has its name, type, key and nullability; indexes and server defaults are in the migrations.""",
)

if __name__ == "__main__":
    TABLES.write()
