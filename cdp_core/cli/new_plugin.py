"""`cdp new-plugin NAME`: scaffold a plugin distribution whose tests pass as generated.

The files come from ``cdp_core/templates/plugin`` (shipped as package data):
``{{key}}`` placeholders are filled in (in contents and file names), a ``.tmpl``
suffix is dropped and the folder ``package`` becomes the plugin's module. Test
files carry the plugin's name, so one pytest over several plugins collects them all.
"""

from __future__ import annotations

import re
import shutil
import uuid
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import typer

from cdp_core.cli import common
from cdp_core.cli.common import stdout
from cdp_core.plugins import load_plugins

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
TEMPLATE_SUFFIX = ".tmpl"


class ScaffoldError(Exception):
    """The plugin cannot be scaffolded (bad name, folder exists, type name taken)."""


def names_for(name: str) -> dict[str, str]:
    """The values of the template placeholders for plugin ``name`` (``meta-leads``)."""
    snake = name.replace("-", "_")
    words = name.split("-")
    return {
        "name": name,  # meta-leads: the entry point and the connector in examples
        "dist": f"cdp-{name}",  # cdp-meta-leads: the distribution and its folder
        "module": f"cdp_{snake}",  # cdp_meta_leads
        "type_name": snake,  # meta_leads: the type in connectors.toml
        "Class": "".join(w.capitalize() for w in words),  # MetaLeads
        "Title": " ".join(w.capitalize() for w in words),  # Meta Leads
        "ENV": snake.upper(),  # META_LEADS
    }


def check_name(name: str, *, declarative: bool = False) -> None:
    if not NAME_PATTERN.fullmatch(name):
        raise ScaffoldError(
            f"invalid plugin name {name!r}: use lowercase letters, digits and single hyphens, "
            "starting with a letter (e.g. acme, meta-leads)"
        )
    if name.startswith("cdp-") or name == "cdp":
        raise ScaffoldError(
            f"give the plugin's short name ({name.removeprefix('cdp-')!r}); the distribution is cdp-NAME"
        )
    if declarative:
        return  # a connector's name, not a plugin type: nothing to collide with
    type_name = names_for(name)["type_name"]
    registry = load_plugins(disabled=set()).registry  # the builtins and every installed plugin
    taken = [reg.plugin for reg in registry.roles_of(type_name)]
    taken += [owner for (_, name_), owners in registry.conflicts.items() if name_ == type_name for owner in owners]
    if taken:
        raise ScaffoldError(f"type name {type_name!r} is already registered by {', '.join(sorted(set(taken)))}")


def render(text: str, values: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"template placeholder {{{{{key}}}}} has no value")
        return values[key]

    return _PLACEHOLDER.sub(fill, text)


def template_root(kind: str = "plugin") -> Traversable:
    root = resources.files("cdp_core").joinpath("templates", kind)
    if not root.is_dir():
        raise ScaffoldError(f"the plugin template is missing from the installed cdp_core ({root})")
    return root


def _write_tree(source: Traversable, target: Path, values: dict[str, str]) -> list[Path]:
    written: list[Path] = []
    for entry in sorted(source.iterdir(), key=lambda e: e.name):
        if entry.name == "__pycache__":
            continue
        name = values["module"] if entry.is_dir() and entry.name == "package" else entry.name
        if entry.is_dir():
            (target / name).mkdir()
            written += _write_tree(entry, target / name, values)
        else:
            path = target / render(name, values).removesuffix(TEMPLATE_SUFFIX)
            path.write_text(render(entry.read_text(encoding="utf-8"), values), encoding="utf-8")
            written.append(path)
    return written


def scaffold(name: str, directory: Path, *, declarative: bool = False) -> tuple[Path, list[Path]]:
    """Write ``directory/cdp-NAME`` (declarative: ``directory/NAME``, a connectors.toml and its test);
    return the folder and the files written (relative to it)."""
    check_name(name, declarative=declarative)
    values = names_for(name)
    folder = directory / (name if declarative else values["dist"])
    if folder.exists():
        raise ScaffoldError(f"{folder} already exists: choose another name or remove it")
    directory.mkdir(parents=True, exist_ok=True)
    staging = directory / f".{values['dist']}.{uuid.uuid4().hex[:8]}.tmp"
    staging.mkdir()  # as the user's umask says, unlike mkdtemp's 0700
    try:
        files = _write_tree(template_root("declarative" if declarative else "plugin"), staging, values)
        staging.rename(folder)  # all or nothing: never a half-written plugin
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder, [f.relative_to(staging) for f in files]


NameArgument = typer.Argument(
    ..., metavar="NAME", help="The plugin's short name: lowercase letters, digits, hyphens (acme)."
)
DirOption = typer.Option(Path("plugins"), "--dir", help="Where to create cdp-NAME/ (with --declarative: NAME/).")
DeclarativeOption = typer.Option(
    False, "--declarative", help='A connector without code: a type = "rest" connectors.toml and its test.'
)


def new_plugin(name: str = NameArgument, directory: Path = DirOption, declarative: bool = DeclarativeOption) -> None:
    """Scaffold a plugin distribution cdp-NAME (pyproject, a source skeleton, tests), or with --declarative a
    config-only REST connector (connectors.toml and a test running the conformance suite on it)."""
    try:
        folder, files = scaffold(name, directory, declarative=declarative)
    except ScaffoldError as exc:
        common.fail(str(exc))
    values = names_for(name)
    stdout.print(f"[green]created[/] {folder}/", highlight=False)
    for file in files:
        stdout.print(f"  {file}", highlight=False, markup=False)
    if declarative:
        stdout.print(
            f"\nNext steps:\n  cd {folder} && pytest tests   (the generated test passes as it is)\n"
            f"  change connectors.toml and the test's fake to your vendor's API (docs/rest-source.md),\n"
            f"  then copy the [connectors.{values['type_name']}...] tables into your connectors.toml and `cdp validate`.",
            highlight=False,
            markup=False,
        )
        return
    stdout.print(
        "\nNext steps:\n"
        f"  pip install -e '{folder}[dev]'   (in cdp's repo, `make test` installs every plugins/*/)\n"
        f"  cd {folder} && pytest   (the generated tests pass as they are)\n"
        f"  cdp plugins   (lists {name} from {values['dist']}, source type {values['type_name']!r})\n"
        "Then make the skeleton talk to the real API: docs/writing-plugins.md.",
        highlight=False,
        markup=False,
    )
