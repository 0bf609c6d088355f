#!/usr/bin/env bash
# Runs one browser suite on one engine RUNS times in a row (through scripts/test-browsers.sh)
# and counts the runs that failed and those whose log shows a WebAssembly trap other than a
# test's panic ("RuntimeError: Out of bounds memory access" and the like),
# keeping the log of each failed run in target/stress/. For crashes seen once in a long run.
#   RUNS=50 ENGINE=webkit SUITE=web_sync_worker bash scripts/stress.sh
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-50} ENGINE=${ENGINE:-webkit} SUITE=${SUITE:-web_sync_worker}
mkdir -p target/stress
failed=0 traps=0
for i in $(seq 1 "$RUNS"); do
  ENGINES=$ENGINE SUITES=$SUITE FEATURES=0 bash scripts/test-browsers.sh >/dev/null 2>&1
  rc=$?
  log=target/test-logs/$ENGINE-$SUITE.log
  trap_seen=0
  # A test's panic traps as "unreachable"; anything else (out of bounds memory access, ...) is
  # what this is looking for.
  grep 'RuntimeError' "$log" 2>/dev/null | grep -qvi 'unreachable' && trap_seen=1
  if [ $rc != 0 ] || [ $trap_seen = 1 ]; then
    cp "$log" "target/stress/$ENGINE-$SUITE-run$i.log"
    failed=$((failed + (rc != 0))); traps=$((traps + trap_seen))
  fi
  echo "run $i/$RUNS: exit $rc$([ $trap_seen = 1 ] && echo ', WebAssembly trap in the log')"
done
echo "$ENGINE/$SUITE: $RUNS runs, $failed failed, $traps with a WebAssembly trap (logs of those in target/stress/)"
[ $failed = 0 ] && [ $traps = 0 ]
