#!/usr/bin/env bash
# Run the static checks (scripts/checks.sh: the type check and the import check), then
# every test suite: the core's tests/ and each plugins/NAME/tests (one pytest per
# suite, from the plugin's folder so its own pytest config and conftest apply).
# Everything runs even when something fails; the exit status is non-zero if a check
# failed, or a suite failed or collected no test (pytest exit 5). Extra arguments go to
# every pytest.
# make test runs this under scripts/pgtest.sh run, which exports CDP_TEST_PG_URL.
set -uo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
PY=${PY:-$REPO/${VENV:-.venv}/bin/python}

suites=(.)
for dir in plugins/*/; do
    dir=${dir%/}
    [[ -d $dir/tests ]] && suites+=("$dir")
done

failed=()
scripts/checks.sh || failed+=("static checks")
for suite in "${suites[@]}"; do
    echo "== tests: ${suite/#./core} =="
    (cd "$suite" && "$PY" -m pytest tests "$@")
    status=$?
    if [[ $status -eq 5 ]]; then
        echo "run-tests: ${suite/#./core}: no test was collected" >&2
    fi
    [[ $status -eq 0 ]] || failed+=("${suite/#./core} (exit $status)")
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "run-tests: FAILED: ${failed[*]}" >&2
    exit 1
fi
