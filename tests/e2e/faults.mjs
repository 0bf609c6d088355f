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

async function startApi() {
  const dir = mkdtempSync(join(tmpdir(), 'opfs-faults-'));
  return startReferenceServer(['--database-url', `sqlite://${dir}/db.sqlite?mode=rwc`, '--storage-url', `file://${dir}/objects`, '--cors-origins', '*']);
}

const wire = async (proxy, id) => (await fetch(`${proxy}/__wire/uploads?id=${id}`)).json();

async function until(what, fn, ms = 30_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// In the page: open the library and a syncing service for `user` against `api`.
const startSync = (page, api, user) => page.evaluate(async ([api, user]) => {
  await window.opfsReady;
  window.sync = new window.opfs.MediaSyncService({ apiBaseUrl: api, getUserId: () => user, getAuthToken: () => `dev:${user}`, autoSync: true, library: 'faults' });
}, [api, user]);

test('a page closed while its upload is on the wire: another page finishes it, one object, bytes sent again once', { timeout: 120_000 }, async () => {
  assert.ok(existsSync(SERVER_BIN), `${SERVER_BIN} is missing: run cargo build -p opfs-media-server`);
  assert.ok(existsSync('pkg/sync/opfs_media.js'), 'pkg/ is missing: run scripts/build-pkg.sh');
  const api = await startApi();
  // 8 MB/s: a 24 MB body takes about 3 s, more than socket buffers hold, so the close lands
  // mid-body for certain.
  const proxyServer = await startWireProxy({ upstream: api.url, bytesPerSec: 8_000_000 });
  const proxy = `http://127.0.0.1:${proxyServer.address().port}`;
  const site = await serve({ root: '.' });
  const origin = `http://127.0.0.1:${site.address().port}`;
  const browser = await launchChromium();
  try {
    const context = await browser.newContext();
    const user = `close-${Date.now()}`;
    const size = 24_000_000;
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

    // Verifiably in flight: the proxy holds part of the body, not all of it. Then close the
    // page for real (no beforeunload, no dispose()).
    const mid = await until('part of the body at the proxy', async () => { const w = await wire(proxy, id); return w.bytes > 1_000_000 && w; });
    assert.ok(mid.bytes < size && mid.complete === 0, `mid-body: ${JSON.stringify(mid)}`);
    await a.close();
    await new Promise((r) => setTimeout(r, 300));
    const cut = await wire(proxy, id);
    assert.equal(cut.complete, 0, 'closing the page cut the body');

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
    // The file goes in resumable chunks (the server has the extension): the cut request's
    // chunk is sent again, nothing confirmed is, so the wire carries the file once plus what
    // the cut request had sent (at most one chunk, 16 MiB; its socket buffers still reach the
    // proxy after the close); every other request completed.
    const after = await wire(proxy, id);
    assert.equal(after.complete, after.bodies - 1, `only the cut request is incomplete: ${JSON.stringify(after)}`);
    assert.ok(after.bytes <= size + 16 * 1024 * 1024, `the file once plus at most the cut chunk: ${after.bytes} for ${size}`);
    console.log(`closed mid-upload at ${cut.bytes} of ${size} bytes; on the wire in all: ${after.bytes} bytes in ${after.bodies} bodies`);
  } finally {
    await browser.close();
    site.close();
    proxyServer.close();
    api.proc.kill();
  }
});
