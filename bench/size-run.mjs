// Package size (issues 14 and 23): what a browser downloads for each entry point of the npm package,
// the .wasm and its JS glue, each gzipped at level 9 (what a server's gzip -9 would send).
// Reads the build of scripts/build-pkg.sh (pkg/web = `opfs-media`, pkg/sync = `opfs-media/sync`);
// a size, not a timing, so one run is exact. Prints a table, writes target/bench/size.json.
// Usage: node bench/size-run.mjs [--pkg pkg]
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const arg = (k, d) => { const i = process.argv.indexOf(k); return i > 0 ? process.argv[i + 1] : d; };
const PKG = arg('--pkg', 'pkg');
const KB = 1024;
// Targets of issue 23 (issue 14's were 100 / 160 KB), gzipped .wasm + JS glue.
const ENTRIES = [
  { entry: 'opfs-media', dir: 'web', targetKB: 120 },
  { entry: 'opfs-media/sync', dir: 'sync', targetKB: 200 },
];

const gz = (path) => gzipSync(readFileSync(path), { level: 9 }).length;
const rows = ENTRIES.map(({ entry, dir, targetKB }) => {
  const wasm = join(PKG, dir, 'opfs_media_bg.wasm');
  const js = join(PKG, dir, 'opfs_media.js');
  if (!existsSync(wasm) || !existsSync(js)) throw new Error(`${wasm} or ${js} is missing: run scripts/build-pkg.sh first`);
  const wasmGz = gz(wasm);
  const jsGz = gz(js);
  const total = wasmGz + jsGz;
  return { entry, wasmBytes: readFileSync(wasm).length, wasmGz, jsGz, total, targetBytes: targetKB * KB, met: total <= targetKB * KB };
});

const kb = (b) => `${(b / KB).toFixed(1)} KB`;
console.log('\n| entry point | wasm gz | js gz | total | target | |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const r of rows) {
  console.log(`| ${r.entry} | ${kb(r.wasmGz)} | ${kb(r.jsGz)} | ${kb(r.total)} | <= ${kb(r.targetBytes)} | ${r.met ? 'met' : 'MISSED'} |`);
}
console.log('(gzip level 9 of pkg/<dir>/opfs_media_bg.wasm and opfs_media.js; 1 KB = 1024 B)');
mkdirSync('target/bench', { recursive: true });
writeFileSync('target/bench/size.json', JSON.stringify({ date: new Date().toISOString(), gzipLevel: 9, rows }, null, 2));
console.log('wrote target/bench/size.json');
