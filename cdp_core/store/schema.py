"""Creating and upgrading the store's schema."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import SQLModel

from cdp_core.store import models, profile_models  # noqa: F401 - registers every table on the metadata


def create_schema(engine: Engine) -> None:
    """Bring the database to the current schema (idempotent)."""
    SQLModel.metadata.create_all(engine)
