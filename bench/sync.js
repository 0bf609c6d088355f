// Sync benchmark: MediaSyncService uploading a library to the reference server, against a
// plain-JS fetch pool doing the same uploads (same OPFS files, same headers, same
// concurrency) in the same page and run. Each run uses a fresh user (and, for the library,
// freshly imported assets), so every run uploads everything; runs alternate baseline/library.
import init, { MediaLibrary, MediaSyncService } from '../pkg/sync/opfs_media.js';

const params = new URLSearchParams(location.search);
const API = params.get('api');
const RUNS = Number(params.get('runs') ?? 3);
const BIG_MB = Number(params.get('bigMb') ?? 200);
const SMALL_N = Number(params.get('smallN') ?? 1000);
const SMALL_KB = Number(params.get('smallKb') ?? 100);
const CONC = Number(params.get('concurrency') ?? 4);

function makeBytes(n, seed) {
  const b = new Uint8Array(n);
  let x = seed | 1;
  for (let i = 0; i < n; i += 4) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b[i] = x; b[i + 1] = x >> 8; b[i + 2] = x >> 16; b[i + 3] = x >> 24; }
  return b;
}
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
let userSeq = 0;
const freshUser = () => `bench-${Date.now()}-${userSeq++}`;

const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');

// The plain-JS baseline: a pool of CONC workers POSTing each file with the protocol's headers.
// Imports carry no checksum (the library computes it before the upload), so the baseline
// hashes too, the plain way: the whole file into memory, then WebCrypto's native digest.
async function plainUpload(items, user) {
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const { file } = items[next++];
      const sha256 = hex(await crypto.subtle.digest('SHA-256', await file.arrayBuffer()));
      const r = await fetch(`${API}/api/media/assets`, {
        method: 'POST', body: file,
        headers: { Authorization: `Bearer dev:${user}`, 'Content-Type': file.type, 'X-Asset-Id': crypto.randomUUID(),
          'X-Asset-Name': encodeURIComponent(file.name), 'X-Content-SHA256': sha256 },
      });
      if (!r.ok) throw new Error(`baseline upload: HTTP ${r.status} ${await r.text()}`);
      await r.json();
    }
  }
  await Promise.all(Array.from({ length: CONC }, worker));
}

async function importAll(lib, files) {
  for (const a of await lib.list()) await lib.delete(a.id);
  for (const f of files) await lib.importFile(f);
  const assets = await lib.list();
  return Promise.all(assets.map(async (a) => ({ file: await lib.getFile(a.id) })));
}

async function librarySync(user) {
  const sync = new MediaSyncService({
    apiBaseUrl: API, getUserId: () => user, getAuthToken: () => `dev:${user}`,
    autoSync: false, library: 'syncbench', concurrency: CONC, timeoutMs: 600000,
  });
  try { await sync.syncNow(); } finally { sync.dispose(); }
}

async function timeIt(fn) { const t = performance.now(); await fn(); return performance.now() - t; }

// Main-thread stalls during a run (Long Tasks API, Chromium): count and the longest, in ms.
async function watchingLongTasks(fn) {
  const tasks = [];
  const obs = typeof PerformanceObserver !== 'undefined' && PerformanceObserver.supportedEntryTypes?.includes('longtask')
    ? new PerformanceObserver((l) => tasks.push(...l.getEntries().map((e) => e.duration))) : null;
  obs?.observe({ type: 'longtask' });
  const ms = await timeIt(fn);
  obs?.disconnect();
  return { ms, longTasks: tasks.length, longestTaskMs: Math.max(0, ...tasks) };
}

async function workload(label, files, lib) {
  const base = [], ours = [], stalls = [];
  for (let run = -1; run < RUNS; run++) { // one warm-up of each, not recorded
    const items = await importAll(lib, files);
    const b = await timeIt(() => plainUpload(items, freshUser()));
    const { ms: o, longTasks, longestTaskMs } = await watchingLongTasks(() => librarySync(freshUser()));
    if (run >= 0) stalls.push({ longTasks, longestTaskMs });
    const pending = (await lib.list()).filter((a) => a.syncStatus !== 'synced');
    if (pending.length) throw new Error(`${pending.length} assets not synced after syncNow()`);
    if (run >= 0) { base.push(b); ours.push(o); }
  }
  const ratios = ours.map((o, i) => o / base[i]);
  return { label, runs: RUNS, concurrency: CONC, baselineMs: median(base), libraryMs: median(ours), ratio: median(ours) / median(base),
    ratioMin: Math.min(...ratios), ratioMax: Math.max(...ratios), baselineAll: base, libraryAll: ours,
    libraryLongTasks: stalls };
}

async function main() {
  await init();
  const lib = await MediaLibrary.open({ name: 'syncbench', storage: 'opfs' });
  const small = Array.from({ length: SMALL_N }, (_, i) => new File([makeBytes(SMALL_KB * 1024, i + 1)], `s${i}.png`, { type: 'image/png' }));
  const rows = [await workload(`${SMALL_N} files x ${SMALL_KB} KB`, small, lib)];
  const big = [new File([makeBytes(BIG_MB * 1024 * 1024, 7)], 'big.bin', { type: 'application/octet-stream' })];
  rows.push(await workload(`1 file x ${BIG_MB} MB`, big, lib));
  for (const a of await lib.list()) await lib.delete(a.id);
  window.__benchResult = { userAgent: navigator.userAgent, rows };
  document.getElementById('out').textContent = JSON.stringify(window.__benchResult, null, 1);
}
main().catch((e) => { window.__benchError = String(e?.stack ?? e); document.getElementById('out').textContent = window.__benchError; });
