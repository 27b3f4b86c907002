"""What every command shares: loading plugins and config, the consoles, exit codes, output."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from cdp_core.plugins import Plugins, Role, load_plugins

if TYPE_CHECKING:  # the store (SQLAlchemy, alembic) is imported by the commands that open it, not by `cdp --help`;
    # the config's pydantic models by the commands that load it
    from sqlalchemy import Engine

    from cdp_core.config import Config, ConfigError, ConfigIssue
    from cdp_core.store import SystemStore
    from cdp_core.store.schema import History

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
"""0 success; 1 a run failed, or the store cannot be used (missing for a read command, not a
database, a folder, locked, unreachable, of a newer release); 2 usage or config error."""

# Piped output is read by people too (CI logs, `| less`): don't squeeze tables into 80 columns.
stdout = Console(width=None if sys.stdout.isatty() else 200)
stderr = Console(stderr=True, width=None if sys.stderr.isatty() else 200)

ConfigOption = typer.Option(
    Path("connectors.toml"),
    "-c",
    "--config",
    envvar="CDP_CONFIG",
    help="The connectors.toml to use.",
    show_default=True,
)
JsonOption = typer.Option(False, "--json", help="Machine-readable output on stdout, nothing else.")


def setup_logging(level: str = "WARNING") -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_cdp", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._cdp = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(os.environ.get("CDP_LOG_LEVEL", level).upper())


def plugins() -> Plugins:
    return load_plugins()


def load(path: Path, loaded: Plugins | None = None, graphs: Collection[str] | None = ()) -> tuple[Config, Plugins]:
    """Load plugins and config; on a config error print every issue and exit 2.

    :param graphs: the graphs the command will run (``"*enabled"``: every enabled one).
        Read commands run none, so no connector secret is needed to read the store; None:
        every connector must load (a command that acts on every destination).
    """
    from cdp_core.config import ConfigError, load_config

    loaded = loaded or plugins()
    try:
        config = load_config(path, loaded, graphs=graphs)
    except ConfigError as exc:
        print_config_error(exc, stderr)
        raise typer.Exit(EXIT_USAGE) from None
    for handler in logging.getLogger().handlers:
        handler.addFilter(config.redact.filter())
    return config, loaded


READ_ROLES: tuple[Role, ...] = ("config_section", "migrations")
"""What a read command needs of the plugins: their sections' models and their tables' histories."""


def load_for_reading(path: Path, sections: Collection[str]) -> tuple[Config, Plugins]:
    """Load what a read command needs: ``[store]`` and the plugins' ``sections``, checked; exit 2 on a problem.

    Nothing else of connectors.toml is loaded or checked (``cdp validate`` checks the whole file):
    no connector, graph, source, transform or job module is imported, so a read starts fast and a
    problem in a part it does not read does not stop it (docs/hooks.md, "cdp_register_config_sections").
    """
    from cdp_core.config import ConfigError
    from cdp_core.readconfig import load_sections

    loaded = load_plugins(roles=READ_ROLES)
    try:
        config = load_sections(path, loaded, sections)
    except ConfigError as exc:
        print_config_error(exc, stderr)
        raise typer.Exit(EXIT_USAGE) from None
    for handler in logging.getLogger().handlers:
        handler.addFilter(config.redact.filter())
    return config, loaded


def open_store(
    config: Config,
    loaded: Plugins,
    *,
    create: bool,
    histories: Iterable[History] | None = None,
    missing_ok: bool = False,
) -> SystemStore:
    """The store of ``config`` for a command, or a one-line error and exit 1.

    :param create: True for commands that write (``sync``, ``scheduler run``): a missing
        store is made. False for read commands: a missing store is an error, nothing is created.
    :param histories: the migration histories to bring it to (default: every plugin's).
    :param missing_ok: a missing store reads as an empty one (an in-memory store, nothing written
        where the store would be): for ``cdp scheduler status``, whose schedules need no store.
    """
    from cdp_core.store import SystemStore, access

    try:
        engine = open_engine(config, loaded, create=create, histories=histories, quiet_missing=missing_ok)
    except access.StoreMissing:
        return SystemStore("sqlite://").create()
    return SystemStore(engine)


def open_engine(
    config: Config,
    loaded: Plugins,
    *,
    create: bool,
    histories: Iterable[History] | None = None,
    quiet_missing: bool = False,
) -> Engine:
    """The engine of :func:`open_store`, without the kernel's system tables (a read command's).

    :param quiet_missing: a missing store raises ``StoreMissing`` instead of ending the command.
    """
    from cdp_core.store import access

    try:
        return access.open_store(config.store_url, loaded.migrations if histories is None else histories, create=create)
    except access.StoreMissing as exc:
        if quiet_missing:
            raise
        fail(config.redact(str(exc)), EXIT_FAILED)
    except access.StoreUnavailable as exc:
        fail(config.redact(str(exc)), EXIT_FAILED)


@contextmanager
def store_errors(config: Config | None = None) -> Iterator[None]:
    """Turn a store failure inside the block (a query on a store gone bad) into a one-line error, exit 1."""
    try:
        yield
    except Exception as exc:
        if not is_store_error(exc):
            raise
        from cdp_core.store import access

        url = config.store_url if config is not None else ""
        message = access.describe_store_error(exc, url) if url else str(exc).splitlines()[0]
        fail(config.redact(message) if config is not None else message, EXIT_FAILED)


def is_store_error(exc: BaseException) -> bool:
    """A failure of the store (SQLAlchemy's, a schema or availability error), without importing the store.

    Only modules already imported are asked: an exception of a class never imported cannot be raised.
    """
    kinds: list[type] = []
    for module, name in (
        ("sqlalchemy.exc", "SQLAlchemyError"),
        ("cdp_core.store.schema", "SchemaError"),
        ("cdp_core.store.access", "StoreUnavailable"),
    ):
        found = getattr(sys.modules.get(module), name, None)
        if isinstance(found, type):
            kinds.append(found)
    return isinstance(exc, tuple(kinds))


def print_config_error(exc: ConfigError, console: Console) -> None:
    count = len(exc.issues)
    console.print(f"[bold red]{exc.file}: {count} problem{'s' if count != 1 else ''}[/]", highlight=False)
    for issue in exc.issues:
        console.print(f"  {issue.render(exc.file)}", highlight=False, markup=False)


def print_warnings(file: str, warnings: list[ConfigIssue]) -> None:
    """``warning: file:line: key: message`` on stderr, one per line."""
    for warning in warnings:
        stderr.print(f"warning: {warning.render(file)}", style="yellow", highlight=False, markup=False)


def emit_json(data: Any) -> None:
    # Plain print, not rich: scripts parse this and rich would wrap or colour it.
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    # The message is text ("[store]" stays) on one line, however long (soft_wrap: rich never breaks it)
    stderr.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)
