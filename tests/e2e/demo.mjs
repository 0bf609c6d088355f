// End-to-end: drives www-demo in headless Chromium the way a person would: pick an image,
// see it listed, draw it, reload (no network needed) and find it still there.
// Screenshots go to target/e2e/ to be looked at.
import { launchChromium } from '../../scripts/chromium.mjs';
import { mkdirSync } from 'node:fs';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serve } from '../../scripts/serve.mjs';

import { png } from './lib/png.mjs';

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
    // No server behind this API URL (port 9, discard): the page must not need one.
    await page.goto(`${origin}/www-demo/?api=http://127.0.0.1:9&device=e2e-offline`);
    await page.waitForSelector('body[data-ready=true]');
    await page.setInputFiles('#pick', { name: 'split.png', mimeType: 'image/png', buffer: png(64, 48) });
    await page.waitForSelector('li:has-text("split.png")');
    await page.click('li:has-text("split.png")');
    await page.waitForSelector('canvas[data-drawn]');
    const pixel = await page.evaluate(() => [...document.getElementById('canvas').getContext('2d').getImageData(5, 5, 1, 1).data]);
    assert.deepEqual(pixel.slice(0, 3), [220, 30, 30], 'the left half is drawn red');
    assert.match(await page.textContent('li:has-text("split.png") .badge'), /^(pending|syncing)$/, 'queued, never lost');
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
