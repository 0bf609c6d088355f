#!/usr/bin/env bash
# Builds the npm package into pkg/: release wasm -> wasm-bindgen (web target) -> wasm-opt
# (binaryen from npm; wasm-pack's own download does not work offline) + pkg-template/.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-wasm-release}
cargo build --lib --target wasm32-unknown-unknown --profile "$PROFILE"
rm -rf pkg && mkdir -p pkg
OUT_DIR=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
wasm-bindgen --target web --out-dir pkg/web target/wasm32-unknown-unknown/"$OUT_DIR"/opfs_media.wasm
if [ "$PROFILE" != dev ] && [ -x node_modules/.bin/wasm-opt ]; then
  node_modules/.bin/wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
    pkg/web/opfs_media_bg.wasm -o pkg/web/opfs_media_bg.wasm
fi
cp -r pkg-template/. pkg/
cp LICENSE pkg/ 2>/dev/null || true
wasm=$(stat -c %s pkg/web/opfs_media_bg.wasm); gz=$(gzip -9c pkg/web/opfs_media_bg.wasm | wc -c)
jsgz=$(gzip -9c pkg/web/opfs_media.js | wc -c)
echo "[build] pkg/ ready: wasm ${wasm} B (${gz} B gzipped), js ${jsgz} B gzipped"
