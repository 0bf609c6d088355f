#!/usr/bin/env bash
# The demo: builds the package and the reference server, starts the server with its embedded
# defaults (SQLite + local files under ./data, dev auth) and serves the page.
#   page:   http://127.0.0.1:${PORT:-8080}/www-demo/
#   server: http://127.0.0.1:${API_PORT:-8787}/api/media/capabilities
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-pkg.sh
cargo build --release -p opfs-media-server
PORT=${PORT:-8080}
API_PORT=${API_PORT:-8787}
mkdir -p data
target/release/opfs-media-server --bind "127.0.0.1:$API_PORT" \
  --cors-origins "http://127.0.0.1:$PORT,http://localhost:$PORT" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
echo "open http://127.0.0.1:$PORT/www-demo/?api=http://127.0.0.1:$API_PORT (data in ./data; Ctrl-C to stop)"
node scripts/serve.mjs --root . --port "$PORT"
