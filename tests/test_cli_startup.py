"""What `cdp` imports to start: the shell and `--help` load no store, scheduler, HTTP or server machinery.

Not a benchmark (bench/README.md, "CLI start-up", has the timings): the modules a command
leaves in ``sys.modules`` are the cause of a slow start, and they do not depend on the load.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from cdp_core import PluginConfig, Register, hookimpl
from cdp_core.cli import build_app
from cdp_core.cli.app import KERNEL_COMMANDS
from cdp_core.cli.common import READ_ROLES
from cdp_core.cli.lazy import LazyEntry, lazy_entries, load_command
from cdp_core.plugins import BUILTIN_PLUGINS, LazyCommand, load_plugins
from cdp_core.readconfig import load_sections
from cdp_core.testing.imports import cdp_imports

HEAVY = ("sqlalchemy", "sqlmodel", "alembic", "numpy", "scipy", "httpx", "starlette", "uvicorn", "apscheduler")


def run_cdp(tmp_path: Path, *args: str) -> tuple[int, set[str], str]:
    """``cdp *args`` in a fresh interpreter (cdp_core.testing.imports): exit code, modules, output."""
    found = cdp_imports(tmp_path, *args)
    return found.code, found.modules, found.stdout


def heavy_in(modules: set[str], heavy: tuple[str, ...] = HEAVY) -> list[str]:
    return sorted(m for m in heavy if m in modules)


def test_help_imports_no_store_scheduler_http_or_server(tmp_path: Path) -> None:
    code, modules, out = run_cdp(tmp_path, "--help")
    assert code == 0
    assert heavy_in(modules) == []
    # nor pydantic: the kernel's models (cdp_core's re-exports, the config) are imported on first use
    assert (
        heavy_in(modules, ("pydantic", "cdp_core.base", "cdp_core.records", "cdp_core.config", "cdp_core.forget")) == []
    )
    # nor any command's module: the kernel's groups and the plugins' commands are listed, not imported
    commands = sorted(m for m in modules if m.startswith("cdp_core.cli.") or ".cli." in m or m.endswith(".cli"))
    assert commands == [
        "cdp_core.cli",
        "cdp_core.cli.app",
        "cdp_core.cli.commands",
        "cdp_core.cli.common",
        "cdp_core.cli.lazy",
    ]
    for name in ("validate", "sync", "runs", "plugins", *KERNEL_COMMANDS):
        assert f" {name} " in out, name


def test_validate_imports_no_migration_scheduler_or_server(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("id,email\n1,a@x.de\n")
    (tmp_path / "connectors.toml").write_text(
        '[store]\nurl = "sqlite:///cdp.sqlite"\n[connectors.f]\ntype = "csv"\n'
        '[connectors.f.streams.people]\npath = "in.csv"\nprimary_key = "id"\n'
    )
    code, modules, _ = run_cdp(tmp_path, "validate", "-c", "connectors.toml")
    assert code == 0
    assert heavy_in(modules, ("alembic", "numpy", "scipy", "starlette", "uvicorn")) == []


def test_a_kernel_command_still_runs(tmp_path: Path) -> None:
    code, modules, out = run_cdp(tmp_path, "new-plugin", "acme", "--dir", str(tmp_path))
    assert code == 0, out
    assert "cdp_core.cli.new_plugin" in modules and (tmp_path / "cdp-acme" / "pyproject.toml").exists()


def test_the_listed_help_of_each_lazy_command_is_its_own() -> None:
    """The one line `cdp --help` shows without importing a command is the help the command has."""
    app = build_app(load_plugins())
    entries = lazy_entries(app)
    assert set(KERNEL_COMMANDS) <= set(entries)
    for name, entry in entries.items():
        command = load_command(name, entry)
        assert command.help == entry.command.help, name


def test_the_builtins_register_no_commands() -> None:
    """So a command-only load (how `cdp` starts) leaves them unimported."""
    loaded = load_plugins(entry_points=False)
    assert {reg.plugin for reg in loaded.commands} & {name for name, _ in BUILTIN_PLUGINS} == set()
    light = load_plugins(entry_points=False, roles=("command",))
    assert not set(light.info) & {name for name, _ in BUILTIN_PLUGINS}


class LazyAcme:
    @hookimpl
    def cdp_register_commands(self, register: Register) -> None:
        register("acme-gone", "cdp_acme_not_installed.cli:app", help="A command whose module is missing.")
        register("acme-hello", "tests.test_cli_startup:hello", help="Say hello.")


def hello(name: str = typer.Option("acme", "--name")) -> None:
    """Say hello."""
    print(f"hello from {name}")


def test_a_lazy_command_is_listed_runs_and_a_missing_module_is_one_line_naming_the_plugin() -> None:
    app = build_app(load_plugins(entry_points=False, extra=[("acme", LazyAcme())]))
    listed = CliRunner().invoke(app, ["--help"])
    assert "acme-gone" in listed.output and "A command whose module is missing." in listed.output
    ran = CliRunner().invoke(app, ["acme-hello", "--name", "x"])
    assert (ran.exit_code, ran.output.strip()) == (0, "hello from x")
    gone = CliRunner().invoke(app, ["acme-gone", "list"])
    assert gone.exit_code == 1
    assert "Traceback" not in gone.output
    [line] = gone.output.strip().splitlines()
    assert line.startswith("error: the command 'acme-gone' of the plugin 'acme' failed to load")
    assert "ModuleNotFoundError" in line


@pytest.mark.parametrize(
    ("target", "help_", "error"),
    [
        ("no colon", "x", "must be 'module:attribute'"),
        ("mod:attr", "", "needs help="),
    ],
)
def test_a_lazy_command_needs_a_target_and_help(target: str, help_: str, error: str) -> None:
    class Bad:
        @hookimpl
        def cdp_register_commands(self, register: Register) -> None:
            register("bad", target, help=help_)

    plugins = load_plugins(entry_points=False, extra=[("bad", Bad())])
    assert plugins.info["bad"].status == "broken"
    assert error in (plugins.info["bad"].error or "")


def test_a_lazy_entry_builds_the_command_typer_would() -> None:
    group = load_command("state", KERNEL_COMMANDS["state"])
    assert isinstance(group, TyperGroup) and {"show", "set", "reset"} <= set(group.commands)
    single = load_command("acme-hello", LazyEntry(LazyCommand("tests.test_cli_startup:hello", "Say hello.")))
    assert single.name == "acme-hello" and not isinstance(single, TyperGroup)


class LazySections:
    @hookimpl
    def cdp_register_config_sections(self, register: Register) -> None:
        register("acme", "tests.test_cli_startup:AcmeSettings")
        register("acme_gone", "cdp_acme_not_installed.settings:Settings")


class AcmeSettings(PluginConfig):
    region: str = "eu"


def test_a_section_registered_by_name_is_imported_when_read_and_a_missing_one_breaks_its_plugin(tmp_path: Path) -> None:
    loaded = load_plugins(entry_points=False, roles=READ_ROLES, extra=[("acme", LazySections())])
    assert not set(loaded.info) & {name for name, _ in BUILTIN_PLUGINS}  # a read loads no builtin source or transform
    assert loaded.info["acme"].status == "ok"  # nothing imported yet
    (tmp_path / "c.toml").write_text(
        '[store]\nurl = "sqlite:///x.sqlite"\n[acme]\nregion = "us"\n[connectors.x]\ntype = "nope"\n'
    )
    config = load_sections(tmp_path / "c.toml", loaded, ["acme"])
    assert config.sections["acme"].model_dump() == {
        "region": "us"
    }  # and the unknown connector type is not its business
    assert loaded.info["acme"].status == "ok"
    assert set(loaded.sections) == {"acme"}  # every model: the missing one puts its plugin out
    assert loaded.info["acme"].status == "broken" and "ModuleNotFoundError" in (loaded.info["acme"].error or "")
    full = load_plugins(
        entry_points=False, extra=[("acme", LazySections())]
    )  # as `cdp plugins` and `cdp validate` load
    assert full.info["acme"].status == "broken" and "acme_gone" in (full.info["acme"].error or "")
