// The browser's own quota, for real: Chromium's DevTools protocol caps the origin's quota
// (Storage.overrideQuotaForOrigin) between steps, and an import that no longer fits must fail
// with QuotaExceededError on every write path (a page's createWritable, a worker's sync
// access handle, IndexedDB blobs), keep nothing of the failed write (no record, no file),
// lose nothing stored before, and leave the library usable once there is room again. "Nothing"
// means no record, no OPFS file and no key in the IndexedDB `blobs` store; a streamed import
// (IndexedDB pieces) and the page's importFiles are among the cases. And a
// download (the sync service fetching a remote asset's bytes) into a full origin.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { launchChromium } from '../../scripts/chromium.mjs';
import { serve } from '../../scripts/serve.mjs';
import { openHarness } from './lib/harness.mjs';
import { SERVER_BIN, startReferenceServer } from '../lib/reference-server.mjs';

// Runs in the page or the worker: open the library, import `keep` (1 MB), report usage.
async function before(opfs, storage, name) {
  const bytes = (n, seed) => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 255; return b; };
  const lib = await opfs.MediaLibrary.open({ name, storage });
  const keep = await lib.importFile(new File([bytes(1_000_000, 1)], 'keep.bin'));
  const est = await navigator.storage.estimate();
  return { keepId: keep.id, usage: est.usage, storage: lib.storage };
}

// With the quota capped: a 120 MB import fails; what is left is what was there: records,
// OPFS files and the keys of the library's IndexedDB `blobs` store (where the IndexedDB
// backend keeps bytes, and a streamed import its pieces). (That large, Chromium reads the
// Blob through a data pipe, and a page's `write(blob)` over quota then fails as
// NotReadableError; a 6 MB one fails as QuotaExceededError.) With `stream`, the import is a
// ReadableStream (stored in 4 MiB pieces, each its own transaction, on IndexedDB); with
// `batch`, the File goes through `importFiles`.
async function overQuota(opfs, storage, name, keepId, stream, batch) {
  const bytes = (n, seed) => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 255; return b; };
  const opfsFiles = async () => {
    if (!navigator.storage?.getDirectory) return null;
    const walk = async (dir) => { let n = 0; for await (const h of dir.values()) n += h.kind === 'file' ? 1 : await walk(h); return n; };
    return walk(await navigator.storage.getDirectory());
  };
  // The library's database, read directly (not through the library): every key of `blobs`.
  const blobKeys = () => new Promise((resolve, reject) => {
    const req = indexedDB.open(`opfs-media:${name}`);
    req.onerror = () => reject(req.error);
    req.onsuccess = () => {
      const db = req.result;
      const keys = db.transaction('blobs').objectStore('blobs').getAllKeys();
      keys.onsuccess = () => { db.close(); resolve(keys.result); };
      keys.onerror = () => { db.close(); reject(keys.error); };
    };
  });
  const lib = await opfs.MediaLibrary.open({ name, storage });
  const filesBefore = await opfsFiles();
  const blobsBefore = await blobKeys();
  let error = null;
  try {
    const big = new File([bytes(120_000_000, 2)], 'big.bin');
    if (stream) await lib.importFile(big.stream(), { name: 'big.bin', type: 'application/octet-stream' });
    else if (batch) {
      // importFiles reports a file's failure as its `{ error }` (the batch itself resolves).
      const [one] = await lib.importFiles([big]);
      if (one.error) throw one.error;
    } else await lib.importFile(big);
  } catch (e) {
    error = { name: e.name, code: e.code, message: e.message };
  }
  const ids = (await lib.list()).map((a) => a.id);
  const kept = new Uint8Array(await (await lib.getFile(keepId)).arrayBuffer());
  const want = bytes(1_000_000, 1);
  return { error, ids, keepIntact: kept.length === want.length && kept.every((b, i) => b === want[i]), filesBefore, filesAfter: await opfsFiles(), blobsBefore, blobsAfter: await blobKeys() };
}

// Waits until a cap set while the origin's IndexedDB is in use bites IndexedDB: a probe write
// of `bytes` (more than the room the cap leaves) into a scratch database, repeated every
// 500 ms (and deleted each time it is taken) until the engine refuses it or `ms` have passed.
// Chromium approves IndexedDB writes from the free space it last read from its quota manager,
// a cache that decays to nothing over 30 s (`BucketContext::kBucketSpaceCacheTimeLimit`); only
// then does a write ask again and meet the cap.
async function untilIndexedDbCapBites(_opfs, bytes, ms) {
  const db = await new Promise((resolve, reject) => {
    const q = indexedDB.open('quota-probe', 1);
    q.onupgradeneeded = () => q.result.createObjectStore('s');
    q.onsuccess = () => resolve(q.result);
    q.onerror = () => reject(q.error);
  });
  const write = (op) => new Promise((resolve) => {
    const t = db.transaction('s', 'readwrite');
    op(t.objectStore('s'));
    t.oncomplete = () => resolve(null);
    t.onabort = () => resolve(t.error ? t.error.name : 'AbortError');
  });
  const t0 = Date.now();
  try {
    for (let tries = 1; ; tries++) {
      const refused = await write((s) => s.put(new Uint8Array(bytes).buffer, 'probe'));
      if (refused) return { refused, ms: Date.now() - t0, tries };
      await write((s) => s.delete('probe'));
      if (Date.now() - t0 > ms) return { refused: null, ms: Date.now() - t0, tries };
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    db.close();
  }
}

// Room again: the library takes new imports.
async function after(opfs, storage, name) {
  const lib = await opfs.MediaLibrary.open({ name, storage });
  await lib.importFile(new File([new Uint8Array(50_000)], 'later.bin'));
  return (await lib.list()).length;
}

test('real quota (DevTools protocol): each write path fails with QuotaExceededError and keeps nothing of it', { timeout: 300_000 }, async () => {
  assert.ok(existsSync('pkg/sync/opfs_media.js'), 'pkg/ is missing: run scripts/build-pkg.sh');
  const site = await serve({ root: '.' });
  const origin = `http://127.0.0.1:${site.address().port}`;
  const browser = await launchChromium();
  try {
    // Each path in a fresh profile, capped from the start at 4 MB (room for the 1 MB asset,
    // not for the big one), and the OPFS paths also capped late, after the library is open,
    // as when the disk fills under a running app, and the IndexedDB paths too: there the cap
    // bites once the engine's cached free space has decayed, which `untilIndexedDbCapBites`
    // waits for (about 30 s; an import right after the cap succeeded).
    // 'blobless': IndexedDB refuses Blob values, as WebKit's does in some sessions (emulated by
    // making put() throw DataCloneError for Blobs, which the library's probe detects): the
    // library then stores ArrayBuffers, the write path under test. (A Blob stored anyway would
    // fail the first import.)
    // 'stream': a ReadableStream import, which IndexedDB stores in 4 MiB pieces; capped at
    // 12 MB, two pieces fit before the quota bites, so the failure has pieces to remove.
    const cases = [['page', 'opfs', 'start'], ['worker', 'opfs', 'start'], ['page', 'indexeddb', 'start'],
      ['worker', 'indexeddb', 'start'], ['page', 'opfs', 'late'], ['worker', 'opfs', 'late'],
      ['page', 'indexeddb', 'late'], ['worker', 'indexeddb', 'late'], ['page', 'indexeddb', 'start', 'blobless'],
      ['page', 'indexeddb', 'start', 'stream'], ['worker', 'indexeddb', 'start', 'stream'],
      ['page', 'opfs', 'start', 'batch'], ['page', 'indexeddb', 'start', 'batch']];
    for (const [where, storage, when, variant] of cases) {
      const blobless = variant === 'blobless';
      const stream = variant === 'stream';
      const batch = variant === 'batch';
      const label = `${where} / ${storage}${blobless ? ' (ArrayBuffer values)' : ''}${stream ? ' (stream)' : ''}${batch ? ' (importFiles)' : ''} / capped at ${when}`;
      const name = `quota-${where}-${storage}`;
      const context = await browser.newContext();
      if (blobless) {
        await context.addInitScript(() => {
          const put = IDBObjectStore.prototype.put;
          IDBObjectStore.prototype.put = function (value, key) {
            if (value instanceof Blob) throw new DOMException('Blob values are refused here', 'DataCloneError');
            return put.call(this, value, key);
          };
        });
      }
      const page = await context.newPage();
      const cdp = await context.newCDPSession(page);
      if (when === 'start') await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: stream ? 12_000_000 : 4_000_000 });
      const runIn = await openHarness(page, origin);
      const run = (fn, ...args) => runIn(where, fn, ...args);
      const b = await run(before, storage, name);
      assert.equal(b.storage, storage, label);
      if (when === 'late') await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: b.usage + 2_000_000 });
      if (when === 'late' && storage === 'indexeddb') {
        const bite = await run(untilIndexedDbCapBites, 4_000_000, 45_000);
        assert.equal(bite.refused, 'QuotaExceededError', `${label}: the cap never bit IndexedDB: ${JSON.stringify(bite)}`);
        console.log(`${label}: the cap bit IndexedDB ${bite.ms} ms after it was set (probe write ${bite.tries})`);
      }
      const r = await run(overQuota, storage, name, b.keepId, stream, batch);
      await cdp.send('Storage.overrideQuotaForOrigin', { origin });
      assert.deepEqual(r.error && { name: r.error.name, code: r.error.code }, { name: 'QuotaExceededError', code: 'QUOTA_EXCEEDED' }, `${label}: ${JSON.stringify(r.error)}`);
      assert.deepEqual(r.ids, [b.keepId], `${label}: no record of the failed import`);
      assert.ok(r.keepIntact, `${label}: the earlier asset's bytes are intact`);
      assert.equal(r.filesAfter, r.filesBefore, `${label}: no file left of the failed write`);
      assert.deepEqual(r.blobsAfter, r.blobsBefore, `${label}: no IndexedDB blob or piece left of the failed write`);
      if (storage === 'indexeddb') assert.deepEqual(r.blobsBefore, [b.keepId], `${label}: the earlier asset's bytes are the one blob`);
      assert.equal(await run(after, storage, name), 2, `${label}: the library takes imports again`);
      console.log(`${label}: ${r.error.name} (${r.error.code}): ${r.error.message}`);
      await context.close();
    }
  } finally {
    await browser.close();
    site.close();
  }
});

// Device A uploads a 6 MB file; device B, capped at 4 MB, pulls the record and downloads.
async function deviceA(opfs, api, user) {
  const bytes = new Uint8Array(6_000_000).map((_, i) => (i * 13) & 255);
  const lib = await opfs.MediaLibrary.open({ name: 'a' });
  const { id } = await lib.importFile(new File([bytes], 'video.bin'));
  const sync = new opfs.MediaSyncService({ apiBaseUrl: api, getUserId: () => user, getAuthToken: () => `dev:${user}`, autoSync: false, library: 'a' });
  await sync.uploadAsset(id);
  sync.dispose();
  return id;
}

async function deviceB(opfs, api, user, id) {
  const walk = async (dir) => { let n = 0; for await (const h of dir.values()) n += h.kind === 'file' ? 1 : await walk(h); return n; };
  const sync = new opfs.MediaSyncService({ apiBaseUrl: api, getUserId: () => user, getAuthToken: () => `dev:${user}`, autoSync: false, library: 'b' });
  await sync.syncNow();
  const lib = await opfs.MediaLibrary.open({ name: 'b' });
  const filesBefore = await walk(await navigator.storage.getDirectory());
  let error = null;
  try { await sync.downloadAsset(id); } catch (e) { error = { name: e.name, code: e.code, message: e.message }; }
  const rec = await lib.get(id);
  const filesAfter = await walk(await navigator.storage.getDirectory());
  sync.dispose();
  return { error, storage: rec.storage, filesBefore, filesAfter };
}

async function deviceBRetry(opfs, api, user, id) {
  const sync = new opfs.MediaSyncService({ apiBaseUrl: api, getUserId: () => user, getAuthToken: () => `dev:${user}`, autoSync: false, library: 'b' });
  const rec = await sync.downloadAsset(id);
  const lib = await opfs.MediaLibrary.open({ name: 'b' });
  const got = new Uint8Array(await (await lib.getFile(id)).arrayBuffer());
  sync.dispose();
  return { storage: rec.storage, identical: got.length === 6_000_000 && got.every((b, i) => b === ((i * 13) & 255)) };
}

test('real quota: a download into a full origin fails with QuotaExceededError, keeps nothing, and succeeds once there is room', { timeout: 120_000 }, async () => {
  assert.ok(existsSync(SERVER_BIN), `${SERVER_BIN} is missing: run cargo build -p opfs-media-server`);
  const dir = mkdtempSync(join(tmpdir(), 'opfs-quota-'));
  const site = await serve({ root: '.' });
  const origin = `http://127.0.0.1:${site.address().port}`;
  const server = await startReferenceServer(['--database-url', `sqlite://${dir}/db.sqlite?mode=rwc`, '--storage-url', `file://${dir}/objects`, '--cors-origins', '*']);
  const api = server.url;
  const browser = await launchChromium();
  try {
    const user = `quota-${Date.now()}`;
    const open = async (quotaSize) => {
      const context = await browser.newContext();
      const page = await context.newPage();
      const cdp = await context.newCDPSession(page);
      if (quotaSize) await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize });
      const runIn = await openHarness(page, origin);
      const run = (fn, ...args) => runIn('page', fn, ...args);
      return { context, cdp, run };
    };
    const a = await open(null);
    const id = await a.run(deviceA, api, user);
    await a.context.close();
    const b = await open(4_000_000);
    const r = await b.run(deviceB, api, user, id);
    assert.deepEqual(r.error && { name: r.error.name, code: r.error.code }, { name: 'QuotaExceededError', code: 'QUOTA_EXCEEDED' }, JSON.stringify(r.error));
    assert.equal(r.storage, 'remote', 'the record still says the bytes are on the server only');
    assert.equal(r.filesAfter, r.filesBefore, 'no file left of the failed download');
    await b.cdp.send('Storage.overrideQuotaForOrigin', { origin });
    assert.deepEqual(await b.run(deviceBRetry, api, user, id), { storage: 'opfs', identical: true }, 'with room again, the download lands');
    console.log(`download: ${r.error.name} (${r.error.code}): ${r.error.message}`);
  } finally {
    await browser.close();
    site.close();
    server.proc.kill();
  }
});
