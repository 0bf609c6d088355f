// Real faults, end to end, in headless Chromium: a page closed while its upload is verifiably
// on the wire. The reference server (debug build) sits behind tests/wire-proxy.mjs, which
// slows upload bodies and counts the bytes that cross the network per asset, so "in flight"
// and "sent once more at most" are measured, not assumed.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { launchChromium } from '../../scripts/chromium.mjs';
import { serve } from '../../scripts/serve.mjs';
import { startWireProxy } from '../wire-proxy.mjs';
import { SERVER_BIN, startReferenceServer } from '../lib/reference-server.mjs';
import { until, wireUploads } from './lib/harness.mjs';

// Chunks of at most 16 MiB (the client's preferred size; the default bound is larger): the
// 56 MiB file goes in four, so the page can be closed after two are confirmed and before the
// last. Large chunks, because a close must land well inside one: what sat in socket buffers
// still reaches the proxy after the close (1 to 2 MB here).
async function startApi() {
  const dir = mkdtempSync(join(tmpdir(), 'opfs-faults-'));
  return startReferenceServer(['--database-url', `sqlite://${dir}/db.sqlite?mode=rwc`, '--storage-url', `file://${dir}/objects`, '--cors-origins', '*',
    '--chunk-min-bytes', String(5 * 1024 * 1024), '--chunk-max-bytes', String(16 * 1024 * 1024)]);
}

// What the server itself has confirmed of `id`'s upload session (asked directly, not through
// the proxy, so it is not counted): its offset, or null while there is no open session.
async function confirmedOffset(api, user, id) {
  const res = await fetch(`${api.url}/api/media/uploads/${id}`, { headers: { authorization: `Bearer dev:${user}` } });
  return res.status === 200 ? (await res.json()).offset : null;
}

const wire = wireUploads;

// In the page: open the library and a syncing service for `user` against `api`.
const startSync = (page, api, user) => page.evaluate(async ([api, user]) => {
  await window.opfsReady;
  window.sync = new window.opfs.MediaSyncService({ apiBaseUrl: api, getUserId: () => user, getAuthToken: () => `dev:${user}`, autoSync: true, library: 'faults' });
}, [api, user]);

test('a page closed while its upload is on the wire: another page finishes it, one object, only what the server lacked sent again', { timeout: 120_000 }, async () => {
  assert.ok(existsSync(SERVER_BIN), `${SERVER_BIN} is missing: run cargo build -p opfs-media-server`);
  assert.ok(existsSync('pkg/sync/opfs_media.js'), 'pkg/ is missing: run scripts/build-pkg.sh');
  const api = await startApi();
  // 16 MB/s: a 16 MiB chunk takes about a second and is more than socket buffers hold, so
  // a close early in a chunk lands mid-body for certain.
  const proxyServer = await startWireProxy({ upstream: api.url, bytesPerSec: 16_000_000 });
  const proxy = `http://127.0.0.1:${proxyServer.address().port}`;
  const site = await serve({ root: '.' });
  const origin = `http://127.0.0.1:${site.address().port}`;
  const browser = await launchChromium();
  try {
    const context = await browser.newContext();
    const user = `close-${Date.now()}`;
    const size = 56 * 1024 * 1024;
    const a = await context.newPage();
    await a.goto(`${origin}/tests/e2e/harness/`);
    const { id, sha } = await a.evaluate(async (size) => {
      await window.opfsReady;
      const bytes = new Uint8Array(size);
      for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
      const lib = await window.opfs.MediaLibrary.open({ name: 'faults' });
      const rec = await lib.importFile(new File([bytes], 'movie.bin'));
      const digest = [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))].map((b) => b.toString(16).padStart(2, '0')).join('');
      return { id: rec.id, sha: digest };
    }, size);
    await startSync(a, proxy, user);

    // The chunk length the client uses: its preferred 16 MiB clamped to the server's bounds.
    const caps = await (await fetch(`${api.url}/api/media/capabilities`)).json();
    const { chunkMinBytes, chunkMaxBytes } = caps.resumableUploads;
    const chunk = Math.min(Math.max(16 * 1024 * 1024, chunkMinBytes), chunkMaxBytes);
    assert.ok(size > 3 * chunk, `several chunks: ${size} in ${chunk}-byte chunks`);

    // Close once the server has confirmed at least two chunks and the next one is verifiably
    // on the wire (one body open at the proxy, early in its chunk). Two, so that resending
    // from byte 0 would cost more than the one chunk the bound below allows for.
    const at = await until('two chunks confirmed and the next one in flight', async () => {
      const offset = await confirmedOffset(api, user, id);
      if (offset === null || offset < 2 * chunk) return false;
      const w = await wire(proxy, id);
      return w.open === 1 && w.bytes - offset < chunk / 2 && { offset, w };
    });
    assert.ok(at.offset < size && at.w.complete === at.w.bodies - 1, `mid-upload: ${JSON.stringify(at)}`);
    // Close the page for real (no beforeunload, no dispose()).
    await a.close();
    // The cut: the open body ends at the proxy without reaching its length.
    const cut = await until('the open body ended at the proxy', async () => { const w = await wire(proxy, id); return w.open === 0 && w; }, 10_000);
    assert.equal(cut.complete, at.w.complete, `closing the page cut the body in flight: ${JSON.stringify(cut)}`);
    // What the server holds once the cut is over (a cut chunk appends nothing).
    const held = await until('the session still open', () => confirmedOffset(api, user, id).then((o) => o !== null && { o }), 10_000);
    assert.ok(held.o >= at.offset && held.o < size, `the server kept what it confirmed and lacks the rest: ${held.o}`);

    // Another page of the same origin picks the queued upload up from the outbox.
    const b = await context.newPage();
    await b.goto(`${origin}/tests/e2e/harness/`);
    await startSync(b, proxy, user);
    await until('synced on page B', () => b.evaluate(async (id) => {
      const lib = await window.opfs.MediaLibrary.open({ name: 'faults' });
      return (await lib.get(id)).syncStatus === 'synced';
    }, id), 60_000);

    const listed = await (await fetch(`${api.url}/api/media/assets?limit=100`, { headers: { authorization: `Bearer dev:${user}` } })).json();
    assert.deepEqual(listed.assets.map((x) => x.id), [id], 'one object on the server');
    const served = Buffer.from(await (await fetch(`${api.url}/api/media/assets/${id}`, { headers: { authorization: `Bearer dev:${user}` } })).arrayBuffer());
    assert.equal(createHash('sha256').update(served).digest('hex'), sha, 'the server has the file, byte for byte');
    // Page B asks the server where to go on: it sends what the server lacked, plus at most
    // one chunk (one sent while the cut chunk's lease still held the session, drained and
    // refused); a restart from byte 0 would add `held.o` ≥ two chunks. Every request but the
    // cut one completed.
    const after = await wire(proxy, id);
    const second = after.bytes - cut.bytes;
    const lacked = size - held.o;
    assert.equal(after.complete, after.bodies - 1, `only the cut request is incomplete: ${JSON.stringify(after)}`);
    assert.ok(second >= lacked && second <= lacked + chunk, `page B sent ${second} bytes; the server lacked ${lacked} (chunk ${chunk})`);
    console.log(`closed mid-upload with ${at.offset} of ${size} bytes confirmed, ${cut.bytes} sent; page B sent ${second} (the server lacked ${lacked}); ${after.bodies} bodies`);
  } finally {
    await browser.close();
    site.close();
    proxyServer.close();
    api.proc.kill();
  }
});
