// A real browser kill mid-transfer (issue 11): a persistent Chromium profile, a 200 MB upload
// through the sync service in a dedicated worker, the browser killed with SIGKILL once the
// wire shows more than half of the file sent, then the browser started again on the profile:
// the upload finishes by itself, re-sending at most one chunk beyond what the server had.
// Then the same for a download in a page: killed once past half is stored, restarted,
// `downloadAsset` continues from the pieces on disk with one Range request. Bytes are counted at the wire (tests/wire-proxy.mjs)
// and checked against the file's SHA-256.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from '../../scripts/chromium.mjs';
import { serve } from '../../scripts/serve.mjs';
import { startReferenceServer } from '../lib/reference-server.mjs';
import { startWireProxy } from '../wire-proxy.mjs';
import { openHarness } from './lib/harness.mjs';

const SIZE = 200 * 1024 * 1024;
const CHUNK = 16 * 1024 * 1024; // the client's chunk (src/sync/chunked.rs PREFERRED_CHUNK)
const PIECE = 16 * 1024 * 1024; // a download piece (src/store/download.rs PIECE_BYTES)
const USER = 'resume-user';

const launch = (dir) => chromium.launchPersistentContext(dir, { executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
const killProfile = (dir) => { try { execFileSync('pkill', ['-KILL', '-f', `user-data-dir=${dir}`]); } catch { /* none left */ } };
const harness = async (context, origin) => openHarness(context.pages()[0] ?? await context.newPage(), origin);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The file's bytes, the same in node and in the browser: xorshift32 words, no short period.
function pattern(size) {
  const out = new Uint8Array(size);
  const words = new Uint32Array(out.buffer, 0, size >> 2);
  let x = 2463534242;
  for (let i = 0; i < words.length; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; words[i] = x; }
  return out;
}

async function wire(proxy, what, id) {
  const res = await fetch(`${proxy}/__wire/${what}?id=${id}`);
  return res.json();
}

// In the browser: the service, kept alive on the global (the kill ends it).
async function startService(opfs, o) {
  const { MediaSyncService } = opfs;
  globalThis.svc = new MediaSyncService({
    apiBaseUrl: o.api, library: o.name, autoSync: true,
    getUserId: () => o.user, getAuthToken: () => `dev:${o.user}`,
  });
  return true;
}

async function importAndSync(opfs, o) {
  const lib = await opfs.MediaLibrary.open({ name: o.name });
  const size = o.size;
  const out = new Uint8Array(size);
  const words = new Uint32Array(out.buffer, 0, size >> 2);
  let x = 2463534242;
  for (let i = 0; i < words.length; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; words[i] = x; }
  const rec = await lib.importFile(new File([out], 'film.mp4', { type: 'video/mp4' }));
  const { MediaSyncService } = opfs;
  globalThis.svc = new MediaSyncService({
    apiBaseUrl: o.api, library: o.name, autoSync: true,
    getUserId: () => o.user, getAuthToken: () => `dev:${o.user}`,
  });
  return rec.id;
}

async function untilSynced(opfs, o) {
  const lib = await opfs.MediaLibrary.open({ name: o.name });
  const deadline = Date.now() + 240_000;
  for (;;) {
    const rec = await lib.get(o.id);
    if (rec.syncStatus === 'synced') return rec;
    if (rec.syncStatus === 'error' || Date.now() > deadline) throw new Error(`upload ended ${rec.syncStatus}: ${JSON.stringify(rec.syncError)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function pullThenDownload(opfs, o) {
  const { MediaSyncService } = opfs;
  const svc = new MediaSyncService({
    apiBaseUrl: o.api, library: o.name, autoSync: false,
    getUserId: () => o.user, getAuthToken: () => `dev:${o.user}`,
  });
  globalThis.svc = svc;
  await svc.syncNow();
  const lib = await opfs.MediaLibrary.open({ name: o.name });
  lib.getFile(o.id).catch(() => {}); // the kill ends it
  return true;
}

async function piecesOnDisk(opfs, o) {
  const dir = await (await (await navigator.storage.getDirectory()).getDirectoryHandle('opfs-media')).getDirectoryHandle(o.name);
  let kept = 0;
  // Closed pieces only: `<id>.part.<offset>` (not the `.crswap` of a piece being written).
  const piece = new RegExp(`^${o.id}\\.part\\.\\d+$`);
  for await (const [n, h] of dir.entries()) if (piece.test(n)) kept += (await h.getFile()).size;
  return kept;
}

async function downloadAndHash(opfs, o) {
  const { MediaSyncService } = opfs;
  globalThis.svc = new MediaSyncService({
    apiBaseUrl: o.api, library: o.name, autoSync: false,
    getUserId: () => o.user, getAuthToken: () => `dev:${o.user}`,
  });
  await globalThis.svc.downloadAsset(o.id);
  const lib = await opfs.MediaLibrary.open({ name: o.name });
  const file = await lib.getFile(o.id);
  const digest = await crypto.subtle.digest('SHA-256', await file.arrayBuffer());
  const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
  const dir = await (await (await navigator.storage.getDirectory()).getDirectoryHandle('opfs-media')).getDirectoryHandle(o.name);
  const names = [];
  for await (const [n] of dir.entries()) names.push(n);
  return { size: file.size, hex, names, storage: (await lib.get(o.id)).storage };
}

test('a 200 MB upload (worker) and download (page) survive a killed browser and resume where they stopped', { timeout: 600_000 }, async () => {
  assert.ok(existsSync('pkg/sync/opfs_media.js'), 'pkg/ is missing: run scripts/build-pkg.sh');
  const data = mkdtempSync(join(tmpdir(), 'opfs-resume-srv-'));
  const api = await startReferenceServer([
    '--database-url', `sqlite://${data}/db.sqlite?mode=rwc`, '--storage-url', `file://${data}/objects`, '--cors-origins', '*',
  ]);
  // Slowed, so the kill lands mid-file on any machine: ~25 MB/s up, ~40 MB/s down.
  const proxyServer = await startWireProxy({ upstream: api.url, bytesPerSec: 25_000_000, downloadBytesPerSec: 40_000_000 });
  const proxy = `http://127.0.0.1:${proxyServer.address().port}`;
  const site = await serve({ root: '.' });
  const origin = `http://127.0.0.1:${site.address().port}`;
  const dir = mkdtempSync(join(tmpdir(), 'opfs-resume-'));
  const want = createHash('sha256').update(pattern(SIZE)).digest('hex');
  const o = { api: proxy, name: 'resume-up', user: USER, size: SIZE };
  try {
    // Upload, in a worker: kill once more than half of the file crossed the wire.
    let context = await launch(dir);
    let run = await harness(context, origin);
    o.id = await run('worker', importAndSync, o);
    // Past half on the server, then mid-way through the next chunk on the wire.
    const offset = async () => {
      const r = await fetch(`${api.url}/api/media/uploads/${o.id}`, { headers: { authorization: `Bearer dev:${USER}` } });
      return r.ok ? (await r.json()).offset : 0;
    };
    const deadline = Date.now() + 120_000;
    let held = 0;
    while ((held = await offset()) < SIZE / 2) {
      assert.ok(Date.now() < deadline, 'the upload never got past half');
      await sleep(20);
    }
    while ((await wire(proxy, 'uploads', o.id)).bytes < held + CHUNK / 2) {
      assert.ok(Date.now() < deadline, 'the next chunk never got going');
      await sleep(10);
    }
    killProfile(dir);
    const atKill = (await wire(proxy, 'uploads', o.id)).bytes;
    await context.close().catch(() => {});
    const session = await fetch(`${api.url}/api/media/uploads/${o.id}`, { headers: { authorization: `Bearer dev:${USER}` } });
    assert.equal(session.status, 200, 'the session is open on the server');
    const had = (await session.json()).offset;
    console.log(`upload: killed with ${(atKill / 1e6).toFixed(0)} MB sent, the server had ${(had / 1e6).toFixed(0)} MB of ${SIZE / 1e6}`);
    assert.ok(had >= SIZE / 2, `the server had past half (${had})`);

    context = await launch(dir);
    run = await harness(context, origin);
    await run('worker', startService, o);
    const rec = await run('page', untilSynced, o);
    const after = (await wire(proxy, 'uploads', o.id)).bytes - atKill;
    console.log(`upload: ${(after / 1e6).toFixed(1)} MB sent after the restart for the ${((SIZE - had) / 1e6).toFixed(1)} MB the server lacked`);
    assert.ok(after <= SIZE - had + CHUNK, `${after} bytes after the restart: more than one chunk beyond the ${SIZE - had} missing`);
    assert.equal(rec.sha256, want, 'the record carries the file’s SHA-256');
    const stored = await fetch(`${api.url}/api/media/assets/${o.id}`, { headers: { authorization: `Bearer dev:${USER}` } });
    assert.equal(createHash('sha256').update(Buffer.from(await stored.arrayBuffer())).digest('hex'), want, 'the server holds the file');
    await context.close();

    // Download, in a page of the same profile, into another library: kill past half.
    const d = { api: proxy, name: 'resume-down', user: USER, id: o.id };
    context = await launch(dir);
    run = await harness(context, origin);
    await run('page', pullThenDownload, d);
    // Kill once the client has stored past half (closed pieces on its disk): the proxy's
    // count runs ahead of what the browser took in by whatever its buffers hold.
    const deadline2 = Date.now() + 120_000;
    let storedBeforeKill = 0;
    while ((storedBeforeKill = await run('page', piecesOnDisk, d)) < SIZE / 2) {
      assert.ok(Date.now() < deadline2, 'the download never got past half');
      await sleep(20);
    }
    killProfile(dir);
    const downAtKill = (await wire(proxy, 'downloads', o.id)).bytes;
    const requestsBeforeRestart = (await wire(proxy, 'downloads', o.id)).sent.length;
    await context.close().catch(() => {});

    context = await launch(dir);
    run = await harness(context, origin);
    const kept = await run('page', piecesOnDisk, d);
    console.log(`download: killed with ${(downAtKill / 1e6).toFixed(0)} MB sent by the proxy, ${(storedBeforeKill / 1e6).toFixed(0)} MB stored in closed pieces; ${(kept / 1e6).toFixed(0)} MB kept after the restart`);
    assert.ok(kept >= storedBeforeKill, `every piece stored before the kill is kept (${kept} < ${storedBeforeKill})`);
    const got = await run('page', downloadAndHash, d);
    const downAfter = (await wire(proxy, 'downloads', o.id)).sent.slice(requestsBeforeRestart).reduce((a, b) => a + b, 0);
    console.log(`download: ${(downAfter / 1e6).toFixed(1)} MB after the restart for the ${((SIZE - kept) / 1e6).toFixed(1)} MB missing`);
    assert.equal(downAfter, SIZE - kept, 'after the restart exactly the missing bytes cross the wire (one Range request)');
    assert.equal(got.size, SIZE);
    assert.equal(got.hex, want, 'the downloaded file is the original');
    assert.notEqual(got.storage, 'remote');
    assert.deepEqual(got.names.filter((n) => n.includes('.part.')), [], 'no pieces left');
    await context.close();
  } finally {
    killProfile(dir);
    site.close();
    proxyServer.close();
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(data, { recursive: true, force: true });
  }
});
