"""Commands imported only when they run: ``cdp --help`` lists them from their one-line help.

A command registered as ``register("privacy", "cdp_profiles.cli.privacy:privacy_app", help="...")``
(a :class:`cdp_core.plugins.LazyCommand`) sits in the group as a placeholder that knows its
name and help. ``cdp --help`` shows the placeholder; ``cdp privacy ...`` imports the module,
builds the real command and hands it the arguments. A module that fails to import is one line
naming the command and its plugin, exit 1, not a traceback (docs/hooks.md, "Lazy commands").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup

from cdp_core.plugins import LazyCommand


@dataclass(frozen=True)
class LazyEntry:
    """A lazy command of the app: what to import, its help, and whose it is (``None``: the kernel's)."""

    command: LazyCommand
    plugin: str | None = None


class LazyGroup(TyperGroup):
    """The ``cdp`` group: its eager commands, then the lazy ones (:attr:`lazy`, set per app by :func:`lazy_group`)."""

    lazy: ClassVar[Mapping[str, LazyEntry]] = {}

    def list_commands(self, ctx: Any) -> list[str]:
        eager = super().list_commands(ctx)
        return eager + [name for name in self.lazy if name not in self.commands]

    def get_command(self, ctx: Any, cmd_name: str) -> TyperCommand | TyperGroup | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in self.lazy:
            return _Placeholder(cmd_name, self.lazy[cmd_name])
        return command  # type: ignore[return-value]  # typer's commands are its own click's


def lazy_group(entries: Mapping[str, LazyEntry]) -> type[LazyGroup]:
    """A :class:`LazyGroup` class holding ``entries`` (typer takes a group class, not an instance)."""
    return type("LazyGroup", (LazyGroup,), {"lazy": dict(entries)})


def lazy_entries(app: typer.Typer) -> dict[str, LazyEntry]:
    """The lazy commands of ``app`` (none unless it was made with ``cls=lazy_group(...)``)."""
    cls = app.info.cls
    if isinstance(cls, type) and issubclass(cls, LazyGroup):
        return dict(cls.lazy)
    return {}


def load_command(name: str, entry: LazyEntry) -> Any:
    """Import the command behind ``entry`` and build it as typer would have when registered eagerly."""
    obj = entry.command.load()
    if isinstance(obj, typer.Typer):
        group = typer.main.get_group(obj)
        group.name = name
        return group
    if not callable(obj):
        raise TypeError(f"{entry.command.target} is neither a typer.Typer nor a function")
    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    single.command(name)(obj)
    command = typer.main.get_command(single)
    command.name = name
    return command


class _Placeholder(TyperCommand):
    """Stands for a lazy command in the group: its help for listings; the real command on use."""

    def __init__(self, name: str, entry: LazyEntry) -> None:
        super().__init__(name, help=entry.command.help)
        self._entry = entry

    def _real(self) -> Any:
        try:
            return load_command(self.name or "", self._entry)
        except Exception as exc:  # noqa: BLE001 - a broken command module is one line, not a traceback
            from cdp_core.cli.common import EXIT_FAILED, stderr
            from cdp_core.plugins import short_error

            whose = f"of the plugin {self._entry.plugin!r}" if self._entry.plugin else "of cdp"
            stderr.print(
                f"error: the command {self.name!r} {whose} failed to load ({self._entry.command.target}): {short_error(exc)}",
                style="bold red",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
            raise typer.Exit(EXIT_FAILED) from None

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        return self._real().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: Any) -> Any:
        return self._real().invoke(ctx)
