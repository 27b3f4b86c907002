"""`cdp profiles show` on a store at head: no migration machinery, numerics, other commands or server.

Not a benchmark (bench/README.md, "CLI start-up"): what the command imports is what makes it slow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cdp_core.plugins import load_plugins
from cdp_core.store.access import open_store

PROBE = """
import json, sys
from cdp_core.cli import main
out, sys.argv = sys.argv[1], ["cdp", *sys.argv[2:]]
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code
with open(out, "w") as f:
    json.dump({"code": code, "modules": sorted(sys.modules)}, f)
"""


def run_cdp(tmp_path: Path, *args: str) -> tuple[int, set[str], str]:
    """``cdp *args`` in a fresh interpreter: its exit code, the modules it imported, its stderr and stdout."""
    result = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if k not in ("CDP_DISABLE_PLUGINS", "UNSET_TOKEN")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(result), *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert result.exists(), done.stderr
    found = json.loads(result.read_text())
    return found["code"], set(found["modules"]), done.stderr + done.stdout


def current_store(tmp_path: Path, rest: str = "") -> None:
    url = f"sqlite:///{tmp_path / 'cdp.sqlite'}"
    open_store(url, load_plugins().migrations, create=True).dispose()  # at the head of every history
    (tmp_path / "connectors.toml").write_text(f'[store]\nurl = "{url}"\n[connectors.store]\ntype = "profile_store"\n{rest}')


UNRELATED = """
[connectors.crm]
type = "hubspot"
access_token = "${UNSET_TOKEN}"
[syncs.nightly.nodes.up]
source = "nowhere.people"
"""
"""A connector whose secret is not set and a graph that names a connector nobody declared."""

NOT_LOADED = (
    "httpx", "lark", "phonenumbers", "cryptography", "apscheduler", "cdp_core.transforms.compute",
    "cdp_core.builtins.files", "cdp_core.builtins.rest", "cdp_profiles.analytics.rfm", "cdp_profiles.analytics.orders",
    "cdp_profiles.analytics.traits", "cdp_profiles.privacy.keys", "cdp_profiles.membership.daily",
)  # fmt: skip
"""What a read command has no use for: the HTTP client, the transforms, the scheduler, the privacy jobs, analytics."""


def vendor_modules(modules: set[str]) -> list[str]:
    """The vendor plugins' modules beyond their packages (``cdp_hubspot.source``...): their sources and destinations."""
    return sorted(m for m in modules if m.startswith("cdp_") and not m.startswith(("cdp_core", "cdp_profiles")) and "." in m)


def test_profiles_show_loads_the_store_and_its_sections_only(tmp_path: Path) -> None:
    current_store(tmp_path)
    code, modules, err = run_cdp(tmp_path, "profiles", "show", "email:nobody@example.org", "-c", "connectors.toml")
    assert code == 1 and "nobody@example.org" in err, err
    assert sorted(m for m in NOT_LOADED if m in modules) == []
    assert vendor_modules(modules) == []


def test_a_read_command_reads_past_a_problem_in_a_part_it_does_not_read(tmp_path: Path) -> None:
    current_store(tmp_path, UNRELATED)
    for args in (["profiles", "show", "email:nobody@example.org"], ["segments", "list"], ["nps"]):
        code, _, err = run_cdp(tmp_path, *args, "-c", "connectors.toml")
        assert code in (0, 1) and "problem" not in err, (args, err)
    code, _, err = run_cdp(tmp_path, "validate", "-c", "connectors.toml")  # the whole file is still checked there
    assert code == 2 and "UNSET_TOKEN" in err and "nowhere" in err, err


def test_a_read_command_checks_the_sections_it_reads(tmp_path: Path) -> None:
    current_store(tmp_path, '[identity]\npriority = ["email"]\nno_such_key = 1\n[segments.vip]\nwhere = "count(orders) >="\n')
    code, _, err = run_cdp(tmp_path, "profiles", "show", "email:nobody@example.org", "-c", "connectors.toml")
    assert code == 2 and "connectors.toml:7: identity.no_such_key" in err, err
    code, _, err = run_cdp(tmp_path, "segments", "list", "-c", "connectors.toml")
    assert code == 2 and "segments.vip" in err, err


def test_profiles_show_on_a_current_store_imports_no_migrations_numerics_other_commands_or_server(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cdp.sqlite'}"
    open_store(url, load_plugins().migrations, create=True).dispose()  # at the head of every history
    (tmp_path / "connectors.toml").write_text(f'[store]\nurl = "{url}"\n[connectors.store]\ntype = "profile_store"\n')
    result = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if k != "CDP_DISABLE_PLUGINS"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(result), "profiles", "show", "email:nobody@example.org", "-c", "connectors.toml"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    found = json.loads(result.read_text())
    # the store was read (the lookup ran and found nobody), not migrated
    assert found["code"] == 1 and "nobody@example.org" in done.stderr, done.stderr
    modules = set(found["modules"])
    assert "cdp_profiles.cli.profiles" in modules
    assert sorted(m for m in ("alembic", "numpy", "scipy", "starlette", "uvicorn") if m in modules) == []
    # nor the other commands' modules, nor the server (the config sections' models are loaded: the config is read)
    heavy_own = ("cdp_profiles.cli.analytics", "cdp_profiles.cli.privacy", "cdp_profiles.cli.nps", "cdp_core.serve")
    assert sorted(m for m in modules if m.startswith(heavy_own)) == []
