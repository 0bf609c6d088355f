// The demo's budget UI with the real reference server: imports sync, a budget smaller than
// the items evicts the least recently used synced copies (shown as ☁, the local line updates),
// a pinned item stays, and an evicted item downloads again when drawn. Screenshots in target/e2e/.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { launchChromium } from '../../scripts/chromium.mjs';
import { serve } from '../../scripts/serve.mjs';
import { png } from './lib/png.mjs';
import { SERVER_BIN, startReferenceServer } from '../lib/reference-server.mjs';

test('demo: local usage against the budget, eviction of synced items, pin, re-download on draw', { timeout: 120_000 }, async () => {
  assert.ok(existsSync(SERVER_BIN), `${SERVER_BIN} is missing: run cargo build -p opfs-media-server`);
  mkdirSync('target/e2e', { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'opfs-demo-budget-'));
  const server = await startReferenceServer(['--database-url', `sqlite://${dir}/db.sqlite?mode=rwc`, '--storage-url', `file://${dir}/objects`, '--cors-origins', '*']);
  const web = await serve({ root: '.' });
  const browser = await launchChromium();
  try {
    const page = await (await browser.newContext()).newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`http://127.0.0.1:${web.address().port}/www-demo/?api=${encodeURIComponent(server.url)}&user=budget-${Date.now()}&device=budget`);
    await page.waitForSelector('body[data-ready=true]');
    assert.match(await page.textContent('#local'), /\(no budget\)/);
    const files = ['one', 'two', 'three'].map((n, i) => ({ name: `${n}.png`, mimeType: 'image/png', buffer: png(200 + i, 150) }));
    for (const f of files) {
      await page.setInputFiles('#pick', f);
      await page.waitForSelector(`li:has-text("${f.name}") .badge.synced`, { timeout: 20_000 });
    }
    await page.click('li:has-text("two.png") button.pin');
    await page.waitForSelector('li:has-text("two.png") button.pin.on');
    // A budget of 0 MB: every synced, unpinned item goes; the pinned one stays.
    await page.fill('#budget', '0');
    await page.dispatchEvent('#budget', 'change');
    await page.waitForSelector('li[data-storage=remote]:has-text("one.png")');
    await page.waitForSelector('li[data-storage=remote]:has-text("three.png")');
    // Small images live in IndexedDB (below the 1 MiB `smallFileBytes` default).
    assert.equal(await page.getAttribute('li:has-text("two.png")', 'data-storage'), 'indexeddb', 'pinned stays');
    await page.waitForFunction(() => /of 0\.0 MB budget/.test(document.getElementById('local').textContent));
    assert.match(await page.textContent('#sync'), /evicted the local copies of 2 synced item/);
    await page.screenshot({ path: 'target/e2e/demo-budget-evicted.png' });
    // Drawn again: downloaded (it stays remote under a 0 budget once the read lease ends, which is fine).
    await page.fill('#budget', '');
    await page.dispatchEvent('#budget', 'change');
    await page.click('li:has-text("one.png")');
    await page.waitForSelector('canvas[data-drawn]');
    await page.waitForSelector('li[data-storage=indexeddb]:has-text("one.png")');
    await page.screenshot({ path: 'target/e2e/demo-budget-redownloaded.png' });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    web.close();
    server.proc.kill();
  }
});
