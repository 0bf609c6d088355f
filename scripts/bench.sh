#!/usr/bin/env bash
# Builds the release package, reports its size per entry point (bench/size-run.mjs), and runs
# the import, sync, large-file and budget benchmarks in headless Chromium (the sync ones
# against a release reference server they start). Arguments go to the import bench.
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
