"""The kernel works without the profile product, through the real ``cdp`` CLI.

The profile product is a plugin (``plugins/cdp-profiles``, entry point
``profiles``); the kernel must validate and run file-to-file graphs with it
switched off by ``CDP_DISABLE_PLUGINS``, and say which plugin is missing when a
user reaches for something only it provides. Each case runs the CLI in a
subprocess so that plugin discovery goes through the installed entry points,
as it does for users.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cdp_core.plugins import DISABLE_ENV

# make test installs the product; without it these tests fail rather than skip (a skipped
# test in CI proves nothing): "disabled" would then be vacuous and "ok" cannot hold.

ROWS = 25  # more than one page of batch_size 10, so the run spans several pages

CONFIG = """\
[store]
url = "sqlite:///cdp.sqlite"

[connectors.people]
type = "csv"
[connectors.people.streams.rows]
path = "people.csv"
identifiers = { email = "email" }
batch_size = 10

[connectors.out]
type = "jsonl_file"
path = "out/people.jsonl"

[syncs.copy.nodes.read]
source = "people.rows"

[syncs.copy.nodes.write]
destination = "out"
inputs = ["read"]
"""


def cdp(
    folder: Path, *args: str, disable: str | None, pythonpath: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in (DISABLE_ENV, "CDP_CONFIG", "PYTHONPATH")}
    if disable is not None:
        env[DISABLE_ENV] = disable
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [sys.executable, "-m", "cdp_core.cli", *args],
        check=False,  # the exit code is what the tests look at
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,  # a hang fails the test instead of the whole suite
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    lines = ["id,email,name"] + [f"{i},p{i}@example.com,Person {i}" for i in range(1, ROWS + 1)]
    (tmp_path / "people.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "connectors.toml").write_text(CONFIG)
    return tmp_path


def plugin_entry(folder: Path, disable: str | None) -> dict[str, Any]:
    done = cdp(folder, "plugins", "--json", disable=disable)
    assert done.returncode == 0, done.stderr
    entries = {p["name"]: p for p in json.loads(done.stdout)}
    assert "profiles" in entries, sorted(entries)
    return entries["profiles"]


def test_file_graph_validates_and_syncs_with_profiles_disabled(
    folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # The product stays installed; a package of the same name earlier on the path
    # that refuses to import makes sure the kernel never reaches for it.
    shadow = tmp_path_factory.mktemp("shadow")
    (shadow / "cdp_profiles").mkdir()
    (shadow / "cdp_profiles" / "__init__.py").write_text('raise ImportError("the kernel imported cdp_profiles")\n')

    validated = cdp(folder, "validate", "-c", "connectors.toml", disable="profiles", pythonpath=shadow)
    assert validated.returncode == 0, validated.stdout + validated.stderr

    synced = cdp(folder, "sync", "copy", "-c", "connectors.toml", disable="profiles", pythonpath=shadow)
    assert synced.returncode == 0, synced.stdout + synced.stderr

    written = [json.loads(line) for line in (folder / "out" / "people.jsonl").read_text().splitlines()]
    assert sorted(int(r["key"]) for r in written) == list(range(1, ROWS + 1))
    assert all(r["identifiers"] == {"email": r["data"]["email"]} for r in written)


def test_plugins_lists_profiles_as_disabled(folder: Path) -> None:
    entry = plugin_entry(folder, disable="profiles")
    assert entry["status"] == "disabled"
    assert entry["registered"] == {}


@pytest.mark.parametrize("command", [["profiles", "show", "x"], ["nps"], ["segments", "list"]])
def test_product_commands_name_the_disabled_plugin(folder: Path, command: list[str]) -> None:
    done = cdp(folder, *command, "-c", "connectors.toml", disable="profiles")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "plugin 'profiles'" in done.stderr
    assert "disabled" in done.stderr


def test_identity_section_is_unknown_with_profiles_disabled(folder: Path) -> None:
    config = folder / "connectors.toml"
    config.write_text(CONFIG + '\n[identity]\npriority = ["email"]\n')
    done = cdp(folder, "validate", "-c", "connectors.toml", disable="profiles")
    assert done.returncode == 2, done.stdout + done.stderr
    output = done.stdout + done.stderr
    assert "unknown section [identity]" in output
    assert "disabled by CDP_DISABLE_PLUGINS: profiles" in output


def test_plugins_lists_what_profiles_registers_when_enabled(folder: Path) -> None:
    # An empty value disables nothing, whatever the caller's environment holds.
    entry = plugin_entry(folder, disable="")
    assert entry["status"] == "ok", entry["error"]
    assert entry["registered"] == {
        "sources": ["profile_store"],
        "destinations": ["profile_store"],
        "config sections": ["analytics", "computed_traits", "consent", "identity", "privacy", "segments"],
        "commands": ["analytics", "nps", "privacy", "profiles", "segments"],
        "migrations": ["profiles"],
        "jobs": ["privacy-forget", "privacy-retention", "segments-refresh"],
    }
