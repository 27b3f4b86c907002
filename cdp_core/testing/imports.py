"""What a ``cdp`` command imports: a guard for start-up cost that does not depend on time.

``cdp_imports(tmp_path, "--help")`` runs the command in a fresh interpreter (the working folder
``tmp_path``) and returns its exit code, every module it imported, its stdout and stderr. A test
asserts that heavy modules are not among them (bench/README.md, "CLI start-up").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

_PROBE = """
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


@dataclass(frozen=True)
class CdpImports:
    code: int
    modules: set[str]
    stdout: str
    stderr: str


def cdp_imports(tmp_path: Path, *args: str, unset: Collection[str] = ()) -> CdpImports:
    """Run ``cdp *args``; ``CDP_DISABLE_PLUGINS`` and the ``unset`` variables are removed from its environment."""
    result = tmp_path / "modules.json"
    drop = {"CDP_DISABLE_PLUGINS", *unset}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(result), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.exists(), done.stderr
    found = json.loads(result.read_text())
    return CdpImports(int(found["code"] or 0), set(found["modules"]), done.stdout, done.stderr)
