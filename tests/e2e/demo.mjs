// End-to-end: drives www-demo in headless Chromium the way a person would: pick an image,
// see it listed, draw it, reload (no network needed) and find it still there.
// Screenshots go to target/e2e/ to be looked at.
import { launchChromium } from '../../scripts/chromium.mjs';
import { mkdirSync } from 'node:fs';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serve } from '../../scripts/serve.mjs';

// A 64x48 PNG with a red/blue split, built here so the test needs no fixture files.
function png(w, h) {
  const { deflateSync, crc32 } = zlibParts;
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const o = y * (w * 3 + 1) + 1 + x * 3;
    raw[o] = x < w / 2 ? 220 : 20; raw[o + 1] = 30; raw[o + 2] = x < w / 2 ? 30 : 200;
  }
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13); ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 2;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}
const zlibParts = await import('node:zlib');

test('demo: import, draw, reload offline, still there', async () => {
  mkdirSync('target/e2e', { recursive: true });
  const server = await serve({ root: '.' });
  const origin = `http://127.0.0.1:${server.address().port}`;
  const browser = await launchChromium();
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${origin}/www-demo/`);
    await page.waitForSelector('body[data-ready=true]');
    await page.setInputFiles('#pick', { name: 'split.png', mimeType: 'image/png', buffer: png(64, 48) });
    await page.waitForSelector('li:has-text("split.png")');
    await page.click('li:has-text("split.png")');
    await page.waitForSelector('canvas[data-drawn]');
    const pixel = await page.evaluate(() => [...document.getElementById('canvas').getContext('2d').getImageData(5, 5, 1, 1).data]);
    assert.deepEqual(pixel.slice(0, 3), [220, 30, 30], 'the left half is drawn red');
    assert.equal(await page.textContent('li:has-text("split.png") .badge'), 'pending');
    await page.screenshot({ path: 'target/e2e/demo-imported.png' });

    // Reload with the network cut: the library is local, so the item is still there.
    await context.route('**/*', (route) => (route.request().url().includes('/www-demo/') || route.request().url().includes('/pkg/')) ? route.continue() : route.abort());
    await page.reload();
    await page.waitForSelector('body[data-ready=true]');
    await page.waitForSelector('li:has-text("split.png")');
    await page.click('li:has-text("split.png")');
    await page.waitForSelector('canvas[data-drawn]');
    await page.screenshot({ path: 'target/e2e/demo-after-reload.png' });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    server.close();
  }
});
