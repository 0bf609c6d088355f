# Shared by the test scripts (sourced).

# node_tests CMD...: runs a node:test command (TAP output), passes its output through, and
# fails when it failed or when it ran no test at all (node's runner exits 0 for "0 tests",
# e.g. a --test-name-pattern that matches nothing or a renamed test).
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
