"""The SQLAlchemy ``Table`` behind a SQLModel table class, typed."""

from __future__ import annotations

from sqlalchemy import Table
from sqlmodel import SQLModel


def table_of(model: type[SQLModel]) -> Table:
    """``model.__table__``, which SQLModel sets on every ``table=True`` class but its type hints do not declare."""
    return model.__table__  # type: ignore[attr-defined]  # SQLModel's hints lack __table__
