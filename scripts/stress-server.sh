#!/usr/bin/env bash
# RUNS times in a row (default 10): the conformance suite (sqlite + local files, dev auth, CORS: test-server.sh's first
# configuration) and every hostile-client check, as scripts/test-server.sh starts them.
# Fixed ports (as scripts/test-server.sh): run under flock, e.g.
#   RUNS=10 flock /tmp/opfs-fixed-ports.lock bash scripts/stress-server.sh
# A failed conformance run keeps its log in target/stress/.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD BIN=$ROOT/target/debug/opfs-media-server
source scripts/lib.sh
cargo build -q -p opfs-media-server
mkdir -p target/stress
RUNS=${RUNS:-10}
wait_http() { for _ in $(seq 1 100); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
RESUMABLE_LOCAL=(--chunk-min-bytes 65536 --chunk-max-bytes 262144 --upload-session-lifetime-secs 3 --max-upload-sessions 4)
cfail=0 hfail=0
for i in $(seq 1 "$RUNS"); do
  WORK=$(mktemp -d)
  start() { local name=$1 port=$2; shift 2; mkdir -p "$WORK/$name"; (cd "$WORK/$name" && exec "$BIN" --bind "127.0.0.1:$port" "$@" >"$WORK/$name.log" 2>&1) & SERVER_PID=$!; wait_http "http://127.0.0.1:$port/api/media/capabilities"; }
  start sqlite-dev 18701 --max-upload-bytes 1000000 --cors-origins http://127.0.0.1:18799 "${RESUMABLE_LOCAL[@]}"
  if node_tests node tests/conformance/suite.mjs --base-url http://127.0.0.1:18701 --token dev:alice --token2 dev:bob --cors-origin http://127.0.0.1:18799 >"$WORK/conf.log" 2>&1; then c=ok; else c=FAILED; cfail=$((cfail+1)); cp "$WORK/conf.log" "target/stress/conformance-run$i.log"; fi
  kill $SERVER_PID; wait $SERVER_PID 2>/dev/null
  h=ok
  hostile() { if ! out=$(node tests/conformance/hostile.mjs "$@" 2>&1); then h="FAILED ($1: $out)"; fi; }
  start hostile 18708 --header-read-timeout-secs 1 --body-idle-timeout-secs 1
  hostile bombs --base-url http://127.0.0.1:18708 --server-pid "$SERVER_PID" --max-rss-mb 150
  hostile bombs --base-url http://127.0.0.1:18708 --server-pid "$SERVER_PID" --max-rss-mb 350 --side 6300
  hostile slow --base-url http://127.0.0.1:18708 --header-timeout-s 1
  hostile stall --base-url http://127.0.0.1:18708 --objects-dir "$WORK/hostile/data/objects" --idle-timeout-s 1
  hostile stall-json --base-url http://127.0.0.1:18708 --idle-timeout-s 1
  kill $SERVER_PID; wait $SERVER_PID 2>/dev/null
  start keepalive 18711 --header-read-timeout-secs 30 --keep-alive-timeout-secs 1
  hostile keepalive --base-url http://127.0.0.1:18711 --keep-alive-s 1
  kill $SERVER_PID; wait $SERVER_PID 2>/dev/null
  mkdir -p "$WORK/fds"
  (ulimit -n 128; cd "$WORK/fds" && exec "$BIN" --bind 127.0.0.1:18710 --max-connections 64 --header-read-timeout-secs 60 >"$WORK/fds.log" 2>&1) &
  SERVER_PID=$!; wait_http http://127.0.0.1:18710/api/media/capabilities
  hostile idle --base-url http://127.0.0.1:18710 --sockets 150 --max-connections 64 --max-ms 1000
  kill $SERVER_PID; wait $SERVER_PID 2>/dev/null
  [ "$h" = ok ] || hfail=$((hfail+1))
  echo "run $i/$RUNS: conformance $c ($(sed -nE 's/^# (pass|fail|skipped) ([0-9]+)$/\1 \2/p' "$WORK/conf.log" | paste -sd, -)); hostile $h"
  rm -rf "$WORK"
done
echo "conformance: $RUNS runs, $cfail failed; hostile (7 checks each): $RUNS runs, $hfail failed"
[ "$cfail" = 0 ] && [ "$hfail" = 0 ]
