"""The conformance suite applied to the profile store destination (cdp_core.testing.conformance)."""

from __future__ import annotations

from pathlib import Path

from cdp_core.base import Destination
from cdp_core.store.engine import make_engine
from cdp_core.testing import DestinationConformance
from sqlalchemy import select

from cdp_profiles import plugin
from cdp_profiles.store import tables

# -- the profile store (commits the checkpoint in its own transaction) ---------------------------


class TestProfileStoreDestination(DestinationConformance):
    """Upserts by (stream, key) and commits cursor and quarantine with the batch."""

    plugin = plugin
    type_name = "profile_store"

    def read_back(self, destination: Destination, tmp_path: Path) -> list[str]:
        engine = make_engine(destination.context.store_url)
        try:
            index = tables.record_index
            with engine.connect() as conn:
                return [row.key for row in conn.execute(select(index.c.key))]
        finally:
            engine.dispose()
