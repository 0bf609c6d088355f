#!/usr/bin/env bash
# Builds the npm package into pkg/: release wasm -> wasm-bindgen (web target) -> wasm-opt
# (binaryen from npm; wasm-pack's own download does not work offline) + pkg-template/.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-wasm-release}
OUT_DIR=$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
rm -rf pkg && mkdir -p pkg
# Two builds of one crate: `opfs-media` (the local library) and `opfs-media/sync` (the same
# plus MediaSyncService), so apps that only keep media locally do not download the sync code.
# Panic locations name the source file: drop the registry's long directory prefix from them
# (bytes in every package; this is rustc's stable `--remap-path-prefix`, nothing else changes).
# The standard library's own paths (/rustc/<commit>/library/...) are shortened the same way.
remap=" --remap-path-prefix=/rustc/$(rustc -vV | sed -n 's/^commit-hash: //p')/="
for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
  [ -d "$d" ] && remap="$remap --remap-path-prefix=$d="
done
# (Not for PROFILE=dev: changed flags would rebuild the test builds' cache.)
[ "$PROFILE" = dev ] || export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS:-}$remap"
build() { # out-dir cargo-feature-args...
  local out=$1; shift
  cargo build --lib --target wasm32-unknown-unknown --profile "$PROFILE" "$@"
  wasm-bindgen --target web --out-dir "pkg/$out" target/wasm32-unknown-unknown/"$OUT_DIR"/opfs_media.wasm
  node scripts/slim-glue.mjs "pkg/$out/opfs_media.js"
  if [ "$PROFILE" != dev ] && [ -x node_modules/.bin/wasm-opt ]; then
    node_modules/.bin/wasm-opt -Oz --strip-producers --enable-bulk-memory --enable-nontrapping-float-to-int \
      --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
      "pkg/$out/opfs_media_bg.wasm" -o "pkg/$out/opfs_media_bg.wasm"
  fi
}
build web --no-default-features
build sync
cp -r pkg-template/. pkg/
cp LICENSE pkg/ 2>/dev/null || true
for out in web sync; do
  wasm=$(stat -c %s "pkg/$out/opfs_media_bg.wasm"); gz=$(gzip -9c "pkg/$out/opfs_media_bg.wasm" | wc -c)
  jsgz=$(gzip -9c "pkg/$out/opfs_media.js" | wc -c)
  echo "[build] pkg/$out: wasm ${wasm} B (${gz} B gzipped), js ${jsgz} B gzipped, total $(( (gz + jsgz) / 1024 )) KB gzipped"
done
