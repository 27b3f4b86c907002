#!/usr/bin/env bash
# The static checks of make test, each also a make target of its own:
#
#   scripts/checks.sh typecheck     mypy over the kernel (cdp_core) and every plugin's package (the
#                                   profile product and each connector) in one run; settings in
#                                   pyproject.toml [tool.mypy]
#   scripts/checks.sh importcheck   lint-imports: the kernel imports no plugin; the contract is
#                                   pyproject.toml's [tool.importlinter]
#   scripts/checks.sh               both
#
# Every check named runs even when one fails; the exit status is non-zero if any failed.
# Uses the tools installed in $VENV (default .venv) by scripts/install.sh --dev.
set -uo pipefail

cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin

typecheck() {
    # By path, so every plugin's package is checked from its source folder, with the kernel and
    # each other (the ad connectors import the profile product), in one run.
    local packages=()
    for init in plugins/*/cdp_*/__init__.py; do
        packages+=("${init%/__init__.py}")
    done
    "$BIN/mypy" cdp_core "${packages[@]}"
}

importcheck() {
    # --no-cache: no cache folder in the work tree; the whole graph takes well under a second.
    "$BIN/lint-imports" --no-cache
}

checks=("$@")
[[ ${#checks[@]} -gt 0 ]] || checks=(typecheck importcheck)
failed=()
for check in "${checks[@]}"; do
    case $check in
        typecheck | importcheck) ;;
        *) echo "checks: unknown check $check (typecheck, importcheck)" >&2; exit 2 ;;
    esac
    echo "== $check =="
    "$check" || failed+=("$check")
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "checks: FAILED: ${failed[*]}" >&2
    exit 1
fi
