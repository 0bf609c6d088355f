#!/usr/bin/env bash
# Runs the wasm-bindgen-test browser suites (page + dedicated worker) on each engine and
# prints a per-engine summary; any failure on any engine fails the run.
# ENGINES="chromium firefox webkit webkit-opfs" (default: all four; webkit-opfs is WebKitGTK with
# its OPFS switched on, see run_webkit_opfs); SUITES="web_sync_page ..." (default: all four).
# OPFS_MEDIA_SERVER_BIN: the server binary the sync suites run (default: the workspace build).
# FILTER=<substring>: only the tests whose name contains it. FEATURES=0: no engine feature table.
set -uo pipefail
cd "$(dirname "$0")/.."
ENGINES=${ENGINES:-chromium firefox webkit webkit-opfs}
SUITES=${SUITES:-web_page web_worker web_sync_page web_sync_worker}
declare -A RESULT
failed=0

# The sync suites talk to a real reference server (SQLite + local files, dev auth, any CORS
# origin since the test runner serves pages from a random port), and to a second one behind
# a rate limit (5 requests/s per user) for the 429 + Retry-After test. Free ports are picked
# so two runs on one machine cannot cross; the URLs are compiled into the suites.
free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
SYNC_DIR=target/test-sync
rm -rf "$SYNC_DIR" && mkdir -p "$SYNC_DIR/main" "$SYNC_DIR/limited" "$SYNC_DIR/large"
cargo build -q -p opfs-media-server
start_server() { # dir port extra-args...
  local dir=$1 port=$2; shift 2
  "${OPFS_MEDIA_SERVER_BIN:-target/debug/opfs-media-server}" --bind "127.0.0.1:$port" \
    --database-url "sqlite://$dir/db.sqlite?mode=rwc" --storage-url "file://$dir/objects" \
    --cors-origins '*' "$@" >"$dir/server.log" 2>&1 &
  echo $!
}
SYNC_PORT=$(free_port)
LIMITED_PORT=$(free_port)
SYNC_PID=$(start_server "$SYNC_DIR/main" "$SYNC_PORT" --max-upload-bytes 8388608)
# The rate-limited server also lacks the resumable-upload extension: a large file still
# syncs to it in one POST. A third server has the extension and the default upload limit,
# behind its own counting proxy, which also cuts transfers mid-body on request.
LIMITED_PID=$(start_server "$SYNC_DIR/limited" "$LIMITED_PORT" --rate-limit 5 --no-resumable-uploads)
LARGE_PORT=$(free_port)
LARGE_PID=$(start_server "$SYNC_DIR/large" "$LARGE_PORT")
# The suites reach the main server through a proxy that counts the upload bytes crossing the
# wire per asset (tests/wire-proxy.mjs): "sent once" is measured there, not by server ids.
PROXY_PORT=$(free_port)
node tests/wire-proxy.mjs --upstream "http://127.0.0.1:$SYNC_PORT" --port "$PROXY_PORT" >"$SYNC_DIR/proxy.log" 2>&1 &
PROXY_PID=$!
LARGE_PROXY_PORT=$(free_port)
node tests/wire-proxy.mjs --upstream "http://127.0.0.1:$LARGE_PORT" --port "$LARGE_PROXY_PORT" >"$SYNC_DIR/large-proxy.log" 2>&1 &
LARGE_PROXY_PID=$!
# The rate-limited server too: "each asset once" through 429s is counted at the wire, not
# inferred from a server that keeps one record per id.
LIMITED_PROXY_PORT=$(free_port)
node tests/wire-proxy.mjs --upstream "http://127.0.0.1:$LIMITED_PORT" --port "$LIMITED_PROXY_PORT" >"$SYNC_DIR/limited-proxy.log" 2>&1 &
LIMITED_PROXY_PID=$!
trap 'kill $SYNC_PID $LIMITED_PID $LARGE_PID $PROXY_PID $LARGE_PROXY_PID $LIMITED_PROXY_PID 2>/dev/null' EXIT
for port in $SYNC_PORT $LIMITED_PORT $LARGE_PORT $PROXY_PORT $LARGE_PROXY_PORT $LIMITED_PROXY_PORT; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/api/media/capabilities" >/dev/null && break; sleep 0.2; done
done
kill -0 "$SYNC_PID" "$LIMITED_PID" "$LARGE_PID" "$PROXY_PID" "$LARGE_PROXY_PID" "$LIMITED_PROXY_PID" || { echo "a test server did not start; see $SYNC_DIR/*/server.log, $SYNC_DIR/*proxy.log"; exit 1; }
curl -sf "http://127.0.0.1:$LARGE_PORT/api/media/capabilities" | grep -q '"resumableUploads"' \
  || { echo "the large-file test server does not advertise resumable uploads"; exit 1; }
export OPFS_MEDIA_TEST_SERVER_LARGE="http://127.0.0.1:$LARGE_PROXY_PORT"
export OPFS_MEDIA_TEST_SERVER="http://127.0.0.1:$PROXY_PORT"
export OPFS_MEDIA_TEST_SERVER_DIRECT="http://127.0.0.1:$SYNC_PORT"
export OPFS_MEDIA_TEST_SERVER_LIMITED="http://127.0.0.1:$LIMITED_PROXY_PORT"

# webkit-opfs: WebKit's real OPFS. WebKitWebDriver sessions are ephemeral (no OPFS there, as
# in Safari's Private Browsing), so the runner serves the suite in its interactive mode and
# scripts/webkit-opfs.py, a WebKitGTK view with a persistent data directory and OPFS's
# feature flags on, runs it and prints the runner's output (docs/library.md, "Safari and WebKit").
run_webkit_opfs() { # suite log
  local suite=$1 log=$2 port dir runner status
  port=$(free_port)
  dir=$(mktemp -d)
  # setsid: the runner (cargo's child) is killed with its whole group when the page is done.
  setsid env -u CHROMEDRIVER -u GECKODRIVER -u SAFARIDRIVER NO_HEADLESS=1 WASM_BINDGEN_TEST_ADDRESS="127.0.0.1:$port" \
    cargo test --target wasm32-unknown-unknown --test "$suite" -- --nocapture ${FILTER:-} >"$dir/runner.log" 2>&1 &
  runner=$!
  for _ in $(seq 1800); do
    grep -q 'Interactive browsers tests are now available' "$dir/runner.log" && break
    kill -0 "$runner" 2>/dev/null || break
    sleep 0.2
  done
  if grep -q 'Interactive browsers tests are now available' "$dir/runner.log"; then
    xvfb-run -a /usr/bin/python3 scripts/webkit-opfs.py "http://127.0.0.1:$port" --data-dir "$dir/profile" \
      --timeout "${WEBKIT_OPFS_TIMEOUT:-600}" >"$log" 2>&1
    status=$?
    [ $status = 0 ] || echo "webkit-opfs.py exited with $status" >>"$log"
  else
    cat "$dir/runner.log" >"$log"
  fi
  kill -- -"$runner" 2>/dev/null
  wait "$runner" 2>/dev/null
  rm -rf "$dir"
}

run_suite() { # engine suite
  local engine=$1 suite=$2 log
  log=$(mktemp)
  # The runner picks the driver from the first of GECKODRIVER, SAFARIDRIVER, CHROMEDRIVER
  # that is set, so exactly one is passed per run.
  # The runner's limit is for the whole suite (default 20 s); the large-transfer tests move
  # 64 MB up and down with cuts, so allow minutes.
  local -a cmd=(env -u CHROMEDRIVER -u GECKODRIVER -u SAFARIDRIVER WASM_BINDGEN_TEST_TIMEOUT=300)
  case $engine in
    chromium) cmd+=(CHROMEDRIVER=/usr/bin/chromedriver) ;;
    firefox) cmd+=(GECKODRIVER="$(command -v geckodriver)") ;;
    # WebKitGTK's MiniBrowser needs a display even when headless.
    webkit) cmd+=(SAFARIDRIVER=/usr/bin/WebKitWebDriver xvfb-run -a) ;;
    webkit-opfs) ;;
    *) failed=1; RESULT["$engine/$suite"]="FAILED: unknown engine (chromium, firefox, webkit, webkit-opfs)"; return ;;
  esac
  # --nocapture shows the tests' console lines: a test that cannot run on this engine says
  # `SKIPPED <name>: <why>` (tests/common/mod.rs) and is reported as skipped, not passed.
  cmd+=(cargo test --target wasm32-unknown-unknown --test "$suite" -- --nocapture ${FILTER:-})
  printf '\n\033[1m--- %s / %s\033[0m\n' "$engine" "$suite"
  if [ "$engine" = webkit-opfs ]; then
    run_webkit_opfs "$suite" "$log"
    grep -E '^(test |test result|    panicked|failures:|error|DRIVER|webkit-opfs)|SKIPPED |MEASURED |panicked at' "$log" || true
  else
    "${cmd[@]}" 2>&1 | tee "$log" | grep -E '^(test |test result|Running headless|    panicked|failures:|error)|SKIPPED |MEASURED |panicked at' || true
  fi
  local line passed skipped names
  line=$(grep -E '^test result:' "$log" | tail -n 1)
  passed=$(sed -nE 's/^test result: ok\. ([0-9]+) passed.*/\1/p' <<<"$line")
  names=$(grep -oE 'SKIPPED [a-z0-9_]+' "$log" | awk '{print $2}' | sort -u | paste -sd' ' -)
  skipped=$(wc -w <<<"$names")
  if [ -z "$passed" ]; then
    # No result line: the runner died or timed out. Its last words say why.
    echo "--- last lines of the $engine/$suite run:"; tail -n 40 "$log"
    failed=1; RESULT["$engine/$suite"]="FAILED: ${line:-no result (see output above)}"
  elif [ $((passed - skipped)) -le 0 ]; then
    # A suite that ran nothing (a missing engine or driver, a filter that matched nothing,
    # every test skipped) proves nothing: it fails.
    failed=1; RESULT["$engine/$suite"]="FAILED: no test ran ($line)"
  else
    RESULT["$engine/$suite"]="ok: $((passed - skipped)) passed, $skipped skipped${names:+ ($names)}"
  fi
  # Kept whole for a look afterwards (the lines above are filtered).
  mkdir -p target/test-logs && mv "$log" "target/test-logs/$engine-$suite.log"
}

for e in $ENGINES; do for s in $SUITES; do run_suite "$e" "$s"; done; done

printf '\n\033[1mbrowser suites\033[0m\n'
for e in $ENGINES; do for s in $SUITES; do printf '  %-11s %-15s %s\n' "$e" "$s" "${RESULT[$e/$s]}"; done; done

# What each engine offers of the APIs the library touches (a report, not a test: the suites
# above are what pass or fail). xvfb-run because WebKitGTK needs a display.
if [ "${FEATURES:-1}" != 0 ]; then
  printf '\n\033[1mengine features (page / dedicated worker)\033[0m\n'
  xvfb-run -a node scripts/engine-features.mjs || echo "(feature probe failed; see above)"
fi
exit $failed
