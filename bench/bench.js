// Import benchmark: opfs-media's importFile against plain JS doing the same job in the same
// page and run, the fastest plain way: createWritable().write(file) (the browser copies the
// Blob itself; measured faster than file.stream().pipeTo(writable)) + one IndexedDB put per file.
// Runs alternate (baseline, library, baseline, ...) so drift hits both equally.
import init, { MediaLibrary } from '../pkg/web/opfs_media.js';

const params = new URLSearchParams(location.search);
const RUNS = Number(params.get('runs') ?? 5);
const BIG_MB = Number(params.get('bigMb') ?? 100);
const SMALL_N = Number(params.get('smallN') ?? 500);
const SMALL_KB = Number(params.get('smallKb') ?? 100);

function makeBytes(n, seed) {
  const b = new Uint8Array(n);
  let x = seed | 1;
  for (let i = 0; i < n; i += 4) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b[i] = x; b[i + 1] = x >> 8; b[i + 2] = x >> 16; b[i + 3] = x >> 24; }
  return b;
}

function openDb(name) {
  return new Promise((ok, err) => {
    const r = indexedDB.open(name, 1);
    r.onupgradeneeded = () => r.result.createObjectStore('assets', { keyPath: 'id' });
    r.onsuccess = () => ok(r.result);
    r.onerror = () => err(r.error);
  });
}

// The plain-JS baseline: what an app would write by hand, the fastest way it can.
async function plainImport(dir, db, file) {
  const id = crypto.randomUUID();
  const handle = await dir.getFileHandle(id, { create: true });
  const writable = await handle.createWritable();
  await writable.write(file);
  await writable.close();
  await new Promise((ok, err) => {
    const tx = db.transaction('assets', 'readwrite');
    tx.objectStore('assets').put({ id, handleName: id, name: file.name, type: file.type, size: file.size, createdAt: Date.now(), updatedAt: Date.now() });
    tx.oncomplete = ok; tx.onerror = () => err(tx.error); tx.onabort = () => err(tx.error);
  });
  return id;
}

async function clearDir(dir) {
  const names = [];
  for await (const name of dir.keys()) names.push(name);
  for (const n of names) await dir.removeEntry(n);
}

async function timeIt(fn) { const t = performance.now(); await fn(); return performance.now() - t; }
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

async function workload(label, files, lib, dir, db) {
  const base = [], ours = [];
  // One warm-up of each, not recorded.
  for (let run = -1; run < RUNS; run++) {
    const b = await timeIt(async () => { for (const f of files) await plainImport(dir, db, f); });
    await clearDir(dir);
    const o = await timeIt(async () => { for (const f of files) await lib.importFile(f); });
    for (const a of await lib.list()) await lib.delete(a.id);
    if (run >= 0) { base.push(b); ours.push(o); }
  }
  const ratios = ours.map((o, i) => o / base[i]);
  return { label, runs: RUNS, baselineMs: median(base), libraryMs: median(ours), ratio: median(ours) / median(base),
    ratioMin: Math.min(...ratios), ratioMax: Math.max(...ratios), baselineAll: base, libraryAll: ours };
}

async function main() {
  await init();
  const out = document.getElementById('out');
  const root = await navigator.storage.getDirectory();
  const dir = await root.getDirectoryHandle('bench-plain', { create: true });
  await clearDir(dir);
  const db = await openDb('bench-plain');
  const lib = await MediaLibrary.open({ name: 'bench', storage: 'opfs' });
  for (const a of await lib.list()) await lib.delete(a.id);

  const big = [new File([makeBytes(BIG_MB * 1024 * 1024, 7)], 'big.bin', { type: 'application/octet-stream' })];
  const small = Array.from({ length: SMALL_N }, (_, i) => new File([makeBytes(SMALL_KB * 1024, i + 1)], `s${i}.bin`, { type: 'image/png' }));
  const rows = [];
  rows.push(await workload(`1 file x ${BIG_MB} MB`, big, lib, dir, db));
  out.textContent = JSON.stringify(rows, null, 1);
  rows.push(await workload(`${SMALL_N} files x ${SMALL_KB} KB`, small, lib, dir, db));
  window.__benchResult = { userAgent: navigator.userAgent, rows };
  out.textContent = JSON.stringify(window.__benchResult, null, 1);
}
main().catch((e) => { window.__benchError = String(e?.stack ?? e); document.getElementById('out').textContent = window.__benchError; });
