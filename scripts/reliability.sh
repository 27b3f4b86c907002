#!/bin/bash
# The suite's reliability under load: `make test` N times in a row (default 5) in one clean clone
# while a second clean clone runs `make test` in a loop on the same cores. Every pass must pass.
#
#   scripts/reliability.sh OUT_DIR [PASSES]
#
# Clones this repository's HEAD twice (OUT_DIR/a, OUT_DIR/b), installs both, starts B's loop, then
# runs A's passes one after the other. OUT_DIR/log gets one line per pass (rc, seconds, passed,
# failed, skipped), OUT_DIR/A-N.log and B-N.log each pass's output. Exit status 0 when every A pass
# passed. Stop it early: touch OUT_DIR/stop (B ends after its current pass; A after its own).
set -u
out=${1:?usage: scripts/reliability.sh OUT_DIR [PASSES]}
passes=${2:-5}
repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
mkdir -p "$out" && out=$(cd "$out" && pwd)
rm -rf "$out/a" "$out/b" "$out/stop"
git clone -q "$repo" "$out/a" && git clone -q "$repo" "$out/b"
echo "rev $(git -C "$out/a" rev-parse HEAD), $(nproc) CPUs, $(date -u +%FT%TZ)" > "$out/log"
(cd "$out/b" && make install-dev > "$out/B-install.log" 2>&1) || { echo "B: make install-dev failed" >> "$out/log"; exit 2; }
(cd "$out/a" && make install-dev > "$out/A-install.log" 2>&1) || { echo "A: make install-dev failed" >> "$out/log"; exit 2; }

count() {  # count WORD LOG: the sum of pytest's "N WORD" figures of every suite in LOG
    grep -oE "[0-9]+ $1" "$2" | awk '{s += $1} END {print s + 0}'
}

( n=0
  while [ ! -e "$out/stop" ]; do
      n=$((n + 1)); start=$(date +%s)
      (cd "$out/b" && make test > "$out/B-$n.log" 2>&1); rc=$?
      echo "B pass $n rc=$rc $(( $(date +%s) - start ))s $(date -u +%T)" >> "$out/log"
  done ) &
loop=$!
failed=0
for i in $(seq 1 "$passes"); do
    [ -e "$out/stop" ] && break
    start=$(date +%s)
    (cd "$out/a" && make test > "$out/A-$i.log" 2>&1); rc=$?
    [ "$rc" -eq 0 ] || failed=1
    echo "A pass $i rc=$rc $(( $(date +%s) - start ))s $(date -u +%T) passed=$(count passed "$out/A-$i.log")" \
         "failed=$(count failed "$out/A-$i.log") skipped=$(count skipped "$out/A-$i.log")" >> "$out/log"
done
touch "$out/stop"
wait "$loop"
echo "done: $([ "$failed" -eq 0 ] && echo 'every A pass passed' || echo 'an A pass FAILED')" >> "$out/log"
exit "$failed"
