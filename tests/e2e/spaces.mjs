// Shared spaces end to end (issue 24): two users, Alice and Bob, each in a browser context of
// their own (separate storage, as two profiles), both members of one space on the real
// reference server (spaces on: --admin-secret), behind the counting proxy (tests/wire-proxy.mjs).
// Each syncs the space with `MediaSyncService({ apiBaseUrl: <proxy>/api/spaces/<id>, library })`;
// Alice also syncs her personal library (page) and a second board (her dedicated worker).
// Alice imports offline, then online; Bob's device gets the asset, reads it (SHA-256 checked)
// and reads it again with the network refused; Bob renames, Alice sees the name; Alice
// deletes, Bob's copy goes; each asset crosses the wire once per device. Then Bob is removed
// through the admin API while his upload is on the wire: his sync stops with a typed
// `NotAMemberError` (no retry loop: his context sends nothing more), and his local copies and
// his unsynced import stay. Added back, `start()` syncs again.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { launchChromium } from '../../scripts/chromium.mjs';
import { serve } from '../../scripts/serve.mjs';
import { SERVER_BIN, startReferenceServer } from '../lib/reference-server.mjs';
import { startWireProxy } from '../wire-proxy.mjs';
import { openHarness, until } from './lib/harness.mjs';

const ADMIN = 'e2e-spaces-admin-secret-0123456789';
const SPACE = `board-${Date.now()}`;
const sha = (b) => createHash('sha256').update(b).digest('hex');
const bytes = (n, seed) => { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 255; return b; };

// In the browser: start the user's service on the space (kept on the global), and record errors.
async function startSpace(opfs, o) {
  globalThis.lib = await opfs.MediaLibrary.open({ name: o.library });
  globalThis.errors = [];
  globalThis.svc = new opfs.MediaSyncService({
    apiBaseUrl: o.root, library: o.library, autoSync: true, pollIntervalMs: 500,
    retry: { baseDelayMs: 50, maxDelayMs: 200 },
    getUserId: () => o.user, getAuthToken: () => `dev:${o.user}`,
  });
  globalThis.svc.addEventListener('error', (e) => globalThis.errors.push(e.detail));
  return true;
}
// The same bytes as `bytes(n, seed)` in node.
async function importBytes(opfs, name, n, seed) {
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = (i * 31 + seed) & 255;
  const a = await globalThis.lib.importFile(new File([data], name, { type: 'application/octet-stream' }));
  return a.id;
}
const record = async (opfs, id) => { try { return await globalThis.lib.get(id); } catch (e) { return { missing: e.name }; } };
async function readHash(opfs, id) {
  const f = await globalThis.lib.getFile(id);
  const d = await crypto.subtle.digest('SHA-256', await f.arrayBuffer());
  return [...new Uint8Array(d)].map((x) => x.toString(16).padStart(2, '0')).join('');
}
// Bounded: a sync that never settles is reported, not waited for until the test's timeout.
async function syncNow() {
  const late = new Promise((r) => setTimeout(() => r({ timedOut: true }), 20_000));
  const done = globalThis.svc.syncNow().then(() => ({ ok: true }), (e) => ({ name: e.name, code: e.code, message: e.message }));
  return Promise.race([done, late]);
}

test('a space shared by two users: import, download, rename, delete, once per device; removal stops sync and keeps local copies', { timeout: 180_000 }, async () => {
  assert.ok(existsSync(SERVER_BIN), `${SERVER_BIN} is missing: run cargo build -p opfs-media-server`);
  assert.ok(existsSync('pkg/sync/opfs_media.js'), 'pkg/ is missing: run scripts/build-pkg.sh');
  mkdirSync('target/e2e', { recursive: true });
  const data = mkdtempSync(join(tmpdir(), 'opfs-spaces-'));
  const api = await startReferenceServer(['--database-url', `sqlite://${data}/db.sqlite?mode=rwc`,
    '--storage-url', `file://${data}/objects`, '--cors-origins', '*', '--admin-secret', ADMIN]);
  // Uploads slowed (the removal lands while Bob's upload is verifiably on the wire).
  const proxyServer = await startWireProxy({ upstream: api.url, bytesPerSec: 400_000 });
  const proxy = `http://127.0.0.1:${proxyServer.address().port}`;
  const root = `${proxy}/api/spaces/${SPACE}`;
  const admin = (method, user) => fetch(`${api.url}/api/admin/spaces/${SPACE}/members/${user}`, { method, headers: { Authorization: `Bearer ${ADMIN}` } });
  const wire = async (what, id) => (await fetch(`${proxy}/__wire/${what}?id=${id}`)).json();
  assert.equal((await admin('PUT', 'alice')).status, 201);
  assert.equal((await admin('PUT', 'bob')).status, 201);
  const site = await serve({ root: '.' });
  const origin = `http://127.0.0.1:${site.address().port}`;
  const browser = await launchChromium();
  try {
    const alice = await browser.newContext();
    const bob = await browser.newContext();
    const a = await openHarness(await alice.newPage(), origin);
    const b = await openHarness(await bob.newPage(), origin);
    const library = `space-${SPACE}`;

    // Alice, offline: the import is local at once, nothing crosses the wire.
    await alice.setOffline(true);
    await a('page', startSpace, { root, library, user: 'alice' });
    const photo = bytes(48_000, 7);
    const id = await a('page', importBytes, 'photo.bin', 48_000, 7);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await a('page', record, id)).syncStatus, 'pending');
    assert.equal((await wire('uploads', id)).bodies, 0, 'nothing sent while offline');
    // Online: it uploads by itself.
    await alice.setOffline(false);
    await until('alice synced', async () => (await a('page', record, id)).syncStatus === 'synced');
    // Her personal library syncs beside the space in the same page, each with its own leader.
    const personalId = await a('page', async (opfs, o) => {
      globalThis.plib = await opfs.MediaLibrary.open({ name: 'personal' });
      globalThis.personal = new opfs.MediaSyncService({ apiBaseUrl: o.root, library: 'personal', pollIntervalMs: 500,
        getUserId: () => 'alice', getAuthToken: () => 'dev:alice' });
      return (await globalThis.plib.importFile(new File([new Uint8Array([1, 2, 3])], 'mine.bin'))).id;
    }, { root: `${proxy}/api` });
    await until('personal synced', async () => (await a('page', async (opfs, i) => (await globalThis.plib.get(i)).syncStatus, personalId)) === 'synced');
    assert.deepEqual(await a('page', async () => [globalThis.svc.isLeader, globalThis.personal.isLeader]), [true, true], 'one leader each');
    assert.equal((await a('page', record, personalId)).missing, 'NotFoundError', 'the personal asset is not in the space');
    // And a second board in her dedicated worker: a third leader, its own space and library.
    const SPACE2 = `${SPACE}-b`;
    assert.equal((await fetch(`${api.url}/api/admin/spaces/${SPACE2}/members/alice`, { method: 'PUT', headers: { Authorization: `Bearer ${ADMIN}` } })).status, 201);
    await a('worker', startSpace, { root: `${proxy}/api/spaces/${SPACE2}`, library: `space-${SPACE2}`, user: 'alice' });
    const otherBoardId = await a('worker', importBytes, 'other-board.bin', 1000, 5);
    await until('second board synced', async () => (await a('worker', record, otherBoardId)).syncStatus === 'synced');
    assert.equal(await a('worker', async () => globalThis.svc.isLeader), true, 'the worker leads its board');
    assert.equal((await a('page', record, otherBoardId)).missing, 'NotFoundError', 'the boards stay apart');

    // Bob's device: the asset arrives as metadata, downloads, SHA-256 checked against the file.
    await b('page', startSpace, { root, library, user: 'bob' });
    await until('bob sees the asset', async () => (await b('page', record, id)).storage === 'remote');
    // getFile downloads it (the service runs in this context); read twice, and an explicit
    // downloadAsset of an asset already here is a no-op.
    assert.equal(await b('page', readHash, id), sha(photo), 'Bob reads Alice\'s bytes');
    assert.equal(await b('page', readHash, id), sha(photo));
    assert.notEqual(await b('page', async (opfs, i) => (await globalThis.svc.downloadAsset(i)).storage, id), 'remote');
    // Again with the network refused: read from his device.
    await bob.route(`${proxy}/**`, (r) => r.abort());
    assert.equal(await b('page', readHash, id), sha(photo), 'Bob reads it offline');
    await bob.unroute(`${proxy}/**`);

    // Bob renames; Alice sees the name.
    await b('page', async (opfs, i) => { await globalThis.lib.update(i, { name: 'by-bob.bin' }); return true; }, id);
    assert.deepEqual(await b('page', syncNow), { ok: true });
    await until('alice sees the rename', async () => { await a('page', syncNow); return (await a('page', record, id)).name === 'by-bob.bin'; });

    assert.equal((await b('page', record, personalId)).missing, 'NotFoundError', 'Alice\'s personal asset never reaches Bob');
    assert.equal((await b('page', record, otherBoardId)).missing, 'NotFoundError', 'nor does her other board\'s');
    // Once per device: one upload (Alice), one download (Bob), whatever was read since.
    const up = await wire('uploads', id);
    const down = await wire('downloads', id);
    assert.equal(up.bodies, 1, `uploaded once: ${JSON.stringify(up)}`);
    assert.equal(up.complete, 1);
    assert.equal(down.bodies, 1, `downloaded once (Bob): ${JSON.stringify(down)}`);

    // Alice deletes; Bob's copy goes.
    await a('page', async (opfs, i) => { await globalThis.lib.delete(i); return true; }, id);
    assert.deepEqual(await a('page', syncNow), { ok: true });
    await until('bob\'s copy goes', async () => { await b('page', syncNow); return (await b('page', record, id)).missing === 'NotFoundError'; });

    // Bob keeps one synced asset of Alice's, then is removed while his own upload is on the wire.
    const kept = bytes(20_000, 3);
    const keptId = await a('page', importBytes, 'kept.bin', 20_000, 3);
    await until('alice synced kept', async () => (await a('page', record, keptId)).syncStatus === 'synced');
    await until('bob has kept', async () => { await b('page', syncNow); return (await b('page', record, keptId)).storage === 'remote'; });
    await b('page', async (opfs, i) => { await globalThis.svc.downloadAsset(i); return true; }, keptId);
    const late = bytes(1_200_000, 11); // ~3 s on the slowed wire
    const lateId = await b('page', importBytes, 'late.bin', 1_200_000, 11);
    await until('bob\'s upload is on the wire', async () => (await wire('uploads', lateId)).open >= 1, 20_000);
    assert.equal((await admin('DELETE', 'bob')).status, 204);
    const refused = await b('page', syncNow);
    assert.equal(refused.name, 'NotAMemberError', JSON.stringify(refused));
    assert.equal(refused.code, 'NOT_A_MEMBER');
    const errors = await b('page', async () => globalThis.errors);
    assert.ok(errors.some((e) => e.name === 'NotAMemberError' && e.code === 'NOT_A_MEMBER'), `error event: ${JSON.stringify(errors)}`);

    // No retry loop: with 50 ms retries and a 500 ms poll, Bob's context sends nothing more.
    let sent = 0;
    const count = (r) => { if (r.url().startsWith(proxy)) sent += 1; };
    bob.on('request', count);
    await new Promise((r) => setTimeout(r, 3000));
    bob.off('request', count);
    assert.equal(sent, 0, `requests after the refusal: ${sent}`);

    // His local copies stay: Alice's asset (bytes readable) and his own unsynced import.
    assert.equal(await b('page', readHash, keptId), sha(kept), 'the synced copy is kept');
    const mine = await b('page', record, lateId);
    assert.ok(!mine.missing, 'the unsynced import is kept');
    assert.notEqual(mine.syncStatus, 'error', `the import is not failed by the refusal: ${JSON.stringify(mine)}`);
    assert.equal(await b('page', readHash, lateId), sha(late), 'its bytes are kept');

    // Added back, start() syncs again: his import reaches the space.
    assert.equal((await admin('PUT', 'bob')).status, 201);
    await b('page', async () => { globalThis.svc.start(); return true; });
    await until('bob\'s import synced after he is back', async () => (await b('page', record, lateId)).syncStatus === 'synced', 60_000);
  } finally {
    await browser.close();
    site.close();
    proxyServer.close();
    await api.stop();
  }
});
