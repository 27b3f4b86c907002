#!/usr/bin/env bash
# Make sure Chromium is there for the browser test of the NPS report
# (plugins/cdp-profiles/tests/test_nps_report_browser.py): Debian's `chromium` package,
# installed with apt-get when missing (as root, or through sudo without a password).
# Fails loudly when it cannot: that test fails rather than skips without a browser.
# CDP_SKIP_BROWSER_TESTS=1 skips both (on purpose); CDP_CHROMIUM names another binary.
set -euo pipefail

CHROMIUM=${CDP_CHROMIUM:-/usr/bin/chromium}
if [[ ${CDP_SKIP_BROWSER_TESTS:-} == 1 ]]; then
    echo "ensure-chromium: CDP_SKIP_BROWSER_TESTS=1: the browser test is skipped" >&2
    exit 0
fi
[[ -x $CHROMIUM ]] && exit 0
if [[ -n ${CDP_CHROMIUM:-} ]]; then
    echo "ensure-chromium: CDP_CHROMIUM=$CHROMIUM is not an executable" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null; then
    echo "ensure-chromium: no $CHROMIUM and no apt-get: install Chromium, set CDP_CHROMIUM," \
        "or set CDP_SKIP_BROWSER_TESTS=1" >&2
    exit 1
fi
as_root=()
if [[ $(id -u) != 0 ]]; then
    if sudo -n true 2>/dev/null; then
        as_root=(sudo -n)
    else
        echo "ensure-chromium: no $CHROMIUM, and installing it needs root: run" \
            "'apt-get install -y chromium' as root, or set CDP_SKIP_BROWSER_TESTS=1" >&2
        exit 1
    fi
fi
echo "ensure-chromium: installing Debian's chromium for the browser test" >&2
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
[[ -x $CHROMIUM ]] || { echo "ensure-chromium: chromium installed but $CHROMIUM is missing" >&2; exit 1; }
