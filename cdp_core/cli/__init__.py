"""The ``cdp`` command line (typer + rich). Exit codes: 0 success, 1 run failed, 2 usage or config error.

The kernel's commands live on :data:`app`; a plugin adds its own through
``cdp_register_commands``. :func:`main` loads the plugins once, adds their commands,
and runs the app; a command a disabled or broken plugin would have provided gets a
message that names the plugin instead of "No such command".
"""

from __future__ import annotations

import sys

import typer

from cdp_core.cli import common
from cdp_core.cli.app import app
from cdp_core.cli.commands import add_plugin_commands, missing_command_hint
from cdp_core.cli.lazy import lazy_entries, lazy_group
from cdp_core.plugins import Plugins, load_plugins


def build_app(loaded: Plugins | None = None) -> typer.Typer:
    """A fresh ``cdp`` app: the kernel's commands and those of the plugins in ``loaded`` (default: all)."""
    loaded = loaded or common.plugins()
    fresh = typer.Typer(
        name=app.info.name,
        help=app.info.help,
        cls=lazy_group(lazy_entries(app)),
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    fresh.registered_callback = app.registered_callback
    fresh.registered_commands = list(app.registered_commands)
    fresh.registered_groups = list(app.registered_groups)
    add_plugin_commands(fresh, loaded)
    return fresh


def main() -> None:
    # Only the plugins' commands: their sources, histories and jobs are loaded by the command that runs
    # (`cdp --help` imports no store, scheduler or HTTP machinery; docs/hooks.md, "Lazy commands").
    loaded = load_plugins(roles=("command",))
    cli = build_app(loaded)
    hint = missing_command_hint(cli, loaded, sys.argv[1:])
    if hint is not None:
        common.stderr.print(f"[bold red]error:[/] {hint}", highlight=False)
        sys.exit(common.EXIT_USAGE)
    try:
        cli()
    except Exception as exc:
        # The last line of defence: a store that failed where no command expected it is one line, not a traceback.
        if not common.is_store_error(exc):
            raise
        from sqlalchemy.exc import SQLAlchemyError

        from cdp_core.store.access import describe_store_error

        message = describe_store_error(exc, "") if isinstance(exc, SQLAlchemyError) else str(exc)
        common.stderr.print(f"error: {message}", style="bold red", highlight=False, markup=False, soft_wrap=True)
        sys.exit(common.EXIT_FAILED)


__all__ = ["app", "build_app", "main"]
