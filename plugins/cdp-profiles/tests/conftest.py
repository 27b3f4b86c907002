"""The profile product's fixtures: the kit, and its store databases with the product's tables at head."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

pytest_plugins = ["cdp_core.testing", "cdp_core.testing.databases"]


@pytest.fixture
def store_engine(store_url: str) -> Iterator[Engine]:
    """An engine on ``store_url`` with the kernel's and the profile product's schema at head."""
    from cdp_core.store.engine import make_engine

    from cdp_profiles.store.schema import ensure_schema

    engine = make_engine(store_url)
    ensure_schema(engine)
    yield engine
    engine.dispose()
