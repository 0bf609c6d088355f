#!/usr/bin/env bash
# Builds the release package, reports its size per entry point (bench/size-run.mjs), runs
# the import, sync, large-file and budget benchmarks in headless Chromium (the sync ones
# against a release reference server they start), then the reference server's own
# throughput against the raw disk (no browser). Arguments go to the import bench.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-pkg.sh
node bench/size-run.mjs
node bench/run.mjs "$@"
cargo build --release -q -p opfs-media-server
node bench/sync-run.mjs
node bench/large-run.mjs
node bench/budget-run.mjs
node bench/server-run.mjs
