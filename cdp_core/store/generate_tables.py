"""The kernel's Core tables (cdp_core/store/system_tables.py), generated from its table models.

Run ``python -m cdp_core.store.generate_tables`` after changing a model (``models.py``,
``lease_models.py``, ``ingest_models.py``) and commit both; tests/test_store_core_tables.py fails
while the two differ.
"""

from __future__ import annotations

from pathlib import Path

from cdp_core.store.schema import KERNEL
from cdp_core.store.table_source import GeneratedTables

TABLES = GeneratedTables(
    history=KERNEL,
    target=Path(__file__).with_name("system_tables.py"),
    module="cdp_core.store.system_tables",
    doc="""The kernel's system tables as SQLAlchemy Core ``Table`` objects: what its code queries and writes.

The tables are declared as SQLModel classes (``models``, ``lease_models``, ``ingest_models``), which the
migrations are checked against; every other module uses these, so a command loads neither SQLModel nor
SQLAlchemy's ORM (cdp_core/store/table_source.py says why). Each column has its name, type, key and
nullability; indexes and server defaults are in the migrations.""",
)

if __name__ == "__main__":
    TABLES.write()
