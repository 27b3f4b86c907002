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
