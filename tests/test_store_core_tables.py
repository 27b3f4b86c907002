"""Core tables generated from SQLModel classes (cdp_core/store/table_source.py) and their ``UTCDateTime``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, types
from sqlalchemy.exc import StatementError
from sqlmodel.sql.sqltypes import UTCDateTime as ModelUTCDateTime

from cdp_core.store.coretypes import UTCDateTime
from cdp_core.store.engine import make_engine
from cdp_core.store.schema import KERNEL
from cdp_core.store.table_source import _type, core_tables_source


def _table(metadata: MetaData, type_: types.TypeEngine[datetime]) -> Table:
    return Table("times", metadata, Column("id", Integer, primary_key=True), Column("at", type_))


def test_utc_datetime_stores_and_reads_what_sqlmodels_type_does(store_url: str) -> None:
    """Written by the model's type, read by ours and the other way round: the same instants, aware, in UTC."""
    engine = make_engine(store_url)
    ours, theirs = _table(MetaData(), UTCDateTime()), _table(MetaData(), ModelUTCDateTime())
    ours.metadata.create_all(engine)
    berlin = timezone(timedelta(hours=1))
    written = [datetime(2024, 3, 1, 12, 30, tzinfo=berlin), datetime(2024, 7, 1, tzinfo=UTC)]
    try:
        with engine.begin() as conn:
            conn.execute(insert(ours), [{"id": 1, "at": written[0]}, {"id": 3, "at": None}])
            conn.execute(insert(theirs), [{"id": 2, "at": written[1]}])
        with engine.connect() as conn:
            by_ours = conn.execute(select(ours.c.at).order_by(ours.c.id)).scalars().all()
            by_theirs = conn.execute(select(theirs.c.at).order_by(theirs.c.id)).scalars().all()
            later = conn.execute(select(ours.c.id).where(ours.c.at > written[1] - timedelta(days=200))).scalars().all()
    finally:
        engine.dispose()
    assert by_ours == by_theirs == [written[0], written[1], None]
    assert all(v is None or v.tzinfo is UTC for v in by_ours)
    assert sorted(later) == [1, 2]  # a comparison with an aware value and an interval binds through the type


def test_utc_datetime_refuses_a_naive_value(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'naive.sqlite'}")
    table = _table(MetaData(), UTCDateTime())
    table.metadata.create_all(engine)
    with pytest.raises(StatementError, match="naive datetime"), engine.begin() as conn:
        conn.execute(insert(table), [{"id": 1, "at": datetime(2024, 3, 1, 12, 30)}])
    engine.dispose()


def test_the_kernels_tables_render_to_a_module_of_the_same_tables() -> None:
    """Any history's models render; the module, run, defines each table with the models' columns."""
    from sqlmodel import SQLModel

    source = core_tables_source(KERNEL, doc="The kernel's tables.", command="a test")
    namespace: dict[str, object] = {}
    exec(compile(source, "<generated>", "exec"), namespace)  # noqa: S102 - the renderer's own output
    generated = namespace["metadata"]
    assert isinstance(generated, MetaData)
    assert set(generated.tables) == set(KERNEL.tables()) and KERNEL.tables()
    for name, table in generated.tables.items():
        model = SQLModel.metadata.tables[name]
        assert [c.name for c in table.columns] == [c.name for c in model.columns]
        for mine, theirs in zip(table.columns, model.columns, strict=True):
            assert (mine.primary_key, mine.nullable) == (theirs.primary_key, theirs.nullable), (name, mine.name)
            assert mine.type.compile() == theirs.type.compile(), (name, mine.name)


def test_a_type_without_a_core_rendering_is_an_error_not_a_guess() -> None:
    class Odd(types.TypeDecorator[str]):
        impl = types.String
        cache_ok = True

    with pytest.raises(TypeError, match="no Core rendering"):
        _type(Odd(), set())


def test_the_kernels_core_tables_are_generated_from_the_current_models() -> None:
    from cdp_core.store.generate_tables import TABLES

    assert TABLES.stale() is None, TABLES.stale()
