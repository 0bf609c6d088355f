// End-to-end sync through the demo: two "devices" (two libraries in one browser profile,
// each with its sync worker) and the real reference server (debug build, SQLite + local
// files in a temp dir). Import on A -> synced badge, server bytes identical; B pulls it and
// draws it after a download; delete on A -> gone on B; server down -> queued -> back up ->
// synced; the offline toggle pauses sync; "free local copies" keeps unsynced bytes and a freed
// item downloads again when drawn. Screenshots in target/e2e/.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { launchChromium } from '../../scripts/chromium.mjs';
import { serve } from '../../scripts/serve.mjs';
import { png } from './lib/png.mjs';

const BIN = 'target/debug/opfs-media-server';
const freePort = () => new Promise((ok) => { const s = createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => ok(p)); }); });

async function startApi(port, dir) {
  const proc = spawn(BIN, ['--bind', `127.0.0.1:${port}`, '--database-url', `sqlite://${dir}/db.sqlite?mode=rwc`,
    '--storage-url', `file://${dir}/objects`, '--cors-origins', '*'], { stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 100; i++) {
    try { if ((await fetch(`http://127.0.0.1:${port}/api/media/capabilities`)).ok) return proc; } catch { /* starting */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('reference server did not start');
}

const badge = (page, name) => page.textContent(`li:has-text("${name}") .badge`);
async function waitBadge(page, name, want, timeout = 20000) {
  await page.waitForFunction(([n, w]) => [...document.querySelectorAll('li')].some((li) => li.textContent.includes(n) && li.querySelector('.badge')?.textContent === w), [name, want], { timeout });
}
const pixel = (page) => page.evaluate(() => [...document.getElementById('canvas').getContext('2d').getImageData(5, 5, 1, 1).data].slice(0, 3));

test('demo sync: two devices, server bytes, delete, server outage, offline toggle', { timeout: 180000 }, async () => {
  assert.ok(existsSync(BIN), `${BIN} is missing: run cargo build -p opfs-media-server`);
  mkdirSync('target/e2e', { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'opfs-e2e-'));
  const port = await freePort();
  let api = await startApi(port, dir);
  const API = `http://127.0.0.1:${port}`;
  const user = `e2e-${Date.now()}`;
  const web = await serve({ root: '.' });
  const page = (device) => `http://127.0.0.1:${web.address().port}/www-demo/?api=${encodeURIComponent(API)}&user=${user}&device=${device}`;
  const browser = await launchChromium();
  try {
    const context = await browser.newContext();
    const errors = [];
    const a = await context.newPage();
    a.on('pageerror', (e) => errors.push(String(e)));
    await a.goto(page('a'));
    await a.waitForSelector('body[data-ready=true]');

    // A imports: local at once, then synced by the worker; the server holds the same bytes.
    const red = png(64, 48);
    await a.setInputFiles('#pick', { name: 'split.png', mimeType: 'image/png', buffer: red });
    await a.waitForSelector('li:has-text("split.png")');
    await waitBadge(a, 'split.png', 'synced');
    await a.screenshot({ path: 'target/e2e/sync-a-synced.png' });
    const id = await a.getAttribute('li:has-text("split.png")', 'data-id');
    const onServer = await fetch(`${API}/api/media/assets/${id}`, { headers: { Authorization: `Bearer dev:${user}` } });
    assert.equal(onServer.status, 200);
    assert.ok(Buffer.from(await onServer.arrayBuffer()).equals(red), 'server bytes identical to the file');

    // B, a new device: the item arrives as metadata (remote), downloads when drawn.
    const b = await context.newPage();
    b.on('pageerror', (e) => errors.push(String(e)));
    await b.goto(page('b'));
    await b.waitForSelector('body[data-ready=true]');
    await b.waitForSelector('li[data-storage=remote]:has-text("split.png")', { timeout: 20000 });
    await b.screenshot({ path: 'target/e2e/sync-b-remote.png' });
    await b.click('li:has-text("split.png")');
    await b.waitForSelector('canvas[data-drawn]');
    assert.deepEqual(await pixel(b), [220, 30, 30], 'B draws the downloaded image');
    // A small image's home is IndexedDB (below the 1 MiB `smallFileBytes` default): the
    // download landed there.
    await b.waitForSelector('li[data-storage=indexeddb]:has-text("split.png")');
    await b.screenshot({ path: 'target/e2e/sync-b-drawn.png' });

    // Delete on A: gone on B after its next pull.
    await a.click('li:has-text("split.png") button:has-text("✕")');
    await a.waitForSelector('li:has-text("split.png")', { state: 'detached' });
    await b.waitForSelector('li:has-text("split.png")', { state: 'detached', timeout: 20000 });

    // Server down: an import stays queued (never lost); back up: it syncs.
    // The condition, not a clock: an upload attempt against the dead server ran and ended
    // with the import queued again (its badge went `syncing`, then back to `pending`; the
    // demo re-renders the list on every status change).
    await a.evaluate(() => {
      const seen = (window.outageBadges = []);
      new MutationObserver(() => {
        const li = [...document.querySelectorAll('li')].find((x) => x.textContent.includes('outage.png'));
        const b = li?.querySelector('.badge')?.textContent;
        if (b && b !== seen.at(-1)) seen.push(b);
      }).observe(document.body, { childList: true, characterData: true, subtree: true });
    });
    api.kill('SIGKILL');
    await new Promise((r) => api.once('exit', r));
    await a.setInputFiles('#pick', { name: 'outage.png', mimeType: 'image/png', buffer: png(32, 32, [20, 200, 20], [20, 200, 20]) });
    await a.waitForSelector('li:has-text("outage.png")');
    await a.waitForFunction(() => window.outageBadges.join(' ').includes('syncing pending'), null, { timeout: 30000 })
      .catch(async (e) => { throw new Error(`no failed attempt seen: badges ${JSON.stringify(await a.evaluate(() => window.outageBadges))}: ${e.message}`); });
    assert.match(await badge(a, 'outage.png'), /^(pending|syncing)$/);
    await a.screenshot({ path: 'target/e2e/sync-server-down.png' });
    api = await startApi(port, dir);
    await waitBadge(a, 'outage.png', 'synced', 30000);

    // The offline toggle pauses sync; unticking resumes it.
    await a.check('#offline');
    await a.setInputFiles('#pick', { name: 'offline.png', mimeType: 'image/png', buffer: png(32, 32) });
    await a.waitForSelector('li:has-text("offline.png")');
    // Not a clock: as long as a working sync takes on this machine now. B (online, same
    // server) imports a file of the same size after A's import, and once B has it synced, A,
    // which had a head start, must still be pending.
    await b.setInputFiles('#pick', { name: 'control.png', mimeType: 'image/png', buffer: png(32, 32, [30, 30, 200], [30, 30, 200]) });
    await waitBadge(b, 'control.png', 'synced');
    assert.equal(await badge(a, 'offline.png'), 'pending');
    await a.screenshot({ path: 'target/e2e/sync-offline.png' });
    await a.uncheck('#offline');
    await waitBadge(a, 'offline.png', 'synced');
    await waitBadge(b, 'offline.png', 'synced', 20000);
    await b.screenshot({ path: 'target/e2e/sync-b-final.png' });

    // Free local copies: synced items keep only their metadata (bytes on the server), an
    // item not uploaded yet keeps its bytes; drawing a freed item downloads it again.
    assert.match(await a.textContent('#status'), /MB used of [\d.]+ GB/, 'storage usage shown');
    await a.check('#offline');
    await a.setInputFiles('#pick', { name: 'unsynced.png', mimeType: 'image/png', buffer: png(16, 16) });
    await a.waitForSelector('li:has-text("unsynced.png")');
    await a.click('#free');
    await a.waitForSelector('#sync:has-text("freed the local copies of 2 synced item(s)")');
    await a.waitForSelector('li[data-storage=remote]:has-text("outage.png")');
    await a.waitForSelector('li[data-storage=remote]:has-text("offline.png")');
    assert.equal(await a.getAttribute('li:has-text("unsynced.png")', 'data-storage'), 'indexeddb', 'pending bytes are never freed (a small image: in IndexedDB)');
    await a.screenshot({ path: 'target/e2e/sync-freed.png' });
    await a.uncheck('#offline');
    await a.click('li:has-text("offline.png")');
    await a.waitForSelector('li[data-storage=indexeddb]:has-text("offline.png")');
    const freedId = await a.getAttribute('li:has-text("offline.png")', 'data-id');
    await a.waitForSelector(`canvas[data-drawn="${freedId}"]`);
    assert.deepEqual(await pixel(a), [220, 30, 30], 'the freed item downloads again and draws');
    await a.waitForFunction(() => { const img = [...document.querySelectorAll('li')].find((li) => li.textContent.includes('offline.png'))?.querySelector('img'); return img?.complete && img.naturalWidth === 32; });
    await waitBadge(a, 'unsynced.png', 'synced');
    await a.screenshot({ path: 'target/e2e/sync-redownloaded.png' });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    web.close();
    api.kill();
  }
});
