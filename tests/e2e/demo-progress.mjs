// End-to-end: the demo shows a large upload's byte progress. A 40 MB video picked in the demo
// goes to the reference server (resumable uploads on) through a proxy slowed to 8 MB/s; the
// progress bar appears, only moves forward, and goes away once the item is synced.
// Screenshot: target/e2e/demo-progress.png.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { launchChromium } from '../../scripts/chromium.mjs';
import { serve } from '../../scripts/serve.mjs';
import { startReferenceServer } from '../lib/reference-server.mjs';
import { startWireProxy } from '../wire-proxy.mjs';

test('demo: a large upload shows its byte progress, forward only, until synced', { timeout: 120_000 }, async () => {
  mkdirSync('target/e2e', { recursive: true });
  const data = mkdtempSync(join(tmpdir(), 'opfs-demo-progress-'));
  const api = await startReferenceServer(['--database-url', `sqlite://${data}/db.sqlite?mode=rwc`, '--storage-url', `file://${data}/objects`, '--cors-origins', '*']);
  const proxyServer = await startWireProxy({ upstream: api.url, bytesPerSec: 8_000_000 });
  const proxy = `http://127.0.0.1:${proxyServer.address().port}`;
  const site = await serve({ root: '.' });
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`http://127.0.0.1:${site.address().port}/www-demo/?api=${encodeURIComponent(proxy)}&device=e2e-progress`);
    await page.waitForSelector('body[data-ready=true]');
    const video = Buffer.alloc(40_000_000);
    for (let i = 0; i < video.length; i += 4096) video[i] = i & 255;
    await page.setInputFiles('#pick', { name: 'clip.mp4', mimeType: 'video/mp4', buffer: video });
    await page.waitForSelector('li:has-text("clip.mp4")');
    await page.waitForSelector('#transfer:not([hidden])', { timeout: 30_000 });
    const seen = [];
    let shot = false;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const s = await page.evaluate(() => ({ hidden: document.getElementById('transfer').hidden, value: document.getElementById('bytes').value, text: document.getElementById('bytes-text').textContent }));
      if (s.hidden) break;
      seen.push(s.value);
      if (!shot && s.value > 0.3) { await page.screenshot({ path: 'target/e2e/demo-progress.png' }); shot = true; }
      assert.ok(Date.now() < deadline, 'the upload never finished');
      await new Promise((r) => setTimeout(r, 100));
    }
    console.log(`progress values seen: ${seen.map((v) => v.toFixed(2)).join(' ')}`);
    assert.ok(seen.some((v) => v > 0 && v < 1), `the bar showed the upload part-way: ${seen}`);
    assert.ok(seen.every((v, i) => i === 0 || v >= seen[i - 1]), `the bar only moved forward: ${seen}`);
    await page.waitForFunction(() => [...document.querySelectorAll('li')].some((li) => li.textContent.includes('clip.mp4') && li.querySelector('.badge')?.textContent === 'synced'), null, { timeout: 30_000 });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    site.close();
    proxyServer.close();
    await api.stop();
    rmSync(data, { recursive: true, force: true });
  }
});
