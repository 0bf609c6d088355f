#!/usr/bin/env bash
# Installs everything the build, tests, bench and demo need on a fresh Debian machine,
# and does nothing for what is already there. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# 1. The wasm target.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# 2. wasm-bindgen-cli pinned to the exact wasm-bindgen in Cargo.lock (the test runner and the
#    CLI must match the library's version byte for byte).
WB_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WB_VERSION" ]; then
  log "installing wasm-bindgen-cli $WB_VERSION (2-3 minutes)"
  # Not --locked: the CLI's own lockfile pins a yanked webpki-roots release.
  cargo install wasm-bindgen-cli --version "$WB_VERSION" --force
fi

# 3. The three browser engines and their WebDriver servers, from Debian: Chromium +
#    chromedriver, Firefox ESR (geckodriver comes from crates.io below), WebKitGTK's
#    MiniBrowser + WebKitWebDriver (needs a display: xvfb).
need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
command -v firefox >/dev/null || need_apt+=(firefox-esr)
[ -x /usr/bin/WebKitWebDriver ] || need_apt+=(webkit2gtk-driver)
command -v xvfb-run >/dev/null || need_apt+=(xvfb)
# The webkit-opfs lane (scripts/webkit-opfs.py): WebKitGTK's own API from Debian's Python.
/usr/bin/python3 -c 'import gi; gi.require_version("WebKit2", "4.1"); from gi.repository import WebKit2' 2>/dev/null \
  || need_apt+=(python3-gi gir1.2-webkit2-4.1)
# The reference server's tests: PostgreSQL (started by scripts/test-server.sh), curl, venv.
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need_apt+=(postgresql)
command -v curl >/dev/null || need_apt+=(curl)
python3 -c 'import ensurepip, venv' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages: run 'sudo apt-get install ${need_apt[*]}'" >&2
    exit 1
  fi
  log "installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! command -v geckodriver >/dev/null; then
  log "installing geckodriver from crates.io (about 2 minutes)"
  cargo install geckodriver --locked
fi

# 4. wasm-pack (optional path for users: `wasm-pack test --headless --chrome`). From crates.io,
#    since its npm installer downloads a binary.
if [ "${OPFS_MEDIA_SKIP_WASM_PACK:-}" = "" ] && ! command -v wasm-pack >/dev/null; then
  log "installing wasm-pack (3-5 minutes)"
  cargo install wasm-pack --locked
fi

# 5. An S3-compatible server for the reference server's tests: moto from PyPI, in a venv
#    under target/ (not committed, not shared with the system Python).
#    openapi-spec-validator checks docs/openapi.yaml.
if [ ! -x target/venv/bin/moto_server ] || [ ! -x target/venv/bin/openapi-spec-validator ]; then
  log "installing moto[server] and openapi-spec-validator into target/venv"
  python3 -m venv target/venv
  target/venv/bin/pip install -q 'moto[server]==5.2.5' 'openapi-spec-validator==0.9.0'
fi

# 6. JS tooling (typescript, playwright-core, binaryen's wasm-opt), exactly as locked.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
log "ready"
