# Shared by the test scripts (sourced).

# node_tests CMD...: runs a node:test command (TAP output), passes its output through, and
# fails when it failed or when it ran no test at all (node's runner exits 0 for "0 tests",
# e.g. a --test-name-pattern that matches nothing or a renamed test). Run one test file as
# `node FILE`, not `node --test FILE`: node 20's --test runner reports each file as a passing
# test of its own, so its "# pass" is never 0 even when the file ran nothing.
node_tests() {
  local log rc pass
  log=$(mktemp)
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  pass=$(sed -nE 's/^# pass ([0-9]+)$/\1/p' "$log" | tail -n 1)
  rm -f "$log"
  [ "$rc" = 0 ] || return "$rc"
  if [ "${pass:-0}" -eq 0 ]; then
    echo "ran no test: $*" >&2
    return 1
  fi
}

# close_inherited_fds: closes every descriptor of this shell beyond stdin/out/err. Call it in
# the subshell that execs a daemon: PostgreSQL outlives the run, and under `flock LOCK script`
# it would otherwise keep the lock's descriptor open, and with it the lock, for good.
close_inherited_fds() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do
    fd=${fd##*/}
    if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-" 2>/dev/null || true; fi
  done
}

# start_pg_moto DB_NAME MOTO_PORT BUCKET LOGDIR: starts Debian's PostgreSQL (role opfs/opfs,
# a fresh database DB_NAME) and moto_server (target/venv) on 127.0.0.1:MOTO_PORT with BUCKET.
# Prints moto's pid (so it runs in a subshell: the caller exports the AWS_* variables).
start_pg_moto() {
  local db=$1 port=$2 bucket=$3 logdir=$4 pgver
  pgver=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
  # PostgreSQL outlives this run: started with the caller's descriptors it would keep any
  # lock the caller holds (`flock FILE CMD` hands its fd to every descendant), for ever.
  (close_inherited_fds; exec pg_ctlcluster "$pgver" main start) >/dev/null 2>&1 || true
  for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 && break; sleep 0.2; done
  su postgres -c "psql -q -c \"DROP DATABASE IF EXISTS $db\"" >&2
  su postgres -c "psql -q -c \"DO \\\$\\\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='opfs') THEN CREATE ROLE opfs LOGIN PASSWORD 'opfs'; END IF; END \\\$\\\$\"" >&2
  su postgres -c "psql -q -c \"CREATE DATABASE $db OWNER opfs\"" >&2
  (close_inherited_fds; exec target/venv/bin/moto_server -H 127.0.0.1 -p "$port") >"$logdir/moto.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -fsS -X PUT "http://127.0.0.1:$port/$bucket" >/dev/null
  echo "$pid"
}
