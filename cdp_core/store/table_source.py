"""A history's tables as a module of SQLAlchemy Core ``Table`` objects, written as Python source.

A plugin declares its tables as SQLModel classes: the declaration its migrations are checked
against. Its code only ever builds Core statements from them, and importing SQLModel loads
SQLAlchemy's ORM with it, about 0.17 s of CPU that no query needs (bench/README.md, "CLI
start-up"). So the plugin generates from the classes a module of plain tables and queries those:
each column's name, type, key and nullability, which is all a statement needs (indexes and server
defaults live in the migrations). A test of the plugin compares the module with this function's
output, so a model changed without regenerating fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Column, types

from cdp_core.store.schema import History


@dataclass(frozen=True)
class GeneratedTables:
    """Where an owner's generated Core tables live and how they are made.

    :param history: the owner's migration history; its models are the declaration.
    :param target: the generated module's file.
    :param module: the generated module's dotted name, for the command that rewrites it.
    :param doc: the module's docstring (what the tables are).
    """

    history: History
    target: Path
    module: str
    doc: str

    @property
    def command(self) -> str:
        """What rewrites :attr:`target` (the generator module of the same package, run as a script)."""
        return f"python -m {self.module.rpartition('.')[0]}.generate_tables"

    def source(self) -> str:
        """What :attr:`target` should hold, from the models as they are now."""
        kernel = self.module.startswith("cdp_core.")
        return core_tables_source(self.history, doc=self.doc, command=self.command, kernel=kernel)

    def write(self) -> None:
        self.target.write_text(self.source(), encoding="utf-8")

    def stale(self) -> str | None:
        """None when :attr:`target` is current; else what to run (a test asserts it is None)."""
        if self.target.read_text(encoding="utf-8") == self.source():
            return None
        return f"{self.target.name} differs from the models: run `{self.command}` and commit it"


def core_tables_source(history: History, *, doc: str, command: str, kernel: bool = False) -> str:
    """The source of a module defining one Core ``Table`` per table of ``history``'s models.

    :param history: whose models (:attr:`History.model_modules`) to read.
    :param doc: the generated module's docstring (what the tables are), one paragraph.
    :param command: how to regenerate the module, for its header.
    :param kernel: the module is the kernel's own (its imports of ``cdp_core`` are first-party).
    """
    from sqlmodel import SQLModel

    history.import_models()
    imported: set[str] = {"MetaData", "Table", "Column"}
    bodies: list[str] = []
    for name in sorted(history.tables()):
        table = SQLModel.metadata.tables[name]
        columns = [_column(column, imported) for column in table.columns]
        body = "".join(f"    {c},\n" for c in columns)
        bodies.append(f'{name} = Table(\n    "{name}",\n    metadata,\n{body})\n')
    own = sorted(imported & {"UTCDateTime"})
    # isort's order (constants such as JSON first), so the module passes the import lint as it is
    plain = sorted(imported - set(own), key=lambda n: (not n.isupper(), n))
    head = [
        f'"""{doc}\n\nGenerated from the SQLModel classes by `{command}`: do not edit.\n"""\n',
        "from __future__ import annotations\n",
        _imports(plain, own, kernel),
        "metadata = MetaData()\n",
    ]
    return "\n".join(head) + "\n" + "\n".join(bodies)


def _imports(plain: list[str], own: list[str], kernel: bool) -> str:
    """isort's layout: in a plugin ``cdp_core`` is a third-party package like SQLAlchemy; in the kernel it is local."""
    ours = "".join(f"from cdp_core.store.coretypes import {n}\n" for n in own)
    theirs = f"from sqlalchemy import {', '.join(plain)}\n"
    return theirs + ("\n" + ours if ours else "") if kernel else ours + theirs


def _column(column: Column[Any], imported: set[str]) -> str:
    parts = [f'"{column.name}"', _type(column.type, imported)]
    if column.primary_key:
        parts.append("primary_key=True")
        if column.nullable:
            parts.append("nullable=True")
    elif not column.nullable:
        parts.append("nullable=False")
    return f"Column({', '.join(parts)})"


def _type(type_: types.TypeEngine[Any], imported: set[str]) -> str:
    from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

    if isinstance(type_, AutoString):
        imported.add("String")
        length = getattr(type_.impl_instance, "length", None)
        return f"String(length={length})" if length else "String()"
    if isinstance(type_, UTCDateTime):
        imported.add("UTCDateTime")
        return "UTCDateTime()"
    if isinstance(type_, types.TypeDecorator) or not type(type_).__module__.startswith("sqlalchemy."):
        raise TypeError(f"no Core rendering for the column type {type_!r}: add one to {__name__}")
    imported.add(type(type_).__name__)
    return repr(type_)
