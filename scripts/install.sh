#!/usr/bin/env bash
# Install cdp into a virtualenv: the core and every plugin under plugins/*/ (editable).
#
#   scripts/install.sh          runtime: pip install -e . -e plugins/NAME ...
#   scripts/install.sh --dev    also the dev extras: -e '.[dev]', and each plugin's
#                               dev / test / tests extras where it declares them
#
# VENV (default .venv) is created with $PYTHON (default python3) when missing.
# Packages come from the package registry pip is configured for; nothing else is fetched.
# A plugin folder that was removed is uninstalled (its editable install would be broken).
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
DEV=0
[[ ${1:-} == --dev ]] && DEV=1

if [[ ! -x $VENV/bin/python ]]; then
    echo "install: creating $VENV with $PYTHON" >&2
    "$PYTHON" -m venv "$VENV"
fi
PY=$VENV/bin/python

# The extras of a plugin's pyproject.toml that hold its test dependencies.
test_extras() {
    "$PY" - "$1" <<'PYEOF'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    extras = tomllib.load(f).get("project", {}).get("optional-dependencies", {})
print(",".join(e for e in ("dev", "test", "tests") if e in extras))
PYEOF
}

args=()
if [[ $DEV == 1 ]]; then args+=(-e ".[dev]"); else args+=(-e .); fi
plugins=()
# The profile product first: vendor plugins that activate audiences depend on it, and pip
# finds a local editable requirement only when it comes before the ones that need it.
for pyproject in plugins/cdp-profiles/pyproject.toml plugins/*/pyproject.toml; do
    [[ -f $pyproject ]] || continue
    dir=$(dirname "$pyproject")
    [[ " ${plugins[*]-} " == *" $dir "* ]] && continue
    plugins+=("$dir")
    extras=""
    [[ $DEV == 1 ]] && extras=$(test_extras "$pyproject")
    if [[ -n $extras ]]; then args+=(-e "$dir[$extras]"); else args+=(-e "$dir"); fi
done

# Editable installs of plugin folders that no longer exist.
stale=$("$PY" - "$REPO/plugins" <<'PYEOF'
import json, os, sys
from importlib import metadata
root = sys.argv[1]
for dist in metadata.distributions():
    text = dist.read_text("direct_url.json")
    if not text:
        continue
    url = json.loads(text).get("url", "")
    path = url.removeprefix("file://")
    if path.startswith(root + os.sep) and not os.path.isdir(path):
        print(dist.metadata["Name"])
PYEOF
)
if [[ -n $stale ]]; then
    echo "install: uninstalling removed plugins: $stale" >&2
    # shellcheck disable=SC2086
    "$PY" -m pip uninstall -q -y $stale
fi

echo "install: $PY -m pip install ${args[*]}" >&2
# setuptools warns at length about pyproject details while building editables: not our output.
PYTHONWARNINGS=ignore "$PY" -m pip install -q "${args[@]}"
printf '%s\n' ${plugins[@]+"${plugins[@]}"} >"$VENV/.cdp-plugins"
