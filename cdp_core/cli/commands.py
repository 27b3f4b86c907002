"""Plugins' ``cdp`` commands: adding them to the app, and naming the plugin of a missing one."""

from __future__ import annotations

from collections.abc import Sequence

import pluggy
import typer

from cdp_core import hookspecs
from cdp_core.cli.lazy import LazyEntry, lazy_entries, lazy_group
from cdp_core.plugins import ENTRY_POINT_GROUP, LazyCommand, Plugins, Register, Registry


def add_plugin_commands(app: typer.Typer, loaded: Plugins) -> None:
    """Add every command the plugins registered; a name the kernel already uses is left out and logged.

    A command registered by name (``LazyCommand``) joins the app's lazy commands: listed, not imported.
    """
    taken = _command_names(app)
    lazy = lazy_entries(app)
    for reg in loaded.commands:
        if reg.type_name in taken:
            info = loaded.info.get(reg.plugin)
            if info is not None:
                info.status, info.error = "broken", f"command {reg.type_name!r} is the kernel's own; rename it"
            continue
        if isinstance(reg.cls, LazyCommand):
            lazy[reg.type_name] = LazyEntry(reg.cls, reg.plugin)
        elif isinstance(reg.cls, typer.Typer):
            app.add_typer(reg.cls, name=reg.type_name)
        else:
            app.command(reg.type_name)(reg.cls)
        taken.add(reg.type_name)
    if lazy:
        app.info.cls = lazy_group(lazy)


def missing_command_hint(app: typer.Typer, loaded: Plugins, argv: Sequence[str]) -> str | None:
    """When ``argv`` names no known command but a disabled or broken plugin would have provided it, say so."""
    name = next((a for a in argv if not a.startswith("-")), None)
    if name is None or name in _command_names(app):
        return None
    for info in loaded.info.values():
        if info.status == "disabled" and name in _commands_of_disabled(info.name):
            return (
                f"the command {name!r} is provided by the plugin {info.name!r} ({info.distribution or 'no distribution'}), "
                f"which is disabled by CDP_DISABLE_PLUGINS"
            )
    broken = [f"{p.name} ({p.error})" for p in loaded.broken]
    if broken:
        return f"no command {name!r}; it may belong to a plugin that failed to load: {'; '.join(broken)}"
    return None


def _command_names(app: typer.Typer) -> set[str]:
    names = {c.name or (c.callback.__name__.replace("_", "-") if c.callback else "") for c in app.registered_commands}
    names |= {g.name for g in app.registered_groups if g.name}
    return names | set(lazy_entries(app))


def _commands_of_disabled(plugin: str) -> set[str]:
    """The commands a disabled plugin would register: its entry point loaded into a scratch manager.

    Only asked when a command is missing, so a disabled plugin is imported only to name it.
    """
    from importlib import metadata

    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name != plugin:
            continue
        manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
        manager.add_hookspecs(hookspecs)
        try:
            manager.register(ep.load(), name=plugin)
            registry = Registry()
            manager.hook.cdp_register_commands(register=Register(registry, "command", plugin))
        except Exception:  # noqa: BLE001 - a plugin that cannot even be probed names nothing
            return set()
        return set(registry.names("command"))
    return set()
