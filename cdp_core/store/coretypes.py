"""Column types for the store's SQLAlchemy Core tables, importable without SQLModel.

SQLModel gives a ``datetime`` field the type ``UTCDateTime`` and a ``str`` field ``AutoString``.
Importing either loads SQLModel and with it SQLAlchemy's ORM: about 0.17 s of CPU that a read
command does not need (bench/README.md, "CLI start-up"). The Core tables generated from the
models (cdp_core/store/table_source.py) use these instead: the same database types, the same
values in and out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import types
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql.operators import OperatorType


class UTCDateTime(types.TypeDecorator[datetime]):
    """A timezone-aware timestamp: written as UTC, read back aware in UTC.

    SQLite keeps no offset, so a value read from it is naive and taken as UTC; a naive value
    written is an error (it would be stored as whatever zone the caller meant). The contract of
    SQLModel's type of the same name, which the models declare.
    """

    impl = types.DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def coerce_compared_value(self, op: OperatorType | None, value: Any) -> types.TypeEngine[Any]:
        # `at > now() - interval`: the right side is an interval, not a timestamp to convert
        return types.Interval() if isinstance(value, timedelta) else self

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"a naive datetime for a timezone-aware column: {value!r}")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)
