#!/usr/bin/env bash
# Builds the package and serves the demo at http://127.0.0.1:${PORT:-8080}/www-demo/
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-pkg.sh
echo "open http://127.0.0.1:${PORT:-8080}/www-demo/ (Ctrl-C to stop)"
exec node scripts/serve.mjs --root . --port "${PORT:-8080}"
