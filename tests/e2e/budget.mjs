// Storage that manages itself, against the browser's real quota (Chromium's DevTools protocol
// caps the origin: Storage.overrideQuotaForOrigin) and the real reference server, in a page
// and in a dedicated worker: imports past the budget evict the least recently used synced
// copies; an import that hits the quota evicts synced copies and succeeds on its retry; with
// nothing left to evict it fails with QuotaExceededError and keeps nothing of it; pinned and
// unsynced assets are never evicted; every evicted asset downloads again byte-identical.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { launchChromium } from '../../scripts/chromium.mjs';
import { serve } from '../../scripts/serve.mjs';
import { openHarness } from './lib/harness.mjs';
import { SERVER_BIN, startReferenceServer } from '../lib/reference-server.mjs';

const MB = 1_000_000;

// Four synced 1 MB assets (one pinned, one read since), one unsynced, then one more import
// past the 5 MB budget. Returns what the budget evicted and the origin's usage.
async function fill(opfs, api, user, name) {
  const bytes = (n, seed) => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 255; return b; };
  const lib = await opfs.MediaLibrary.open({ name, budget: { maxBytes: 5_000_000 } });
  globalThis.lib = lib;                                   // one instance across the steps (and its listeners)
  globalThis.evictions = [];
  lib.addEventListener('evict', (e) => globalThis.evictions.push(e.detail));
  const sync = new opfs.MediaSyncService({ apiBaseUrl: api, getUserId: () => user, getAuthToken: () => `dev:${user}`, autoSync: false, library: name });
  const a = [];
  for (let i = 0; i < 4; i++) a.push((await lib.importFile(new File([bytes(1_000_000, i)], `a${i}.bin`))).id);
  await sync.syncNow();
  sync.dispose();
  await lib.pin(a[1]);
  await (await lib.getFile(a[2])).arrayBuffer();          // a2 is used: a0, then a3, go first
  // Past the read lease (a Web Lock on a2, held READ_LEASE_MS = 5 s after the read; a leased
  // copy is not evicted): wait until the lock is released, not for a guess at its length.
  // The read stays recorded (it is written within ACCESS_FLUSH_MS = 2 s, before the lease ends).
  const leased = async () => (await navigator.locks.query()).held.some((l) => l.name === `opfs-media:${name}:asset:${a[2]}`);
  for (const end = Date.now() + 30_000; await leased();) {
    if (Date.now() > end) throw new Error('the read lease on a2 never ended');
    await new Promise((r) => setTimeout(r, 50));
  }
  const u = (await lib.importFile(new File([bytes(1_000_000, 9)], 'unsynced.bin'))).id;
  const b = (await lib.importFile(new File([bytes(1_000_000, 10)], 'b.bin'))).id;
  const storage = Object.fromEntries(await Promise.all([...a, u, b].map(async (id) => [id, (await lib.get(id)).storage])));
  const small = (await lib.estimate()).smallFileBytes;
  return { a, u, b, storage, evictions: globalThis.evictions, usage: (await navigator.storage.estimate()).usage, kind: lib.storage, small };
}

// Under the capped quota: a 3 MB import does not fit, evicts synced copies and succeeds;
// then one more finds nothing to evict and fails cleanly. With `batch`, both go through
// `importFiles` (its per-file error reported as `{ error }`).
async function overQuota(opfs, batch) {
  const bytes = (n, seed) => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = (i * 7 + seed) & 255; return b; };
  const lib = globalThis.lib;
  const importOne = async (file) => {
    if (!batch) return (await lib.importFile(file)).id;
    const [r] = await lib.importFiles([file]);
    if (r.error) throw r.error;
    return r.id;
  };
  const files = async () => {
    const out = [];
    const walk = async (dir, path) => { for await (const [n, h] of dir.entries()) { if (h.kind === 'file') out.push(`${path}/${n}`); else await walk(h, `${path}/${n}`); } };
    await walk(await navigator.storage.getDirectory(), '');
    return out.sort();
  };
  const before = globalThis.evictions.length;
  let big = null, error = null, error2 = null;
  try { big = await importOne(new File([bytes(3_000_000, 1)], 'big.bin')); } catch (e) { error = { name: e.name, code: e.code, message: e.message }; }
  const idsBefore = (await lib.list()).map((x) => x.id);
  const filesBefore = await files();
  try { await importOne(new File([bytes(3_000_000, 2)], 'too-big.bin')); } catch (e) { error2 = { name: e.name, code: e.code }; }
  const idsAfter = (await lib.list()).map((x) => x.id);
  const filesAfter = await files();
  const info = await lib.estimate();
  return { big, error, error2, idsBefore, idsAfter, filesBefore, filesAfter, evictions: globalThis.evictions.slice(before), info };
}

// Room again: every evicted asset downloads byte-identical; pinned and unsynced never left.
async function redownload(opfs, api, user, name, ids) {
  const bytes = (n, seed) => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 255; return b; };
  const lib = globalThis.lib;
  await lib.setBudget(null);
  const sync = new opfs.MediaSyncService({ apiBaseUrl: api, getUserId: () => user, getAuthToken: () => `dev:${user}`, autoSync: false, library: name });
  const out = {};
  for (const [id, seed] of ids) {
    const before = (await lib.get(id)).storage;
    const got = new Uint8Array(await (await lib.getFile(id)).arrayBuffer());  // downloads when remote
    const want = bytes(1_000_000, seed);
    out[id] = { before, identical: got.length === want.length && got.every((x, i) => x === want[i]), after: (await lib.get(id)).storage };
  }
  sync.dispose();
  return out;
}

test('budget and real quota (DevTools protocol + reference server): LRU eviction of synced copies, quota recovery, pins, re-download', { timeout: 240_000 }, async () => {
  assert.ok(existsSync('pkg/sync/opfs_media.js'), 'pkg/ is missing: run scripts/build-pkg.sh');
  assert.ok(existsSync(SERVER_BIN), `${SERVER_BIN} is missing: run cargo build -p opfs-media-server`);
  const dir = mkdtempSync(join(tmpdir(), 'opfs-budget-'));
  const site = await serve({ root: '.' });
  const origin = `http://127.0.0.1:${site.address().port}`;
  const server = await startReferenceServer(['--database-url', `sqlite://${dir}/db.sqlite?mode=rwc`, '--storage-url', `file://${dir}/objects`, '--cors-origins', '*']);
  const browser = await launchChromium();
  try {
    for (const where of ['page', 'worker']) {
      const user = `budget-${where}-${Date.now()}`;
      const name = `budget-${where}`;
      const context = await browser.newContext();
      const page = await context.newPage();
      const cdp = await context.newCDPSession(page);
      const runIn = await openHarness(page, origin);
      const run = (fn, ...args) => runIn(where, fn, ...args);

      const f = await run(fill, server.url, user, name);
      assert.equal(f.kind, 'opfs', where);
      // Each 1 MB asset's home: IndexedDB below the small-file threshold (the 1 MiB default),
      // OPFS otherwise; budget, quota and re-downloads treat both alike.
      const home = 1_000_000 < f.small ? 'indexeddb' : 'opfs';
      const [a0, a1, a2, a3] = f.a;
      assert.deepEqual(f.evictions.map((e) => [e.evicted, e.reason]), [[[a0], 'budget']], `${where}: the 6th MB evicted the least recently used synced copy`);
      assert.equal(f.storage[a0], 'remote');
      for (const id of [a1, a2, a3, f.u, f.b]) assert.equal(f.storage[id], home, `${where}: ${id} stays`);

      // Room for 1.5 MB more: the 3 MB import must evict a3 and a2 (oldest first; a1 is pinned,
      // the others unsynced) and succeed on its retry.
      await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: f.usage + 1.5 * MB });
      // The worker imports through `importFiles`, the page through `importFile`.
      const q = await run(overQuota, where === 'worker');
      await cdp.send('Storage.overrideQuotaForOrigin', { origin });
      assert.equal(q.error, null, `${where}: the import over quota succeeded after eviction: ${JSON.stringify(q.error)}`);
      assert.deepEqual(q.evictions.map((e) => [e.evicted, e.reason])[0], [[a3, a2], 'quota'], `${where}: ${JSON.stringify(q.evictions)}`);
      assert.deepEqual(q.error2, { name: 'QuotaExceededError', code: 'QUOTA_EXCEEDED' }, `${where}: nothing left to evict`);
      assert.deepEqual(q.idsAfter, q.idsBefore, `${where}: no record of the failed import`);
      assert.deepEqual(q.filesAfter, q.filesBefore, `${where}: no file left of the failed import`);
      assert.equal(q.info.pinnedBytes, MB);
      assert.equal(q.info.evictableBytes, 0);

      const r = await run(redownload, server.url, user, name, [[a0, 0], [a1, 1], [a2, 2], [a3, 3]]);
      for (const id of [a0, a2, a3]) assert.deepEqual(r[id], { before: 'remote', identical: true, after: home }, `${where}: ${id} re-downloaded`);
      assert.deepEqual(r[a1], { before: home, identical: true, after: home }, `${where}: pinned never left`);
      console.log(`${where}: budget evicted ${f.evictions[0].evicted.length}, quota evicted ${q.evictions[0].evicted.length} (${q.evictions[0].bytes} B); then ${q.error2.name}; re-downloads identical`);
      await context.close();
    }
  } finally {
    await browser.close();
    site.close();
    server.proc.kill();
  }
});
