#!/usr/bin/env bash
# Builds the release package and runs the import and sync benchmarks in headless Chromium
# (the sync one against a release reference server it starts). Arguments go to the import bench.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-pkg.sh
node bench/run.mjs "$@"
cargo build --release -q -p opfs-media-server
node bench/sync-run.mjs
