// Storage that vanishes under a running app, for real: Chromium's DevTools protocol clears the
// origin's storage (Storage.clearDataForOrigin: IndexedDB and OPFS, what "clear site data",
// eviction and Safari's seven-day rule do) while the library is open and synced, and again
// while an upload is verifiably on the wire. The server's copy must not be harmed: nothing
// deleted there, no byte sent again, no partial asset committed; the next run of the app
// pulls everything back from the server. Bytes are counted at tests/wire-proxy.mjs.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { launchChromium } from '../../scripts/chromium.mjs';
import { serve } from '../../scripts/serve.mjs';
import { startWireProxy } from '../wire-proxy.mjs';
import { SERVER_BIN, startReferenceServer } from '../lib/reference-server.mjs';
import { until, wireUploads } from './lib/harness.mjs';

const wire = wireUploads;

// In the page: a library and a syncing service for `user` against `api`.
const startSync = (page, api, user) => page.evaluate(async ([api, user]) => {
  await window.opfsReady;
  window.lib = await window.opfs.MediaLibrary.open({ name: 'wipe' });
  window.sync = new window.opfs.MediaSyncService({ apiBaseUrl: api, getUserId: () => user, getAuthToken: () => `dev:${user}`, autoSync: true, library: 'wipe' });
}, [api, user]);

const importRandom = (page, size, name) => page.evaluate(async ([size, name]) => {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
  const sha = [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))].map((b) => b.toString(16).padStart(2, '0')).join('');
  return { id: (await window.lib.importFile(new File([bytes], name))).id, sha };
}, [size, name]);

const statusOf = (page, id) => page.evaluate(async (id) => (await window.lib.get(id)).syncStatus, id);

// What the page's origin still holds of the library: its IndexedDB database, its OPFS folder,
// and the local copies in either home (OPFS files, and small assets' bytes in the database's
// `blobs` store, which is only opened where the database exists: opening creates one).
const stored = (page) => page.evaluate(async () => {
  const dbs = (await indexedDB.databases()).map((d) => d.name).filter((n) => n === 'opfs-media:wipe');
  let files = 0, blobs = 0;
  try {
    const dir = await (await (await navigator.storage.getDirectory()).getDirectoryHandle('opfs-media')).getDirectoryHandle('wipe');
    for await (const _ of dir.values()) files += 1;
  } catch (e) { if (e.name !== 'NotFoundError') throw e; }
  if (dbs.length) {
    const db = await new Promise((resolve, reject) => { const r = indexedDB.open('opfs-media:wipe'); r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
    blobs = await new Promise((resolve, reject) => { const r = db.transaction('blobs').objectStore('blobs').count(); r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
    db.close();
  }
  return { dbs: dbs.length, files, copies: files + blobs };
});

test('the origin cleared under a running app, synced and mid-upload: the server keeps everything, nothing is sent again, the next run pulls it all back', { timeout: 180_000 }, async () => {
  assert.ok(existsSync(SERVER_BIN), `${SERVER_BIN} is missing: run cargo build -p opfs-media-server`);
  assert.ok(existsSync('pkg/sync/opfs_media.js'), 'pkg/ is missing: run scripts/build-pkg.sh');
  const dir = mkdtempSync(join(tmpdir(), 'opfs-wipe-'));
  const api = await startReferenceServer(['--database-url', `sqlite://${dir}/db.sqlite?mode=rwc`, '--storage-url', `file://${dir}/objects`, '--cors-origins', '*']);
  // 8 MB/s: the 24 MB upload below is on the wire for about 3 s, so the clear lands mid-body.
  const proxyServer = await startWireProxy({ upstream: api.url, bytesPerSec: 8_000_000 });
  const proxy = `http://127.0.0.1:${proxyServer.address().port}`;
  const site = await serve({ root: '.' });
  const origin = `http://127.0.0.1:${site.address().port}`;
  const user = `wipe-${Date.now()}`;
  const serverIds = async () => {
    const res = await fetch(`${api.url}/api/media/assets?limit=100`, { headers: { authorization: `Bearer dev:${user}` } });
    return (await res.json()).assets.map((a) => a.id).sort();
  };
  const browser = await launchChromium();
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    const clear = () => cdp.send('Storage.clearDataForOrigin', { origin, storageTypes: 'all' });
    await page.goto(`${origin}/tests/e2e/harness/`);
    await startSync(page, proxy, user);
    const x = await importRandom(page, 300_000, 'x.png');
    const y = await importRandom(page, 120_000, 'y.png');
    for (const a of [x, y]) await until(`${a.id} synced`, async () => (await statusOf(page, a.id)) === 'synced');
    const synced = await serverIds();
    assert.deepEqual(synced, [x.id, y.id].sort());
    const before = await stored(page);
    assert.deepEqual([before.dbs, before.copies], [1, 2], `both copies are local before the clear (in OPFS or IndexedDB): ${JSON.stringify(before)}`);

    // 1. Cleared while the app runs, everything synced.
    console.log('# synced; clearing the origin');
    await clear();
    await until('the origin cleared', async () => { const s = await stored(page); return s.dbs === 0 && s.files === 0; });
    // The running service keeps going against storage that is gone: typed failures, and no
    // request that could harm the server.
    // The running app carries on: the library opens its database and folder again, and the
    // service starts over from the server. A syncNow in the middle of that settles (resolves,
    // or rejects with a typed error), never hangs; the next one pulls everything back.
    const settle = () => page.evaluate(() => window.sync.syncNow().then(() => 'resolved', (e) => `${e.name}: ${e.message}`));
    const first = await Promise.race([settle(), new Promise((r) => setTimeout(() => r('no answer within 20 s'), 20_000))]);
    console.log(`# the running app's first syncNow after the clear: ${first}`);
    assert.ok(first === 'resolved' || /^StorageError: /.test(first), `settles with a typed answer: ${first}`);
    await until('the running app lists x and y again, from the server', async () => {
      if ((await settle()) !== 'resolved') return false;
      const l = await page.evaluate(async () => (await window.lib.list()).map((a) => [a.id, a.storage, a.syncStatus]));
      return l.length === 2 && l.every(([, storage, status]) => storage === 'remote' && status === 'synced');
    });
    const again = await page.evaluate(async (id) => {
      const bytes = await (await window.lib.getFile(id)).arrayBuffer();
      return [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))].map((b) => b.toString(16).padStart(2, '0')).join('');
    }, y.id);
    assert.equal(again, y.sha, 'y downloads again into the running app, byte for byte');
    const w = await page.evaluate(async () => (await window.lib.importFile(new File([new Uint8Array([1, 2, 3])], 'w.bin'))).id);
    await until('a new import after the clear syncs', async () => (await statusOf(page, w)) === 'synced');
    synced.push(w);
    synced.sort();
    assert.deepEqual(await serverIds(), synced, 'nothing deleted on the server by the running app; the new import added');

    console.log('# 2: reload, import z');
    // 2. A new import, cleared while its upload is on the wire.
    await page.reload();
    await startSync(page, proxy, user);
    const z = await importRandom(page, 24_000_000, 'z.bin');
    const mid = await until('part of z at the proxy', async () => { const w = await wire(proxy, z.id); return w.bytes > 1_000_000 && w; });
    assert.ok(mid.complete === 0 && mid.bytes < 24_000_000, `mid-body: ${JSON.stringify(mid)}`);
    await clear();
    // The body in flight ends (its source is gone): wait until the proxy has no body of z open.
    const cut = await until('the upload of z ended', async () => { const w = await wire(proxy, z.id); return w.open === 0 && w; }, 60_000);
    console.log(`cleared mid-upload at ${mid.bytes} of 24000000 bytes; on the wire in all: ${cut.bytes} bytes in ${cut.bodies} bodies, ${cut.complete} complete`);

    console.log('# 3: the next run');
    // 3. The next run of the app: everything comes back from the server, nothing goes to it.
    await page.reload();
    await startSync(page, proxy, user);
    await page.evaluate(() => window.sync.syncNow());
    const listed = await page.evaluate(async () => (await window.lib.list()).map((a) => [a.id, a.storage, a.syncStatus]).sort());
    assert.deepEqual(listed, [x.id, y.id, w].sort().map((id) => [id, 'remote', 'synced']), 'x, y and w pulled back, z gone with the storage');
    const sha = await page.evaluate(async (id) => {
      const bytes = await (await window.lib.getFile(id)).arrayBuffer();
      return [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))].map((b) => b.toString(16).padStart(2, '0')).join('');
    }, x.id);
    assert.equal(sha, x.sha, 'x downloads again, byte for byte');
    const ids = await serverIds();
    assert.deepEqual(ids, synced, 'the server lists exactly what it had: nothing deleted, no partial z');
    for (const id of [x.id, y.id, w]) {
      const sent = await wire(proxy, id);
      assert.equal(sent.bodies, 1, `${id} was uploaded once, never again: ${JSON.stringify(sent)}`);
    }
    const after = await wire(proxy, z.id);
    assert.deepEqual(after, cut, 'nothing of z was sent after the clear ended its upload');
  } finally {
    await browser.close();
    site.close();
    proxyServer.close();
    api.proc.kill();
  }
});
