// The sync benchmark's workload, shared by the page (bench/sync.js) and the dedicated worker
// (bench/sync-worker.js): MediaSyncService uploading a library to the reference server,
// against a plain-JS fetch pool doing the same uploads (same OPFS files, same headers, same
// concurrency) in the same context and run. Each run uses a fresh user (and, for the
// library, freshly imported assets), so every run uploads everything; runs alternate
// baseline/library. While the library runs, IndexedDB transactions, BroadcastChannel posts
// and fetches are counted (per asset in the table), to see where time goes.
import init, { MediaLibrary, MediaSyncService } from '../pkg/sync/opfs_media.js';

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

// Counts calls of a few platform methods while `on` is set (prototype wrappers: the
// library's wasm-bindgen glue calls these methods by name on the objects).
const counts = { idbTransactions: 0, channelPosts: 0, fetches: 0 };
let counting = false;
function wrap(proto, name, key) {
  if (!proto || typeof proto[name] !== 'function') return;
  const orig = proto[name];
  proto[name] = function (...a) { if (counting) counts[key]++; return orig.apply(this, a); };
}
wrap(globalThis.IDBDatabase?.prototype, 'transaction', 'idbTransactions');
wrap(globalThis.BroadcastChannel?.prototype, 'postMessage', 'channelPosts');
// Requests in flight over time (both runs): their mean over a run shows idle request slots.
const flight = { now: 0, since: 0, area: 0 };
function inFlight(d) { const t = performance.now(); flight.area += flight.now * (t - flight.since); flight.since = t; flight.now += d; }
function meanInFlight(fn) {
  return async () => { flight.area = 0; flight.since = performance.now(); const t0 = flight.since; await fn(); inFlight(0); return flight.area / (performance.now() - t0); };
}
{
  const orig = globalThis.fetch;
  globalThis.fetch = function (...a) {
    if (counting) counts.fetches++;
    inFlight(1);
    const done = () => inFlight(-1);
    const r = orig.apply(this, a);
    r.then(done, done);
    return r;
  };
}

// The plain-JS baseline: a pool of CONC workers POSTing each file with the protocol's headers.
// Imports carry no checksum (the library computes it before the upload), so the baseline
// hashes too, the plain way: the whole file into memory, then WebCrypto's native digest.
async function plainUpload(api, items, user, conc) {
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const { file } = items[next++];
      const sha256 = hex(await crypto.subtle.digest('SHA-256', await file.arrayBuffer()));
      const r = await fetch(`${api}/api/media/assets`, {
        method: 'POST', body: file,
        headers: { Authorization: `Bearer dev:${user}`, 'Content-Type': file.type, 'X-Asset-Id': crypto.randomUUID(),
          'X-Asset-Name': encodeURIComponent(file.name), 'X-Content-SHA256': sha256 },
      });
      if (!r.ok) throw new Error(`baseline upload: HTTP ${r.status} ${await r.text()}`);
      await r.json();
    }
  }
  await Promise.all(Array.from({ length: conc }, worker));
}

async function importAll(lib, files) {
  for (const a of await lib.list()) await lib.delete(a.id);
  for (const f of files) await lib.importFile(f);
  const assets = await lib.list();
  return Promise.all(assets.map(async (a) => ({ file: await lib.getFile(a.id) })));
}

async function librarySync(api, user, conc, profile) {
  const sync = new MediaSyncService({
    apiBaseUrl: api, getUserId: () => user, getAuthToken: () => `dev:${user}`,
    autoSync: false, library: 'syncbench', concurrency: conc, timeoutMs: 600000,
  });
  // With `profile`, a DevTools client attached to this context records the run's CPU profile.
  if (profile) console.profile('library sync');
  try { await sync.syncNow(); } finally { sync.dispose(); if (profile) console.profileEnd('library sync'); }
}

async function timeIt(fn) { const t = performance.now(); await fn(); return performance.now() - t; }

// Main-thread stalls during a run (Long Tasks API, Chromium, pages only): count and the longest, in ms.
async function watchingLongTasks(fn) {
  const tasks = [];
  const obs = typeof PerformanceObserver !== 'undefined' && PerformanceObserver.supportedEntryTypes?.includes('longtask')
    ? new PerformanceObserver((l) => tasks.push(...l.getEntries().map((e) => e.duration))) : null;
  obs?.observe({ type: 'longtask' });
  const ms = await timeIt(fn);
  obs?.disconnect();
  return { ms, longTasks: obs ? tasks.length : null, longestTaskMs: obs ? Math.max(0, ...tasks) : null };
}

async function workload(p, label, files, lib) {
  const base = [], ours = [], stalls = [], perAsset = [];
  for (let run = -1; run < p.runs; run++) { // one warm-up of each, not recorded
    const items = await importAll(lib, files);
    let baseFlight = 0, libFlight = 0;
    const b = await timeIt(async () => { if (p.profile) console.profile('fetch pool');
      baseFlight = await meanInFlight(() => plainUpload(p.api, items, freshUser(), p.concurrency))();
      if (p.profile) console.profileEnd('fetch pool');
    });
    Object.keys(counts).forEach((k) => { counts[k] = 0; });
    counting = true;
    const { ms: o, longTasks, longestTaskMs } = await watchingLongTasks(async () => { libFlight = await meanInFlight(() => librarySync(p.api, freshUser(), p.concurrency, p.profile))(); });
    counting = false;
    if (run >= 0) {
      stalls.push({ longTasks, longestTaskMs });
      perAsset.push({ ...Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v / files.length])), baseInFlight: baseFlight, libInFlight: libFlight });
    }
    const pending = (await lib.list()).filter((a) => a.syncStatus !== 'synced');
    if (pending.length) throw new Error(`${pending.length} assets not synced after syncNow()`);
    if (run >= 0) { base.push(b); ours.push(o); }
  }
  const ratios = ours.map((o, i) => o / base[i]);
  return { label, runs: p.runs, concurrency: p.concurrency, baselineMs: median(base), libraryMs: median(ours), ratio: median(ours) / median(base),
    ratioMin: Math.min(...ratios), ratioMax: Math.max(...ratios), baselineAll: base, libraryAll: ours,
    libraryLongTasks: stalls, perAsset: perAsset[perAsset.length >> 1] };
}

/// Runs the workloads in this context; `p`: { api, runs, bigMb, smallN, smallKb, concurrency, workloads }.
export async function runSyncBench(p) {
  await init();
  const lib = await MediaLibrary.open({ name: 'syncbench', storage: 'opfs' });
  const rows = [];
  if (p.workloads.includes('small')) {
    const small = Array.from({ length: p.smallN }, (_, i) => new File([makeBytes(p.smallKb * 1024, i + 1)], `s${i}.png`, { type: 'image/png' }));
    rows.push(await workload(p, `${p.smallN} files x ${p.smallKb} KB`, small, lib));
  }
  if (p.workloads.includes('big')) {
    const big = [new File([makeBytes(p.bigMb * 1024 * 1024, 7)], 'big.bin', { type: 'application/octet-stream' })];
    rows.push(await workload(p, `1 file x ${p.bigMb} MB`, big, lib));
  }
  for (const a of await lib.list()) await lib.delete(a.id);
  return rows;
}

export function paramsFrom(search) {
  const q = new URLSearchParams(search);
  return {
    api: q.get('api'), runs: Number(q.get('runs') ?? 3), bigMb: Number(q.get('bigMb') ?? 200),
    smallN: Number(q.get('smallN') ?? 1000), smallKb: Number(q.get('smallKb') ?? 100),
    concurrency: Number(q.get('concurrency') ?? 4), workloads: (q.get('workloads') ?? 'small,big').split(','),
    contexts: (q.get('contexts') ?? 'worker,page').split(','), profile: q.get('profile') === '1',
  };
}
