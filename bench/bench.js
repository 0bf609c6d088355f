// Import and list benchmark (issue 14), run by bench/run.mjs in a page (bench/index.html) and
// in a dedicated worker (bench/import-worker.js) alike: every row is opfs-media against the
// fastest plain-JS way of doing the same job, or against a peer library (Dexie, idb-keyval)
// storing the same blobs, measured in the same context and run. Runs alternate (baseline,
// library, baseline, ...) so drift hits both; the first of each is a warm-up, not recorded.
import init, { MediaLibrary } from '../pkg/web/opfs_media.js';
import Dexie from '../node_modules/dexie/dist/dexie.mjs';
import * as idbKeyval from '../node_modules/idb-keyval/dist/index.js';

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const now = () => performance.now();
async function timeIt(fn) { const t = now(); await fn(); return now() - t; }

function makeBytes(n, seed) {
  const b = new Uint8Array(n);
  let x = seed | 1;
  for (let i = 0; i < n; i += 4) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b[i] = x; b[i + 1] = x >> 8; b[i + 2] = x >> 16; b[i + 3] = x >> 24; }
  return b;
}

const req = (r) => new Promise((ok, err) => { r.onsuccess = () => ok(r.result); r.onerror = () => err(r.error); });
const txDone = (tx) => new Promise((ok, err) => { tx.oncomplete = ok; tx.onerror = () => err(tx.error); tx.onabort = () => err(tx.error ?? new Error('aborted')); });

function openDb(name) {
  const r = indexedDB.open(name, 1);
  r.onupgradeneeded = () => r.result.createObjectStore('assets', { keyPath: 'id' });
  return req(r);
}

const meta = (id, file) => ({ id, handleName: id, name: file.name, type: file.type, size: file.size, createdAt: Date.now(), updatedAt: Date.now() });

// Plain JS, the fastest way we found: the browser copies the Blob into the file itself
// (`createWritable().write(file)`, faster than `file.stream().pipeTo(writable)`), then one
// IndexedDB put of the record.
async function plainImport(dir, db, file) {
  const id = crypto.randomUUID();
  const handle = await dir.getFileHandle(id, { create: true });
  const writable = await handle.createWritable();
  await writable.write(file);
  await writable.close();
  const tx = db.transaction('assets', 'readwrite');
  tx.objectStore('assets').put(meta(id, file));
  await txDone(tx);
  return id;
}

// Plain JS in a dedicated worker, the other way there: a sync access handle, bytes through
// an ArrayBuffer in JS memory, then the same put.
async function plainImportSyncHandle(dir, db, file) {
  const id = crypto.randomUUID();
  const handle = await dir.getFileHandle(id, { create: true });
  const sync = await handle.createSyncAccessHandle();
  try { sync.write(new Uint8Array(await file.arrayBuffer()), { at: 0 }); sync.flush(); } finally { sync.close(); }
  const tx = db.transaction('assets', 'readwrite');
  tx.objectStore('assets').put(meta(id, file));
  await txDone(tx);
  return id;
}

async function clearDir(dir) {
  const names = [];
  for await (const name of dir.keys()) names.push(name);
  for (const n of names) await dir.removeEntry(n, { recursive: true });
}

async function clearStore(db) {
  const tx = db.transaction('assets', 'readwrite');
  tx.objectStore('assets').clear();
  await txDone(tx);
}

// A fresh library per timed run (opening and deleting are not timed).
let libSeq = 0;
async function freshLibrary(ctx) {
  const name = `bench-${ctx}-${++libSeq}`;
  return MediaLibrary.open({ name, storage: 'opfs' });
}
async function dropLibrary(lib) {
  const name = lib.name;
  lib.close();
  await req(indexedDB.deleteDatabase(`opfs-media:${name}`)).catch(() => {});
  const root = await navigator.storage.getDirectory();
  const top = await root.getDirectoryHandle('opfs-media', { create: true });
  await top.removeEntry(name, { recursive: true }).catch(() => {});
}

// Runs `variants` (name -> async () => ms) alternately `runs` times after one warm-up each.
async function alternate(runs, variants) {
  const times = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  for (let run = -1; run < runs; run++) {
    for (const [k, fn] of Object.entries(variants)) {
      const ms = await fn();
      if (run >= 0) times[k].push(ms);
    }
  }
  return times;
}

// One table row: the library's times against the baseline's, run by run.
function row(context, workload, baselineName, base, ours, target) {
  const ratios = ours.map((o, i) => o / base[i]);
  return { context, workload, baselineName, baselineMs: median(base), libraryMs: median(ours), ratio: median(ours) / median(base),
    ratioMin: Math.min(...ratios), ratioMax: Math.max(...ratios), runs: ours.length, target, baselineAll: base, libraryAll: ours };
}

// The faster of several baselines measured in the same runs (by median), named.
function fastest(times, names) {
  return names.map((n) => [n, times[n]]).sort((a, b) => median(a[1]) - median(b[1]))[0];
}

async function importRows(p, ctx, dir, db) {
  const rows = [];
  const inWorker = typeof WorkerGlobalScope !== 'undefined';
  const big = [new File([makeBytes(p.bigMb * 1024 * 1024, 7)], 'big.bin', { type: 'application/octet-stream' })];
  const small = Array.from({ length: p.smallN }, (_, i) => new File([makeBytes(p.smallKb * 1024, i + 1)], `s${i}.bin`, { type: 'image/png' }));

  const plain = (files, how) => async () => {
    const ms = await timeIt(async () => { for (const f of files) await how(dir, db, f); });
    await clearDir(dir); await clearStore(db);
    return ms;
  };
  const withLib = (fn) => async () => {
    const lib = await freshLibrary(ctx);
    const ms = await timeIt(() => fn(lib));
    await dropLibrary(lib);
    return ms;
  };
  const oneByOne = (files) => withLib(async (lib) => { for (const f of files) await lib.importFile(f); });
  const batch = (files) => withLib(async (lib) => {
    const out = await lib.importFiles(files);
    const failed = out.filter((r) => r.error);
    if (failed.length) throw failed[0].error;
  });

  // (a) one big file.
  const bigPlain = { 'createWritable().write(file) + IndexedDB put': plain(big, plainImport) };
  if (inWorker) bigPlain['syncAccessHandle.write(arrayBuffer) + IndexedDB put'] = plain(big, plainImportSyncHandle);
  let t = await alternate(p.runs, { ...bigPlain, lib: oneByOne(big) });
  let [name, base] = fastest(t, Object.keys(bigPlain));
  rows.push(row(ctx, `importFile, 1 x ${p.bigMb} MB`, name, base, t.lib, { max: 1.05 }));
  p.progress?.(rows);

  // (b) many small files: the batch, and one by one, against a plain loop.
  const smallPlain = { [`loop: createWritable().write(file) + IndexedDB put, per file`]: plain(small, plainImport) };
  if (inWorker) smallPlain['loop: syncAccessHandle.write(arrayBuffer) + IndexedDB put, per file'] = plain(small, plainImportSyncHandle);
  t = await alternate(p.runs, { ...smallPlain, batch: batch(small), single: oneByOne(small) });
  [name, base] = fastest(t, Object.keys(smallPlain));
  rows.push(row(ctx, `importFiles (batch), ${p.smallN} x ${p.smallKb} KB`, name, base, t.batch, { max: 1.0 }));
  rows.push(row(ctx, `importFile one by one, ${p.smallN} x ${p.smallKb} KB`, name, base, t.single, null));

  // (c) peers a user would pick instead for small media: the same blobs with their metadata
  // in IndexedDB, with each library's own batch call.
  const dexie = new Dexie(`bench-dexie-${ctx}`);
  dexie.version(1).stores({ assets: 'id' });
  await dexie.open();
  // The same with the guarantee opfs-media gives (a strict commit), to tell durability's part.
  const dexieStrict = new Dexie(`bench-dexie-strict-${ctx}`, { chromeTransactionDurability: 'strict' });
  dexieStrict.version(1).stores({ assets: 'id' });
  await dexieStrict.open();
  const kv = idbKeyval.createStore(`bench-kv-${ctx}`, 'assets');
  const records = () => small.map((f) => ({ ...meta(crypto.randomUUID(), f), blob: f }));
  t = await alternate(p.runs, {
    dexie: async () => { const r = records(); const ms = await timeIt(() => dexie.table('assets').bulkPut(r)); await dexie.table('assets').clear(); return ms; },
    dexieStrict: async () => { const r = records(); const ms = await timeIt(() => dexieStrict.table('assets').bulkPut(r)); await dexieStrict.table('assets').clear(); return ms; },
    kv: async () => { const r = records(); const ms = await timeIt(() => idbKeyval.setMany(r.map((x) => [x.id, x]), kv)); await idbKeyval.clear(kv); return ms; },
    batch: batch(small),
  });
  rows.push(row(ctx, `importFiles vs peer, ${p.smallN} x ${p.smallKb} KB`, 'Dexie 4 bulkPut (blob + metadata)', t.dexie, t.batch, { max: 1.0, strict: true }));
  rows.push(row(ctx, `importFiles vs peer, ${p.smallN} x ${p.smallKb} KB`, 'Dexie 4 bulkPut, durability strict', t.dexieStrict, t.batch, null));
  rows.push(row(ctx, `importFiles vs peer, ${p.smallN} x ${p.smallKb} KB`, 'idb-keyval setMany (blob + metadata)', t.kv, t.batch, null));
  dexie.close();
  dexieStrict.close();
  return rows;
}

// (d) list: the library's records (planted as the library writes them: one real import,
// copied with new ids) against raw `getAll` over the same store, and the same records in
// Dexie and idb-keyval.
async function listRows(p, ctx) {
  const rows = [];
  const lib = await freshLibrary(ctx);
  const template = await lib.importFile(new File([new Uint8Array(10)], 'template.png', { type: 'image/png' }));
  const ids = Array.from({ length: p.listN }, () => crypto.randomUUID());
  const recs = ids.map((id, i) => ({ ...template, id, handleName: id, name: `photo-${i}.jpg`, size: 100_000 + i, createdAt: template.createdAt + i, updatedAt: template.createdAt + i, tags: i % 3 ? ['holiday'] : [] }));
  const raw = await req(indexedDB.open(`opfs-media:${lib.name}`));
  let tx = raw.transaction('assets', 'readwrite');
  for (const r of recs) tx.objectStore('assets').put(r);
  await txDone(tx);
  const dexie = new Dexie(`bench-dexie-list-${ctx}`);
  dexie.version(1).stores({ assets: 'id' });
  await dexie.open();
  await dexie.table('assets').clear();
  await dexie.table('assets').bulkPut(recs);
  const kv = idbKeyval.createStore(`bench-kv-list-${ctx}`, 'assets');
  await idbKeyval.clear(kv);
  await idbKeyval.setMany(recs.map((r) => [r.id, r]), kv);
  const n = p.listN + 1;
  const check = (xs) => { if (xs.length !== n && xs.length !== p.listN) throw new Error(`listed ${xs.length}, expected ${n}`); };
  const t = await alternate(p.runs, {
    raw: () => timeIt(async () => { const t2 = raw.transaction('assets', 'readonly'); check(await req(t2.objectStore('assets').getAll())); }),
    lib: () => timeIt(async () => check(await lib.list())),
    dexie: () => timeIt(async () => check(await dexie.table('assets').toArray())),
    kvValues: () => timeIt(async () => check(await idbKeyval.values(kv))),
    kvEntries: () => timeIt(async () => check(await idbKeyval.entries(kv))),
  });
  rows.push(row(ctx, `list ${p.listN} assets`, 'raw IndexedDB getAll()', t.raw, t.lib, { max: 1.5 }));
  rows.push(row(ctx, `list ${p.listN} assets vs peer`, 'Dexie 4 toArray()', t.dexie, t.lib, null));
  rows.push(row(ctx, `list ${p.listN} assets vs peer`, 'idb-keyval values()', t.kvValues, t.lib, null));
  rows.push(row(ctx, `list ${p.listN} assets vs peer`, 'idb-keyval entries()', t.kvEntries, t.lib, null));
  raw.close();
  dexie.close();
  await dropLibrary(lib);
  return rows;
}

// (e) small files (issue 23): where IndexedDB beats OPFS as an asset's home. The same library
// code with every file in OPFS (`smallFileBytes: 0`) against every file in IndexedDB (the
// largest threshold): `importFile` one by one, then `getFile` + `arrayBuffer()` of each, per
// size. A ratio below 1 means the IndexedDB home is faster at that size.
const CROSSOVER_KB = [4, 16, 64, 256, 1024, 4096];
async function crossoverRows(p, ctx) {
  const rows = [];
  for (const kb of CROSSOVER_KB) {
    const n = Math.max(8, Math.min(50, Math.floor((32 * 1024) / kb)));
    const files = Array.from({ length: n }, (_, i) => new File([makeBytes(kb * 1024, i + 3)], `c${i}.bin`, { type: 'image/png' }));
    const home = (smallFileBytes) => async () => {
      const lib = await MediaLibrary.open({ name: `bench-${ctx}-${++libSeq}`, storage: 'opfs', smallFileBytes });
      const ids = [];
      const imp = await timeIt(async () => { for (const f of files) ids.push((await lib.importFile(f)).id); });
      const read = await timeIt(async () => { for (const id of ids) await (await lib.getFile(id)).arrayBuffer(); });
      await dropLibrary(lib);
      return [imp, read];
    };
    const t = await alternate(p.runs, { opfs: home(0), idb: home(64 * 1024 * 1024) });
    const pick = (k, i) => t[k].map((x) => x[i] / n);
    rows.push(row(ctx, `crossover: importFile, ${n} x ${kb} KB (ms per file)`, 'same library, OPFS home (smallFileBytes: 0)', pick('opfs', 0), pick('idb', 0), null));
    rows.push(row(ctx, `crossover: getFile+arrayBuffer, ${n} x ${kb} KB (ms/file)`, 'same library, OPFS home (smallFileBytes: 0)', pick('opfs', 1), pick('idb', 1), null));
    p.progress?.(rows);
  }
  return rows;
}

// (f) one `getFile` of a 10 KB asset (the default home: IndexedDB) against the plain-JS ways
// to get the same bytes and record in the same context: one IndexedDB transaction reading the
// record and the blob; and an OPFS file (`getFileHandle` + `getFile`) plus an IndexedDB get of
// the record. Reads cycle over 100 assets; each timed run does `reads` of them one at a time.
async function readRows(p, ctx, dir) {
  const rows = [];
  const n = 100, reads = 2000;
  const lib = await MediaLibrary.open({ name: `bench-${ctx}-${++libSeq}` });
  const libOpfs = await MediaLibrary.open({ name: `bench-${ctx}-${++libSeq}`, smallFileBytes: 0 });
  const files = Array.from({ length: n }, (_, i) => new File([makeBytes(10 * 1024, i + 5)], `r${i}.png`, { type: 'image/png' }));
  const ids = (await lib.importFiles(files)).map((r) => r.id);
  const idsOpfs = (await libOpfs.importFiles(files)).map((r) => r.id);
  if ((await lib.get(ids[0])).storage !== 'indexeddb') throw new Error('a 10 KB asset is not in IndexedDB by default');
  const r = indexedDB.open(`bench-plain-read-${ctx}`, 1);
  r.onupgradeneeded = () => { r.result.createObjectStore('assets', { keyPath: 'id' }); r.result.createObjectStore('blobs'); };
  const db = await req(r);
  const plainIds = files.map(() => crypto.randomUUID());
  let tx = db.transaction(['assets', 'blobs'], 'readwrite');
  files.forEach((f, i) => { tx.objectStore('assets').put(meta(plainIds[i], f)); tx.objectStore('blobs').put(f, plainIds[i]); });
  await txDone(tx);
  for (const [i, f] of files.entries()) {
    const w = await (await dir.getFileHandle(plainIds[i], { create: true })).createWritable();
    await w.write(f);
    await w.close();
  }
  const each = async (list, fn) => timeIt(async () => { for (let i = 0; i < reads; i++) await fn(list[i % n]); });
  const check = (b) => { if (b.size !== 10 * 1024) throw new Error(`read ${b.size} bytes`); };
  const t = await alternate(p.runs, {
    idb: () => each(plainIds, async (id) => {
      const t2 = db.transaction(['assets', 'blobs'], 'readonly');
      const [rec, blob] = await Promise.all([req(t2.objectStore('assets').get(id)), req(t2.objectStore('blobs').get(id))]);
      if (!rec) throw new Error('no record');
      check(blob);
    }),
    opfs: () => each(plainIds, async (id) => {
      const [file, rec] = await Promise.all([dir.getFileHandle(id).then((h) => h.getFile()), req(db.transaction('assets').objectStore('assets').get(id))]);
      if (!rec) throw new Error('no record');
      check(file);
    }),
    lib: () => each(ids, async (id) => check(await lib.getFile(id))),
    libOpfs: () => each(idsOpfs, async (id) => check(await libOpfs.getFile(id))),
  });
  const per = (xs) => xs.map((x) => x / reads);
  rows.push(row(ctx, 'one getFile, 10 KB asset (IndexedDB home; ms/read)', 'IndexedDB get of record + blob, one transaction', per(t.idb), per(t.lib), { max: 1.2 }));
  rows.push(row(ctx, 'one getFile, 10 KB asset (IndexedDB home; ms/read)', 'getFileHandle + getFile + IndexedDB get of record', per(t.opfs), per(t.lib), { max: 1.2 }));
  rows.push(row(ctx, 'one getFile, 10 KB asset (OPFS home; ms/read)', 'getFileHandle + getFile + IndexedDB get of record', per(t.opfs), per(t.libOpfs), { max: 1.2 }));
  db.close();
  await req(indexedDB.deleteDatabase(`bench-plain-read-${ctx}`)).catch(() => {});
  await clearDir(dir);
  await dropLibrary(lib);
  await dropLibrary(libOpfs);
  return rows;
}

export async function runBench(p) {
  await init();
  const ctx = typeof WorkerGlobalScope !== 'undefined' ? 'worker' : 'page';
  const root = await navigator.storage.getDirectory();
  const dir = await root.getDirectoryHandle(`bench-plain-${ctx}`, { create: true });
  await clearDir(dir);
  const db = await openDb(`bench-plain-${ctx}`);
  await clearStore(db);
  const only = p.only ? p.only.split(',') : ['import', 'list', 'read', 'crossover'];
  const rows = [];
  if (only.includes('import')) rows.push(...await importRows(p, ctx, dir, db));
  if (only.includes('list')) rows.push(...await listRows(p, ctx));
  if (only.includes('read')) rows.push(...await readRows(p, ctx, dir));
  if (only.includes('crossover')) rows.push(...await crossoverRows(p, ctx));
  db.close();
  return { userAgent: navigator.userAgent, context: ctx, rows };
}

export function paramsOf(search) {
  const q = new URLSearchParams(search);
  return { runs: Number(q.get('runs') ?? 5), bigMb: Number(q.get('bigMb') ?? 100), smallN: Number(q.get('smallN') ?? 500),
    smallKb: Number(q.get('smallKb') ?? 100), listN: Number(q.get('listN') ?? 10000), only: q.get('only') };
}
