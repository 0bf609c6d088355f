#!/usr/bin/env bash
# Builds the release package and runs the import benchmark in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-pkg.sh
node bench/run.mjs "$@"
