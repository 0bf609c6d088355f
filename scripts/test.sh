#!/usr/bin/env bash
# Runs every test: lint, native unit tests, browser suites (page + dedicated worker) on
# Chromium, Firefox and WebKit, the same suite through wasm-pack, the package's TypeScript types, the
# reference server's conformance/crash/load runs, the demo end-to-end, and a small smoke run of the bench page. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
export CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
source scripts/lib.sh

bash scripts/setup.sh

step "format and lint (native + wasm32)"
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo clippy -p opfs-media --all-targets --target wasm32-unknown-unknown -- -D warnings
cargo clippy -p opfs-media --lib --no-default-features --target wasm32-unknown-unknown -- -D warnings

step "native unit tests"
cargo test --workspace

step "browser tests: page (main thread) and dedicated worker on Chromium, Firefox and WebKit"
bash scripts/test-browsers.sh

step "the same page suite via wasm-pack test --headless --chrome"
if [ -n "${OPFS_MEDIA_SKIP_WASM_PACK:-}" ]; then
  echo "SKIPPED wasm-pack: OPFS_MEDIA_SKIP_WASM_PACK is set"
else
  command -v wasm-pack >/dev/null || { echo "wasm-pack is missing (scripts/setup.sh installs it)" >&2; exit 1; }
  wasm-pack test --headless --chrome -- --test web_page
fi

step "reference server: conformance on SQLite+local and PostgreSQL+S3, hostile clients, load"
bash scripts/test-server.sh

step "reference server under real faults: kill -9 mid-upload, a client gone mid-body, a chunked body over the limit (SQLite+local and PostgreSQL+S3)"
bash scripts/test-server-faults.sh

step "npm package build + TypeScript types (tsc --noEmit over tests/types/example.ts)"
bash scripts/build-pkg.sh
node bench/size-run.mjs # package size against issue 23's targets: a report, a miss does not fail
node_modules/.bin/tsc -p tests/types/tsconfig.json

step "the npm tarball in a fresh Vite app (build + dev, page + module worker, both entry points), a tsc project, and real tldraw and Excalidraw apps with the recipes"
rm -f target/opfs-media-*.tgz
(cd pkg && npm pack --silent --pack-destination ../target >/dev/null)
node_tests node tests/package/run.mjs target/opfs-media-*.tgz
# The built package (not the test crate) on WebKit's real OPFS, page and worker.
node_tests node tests/package/webkit-opfs.mjs

step "end-to-end: the demo in headless Chromium (screenshots in target/e2e/)"
# Each file on its own through node_tests: a file that runs no test (a renamed or skipped-away
# suite) fails the run, even when the other files' tests pass. `node FILE`, not `node --test`:
# see node_tests in scripts/lib.sh.
for f in tests/e2e/*.mjs; do node_tests node "$f"; done

step "bench smoke run (tiny workload; the real numbers come from npm run bench)"
node bench/run.mjs --runs 1 --big-mb 4 --small-n 10 --list-n 100
node bench/sync-run.mjs --runs 1 --big-mb 4 --small-n 20 --server target/debug/opfs-media-server
node bench/large-run.mjs --runs 1 --sizes 20 --server target/debug/opfs-media-server
node bench/budget-run.mjs --runs 1 --n 20 --reads 100
node bench/server-run.mjs --runs 1 --mb 16 --small-n 50 --server target/debug/opfs-media-server

step "all tests passed"
