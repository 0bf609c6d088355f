// Issue 15's "done when", in the demo: a small real quota (Chromium's DevTools protocol caps
// the origin at 24 MB) and a long session of imports (40 files of 1.5 MB, 60 MB in all, each
// synced by the demo's worker before the next). Twice: with a budget under the quota (12 MB:
// the budget's eviction keeps room), and with one over it (100 MB: imports hit the real quota,
// and the recovery evicts synced copies and retries). No import fails for lack of space, the
// oldest synced copies go, nothing unsynced is dropped, the usage stays under the quota.
// Screenshots: target/e2e/demo-long-session-<budget>.png.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { launchChromium } from '../../scripts/chromium.mjs';
import { serve } from '../../scripts/serve.mjs';
import { SERVER_BIN, startReferenceServer } from '../lib/reference-server.mjs';

const MB = 1_000_000;
const FILES = 40;

for (const budgetMb of [12, 100]) test(`demo: a long session of imports under a 24 MB real quota and a ${budgetMb} MB budget never fails while synced copies can go`, { timeout: 240_000 }, async () => {
  assert.ok(existsSync(SERVER_BIN), `${SERVER_BIN} is missing: run cargo build -p opfs-media-server`);
  mkdirSync('target/e2e', { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'opfs-demo-long-'));
  const server = await startReferenceServer(['--database-url', `sqlite://${dir}/db.sqlite?mode=rwc`, '--storage-url', `file://${dir}/objects`, '--cors-origins', '*']);
  const web = await serve({ root: '.' });
  const origin = `http://127.0.0.1:${web.address().port}`;
  const browser = await launchChromium();
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const cdp = await context.newCDPSession(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: 24 * MB });
    await page.goto(`${origin}/www-demo/?api=${encodeURIComponent(server.url)}&user=long-${Date.now()}&device=long-${budgetMb}`);
    await page.waitForSelector('body[data-ready=true]');
    await page.fill('#budget', String(budgetMb));
    await page.dispatchEvent('#budget', 'change');
    for (let i = 0; i < FILES; i++) {
      const buffer = Buffer.alloc(1.5 * MB, i);
      const name = `take-${String(i).padStart(2, '0')}.mp4`;
      await page.setInputFiles('#pick', { name, mimeType: 'video/mp4', buffer });
      await page.waitForSelector(`li:has-text("${name}")`, { timeout: 20_000 });
      const failed = await page.textContent('#status');
      assert.doesNotMatch(failed, /QuotaExceeded|Error/, `import ${i} failed: ${failed}`);
      await page.waitForSelector(`li:has-text("${name}") .badge.synced`, { timeout: 30_000 });
    }
    const items = await page.$$eval('li[data-id]', (lis) => lis.map((li) => ({ storage: li.dataset.storage, badge: li.querySelector('.badge')?.textContent })));
    assert.equal(items.length, FILES, 'every import is listed');
    assert.ok(items.every((x) => x.badge === 'synced'), `all synced: ${JSON.stringify(items.filter((x) => x.badge !== 'synced'))}`);
    const remote = items.filter((x) => x.storage === 'remote').length;
    assert.ok(remote >= FILES - 16, `the oldest synced copies were evicted to make room (${remote} remote)`);
    const usage = await page.evaluate(async () => (await navigator.storage.estimate()).usage);
    assert.ok(usage <= 24 * MB, `local usage ${usage} stays within the 24 MB quota`);
    console.log(`${FILES} imports of 1.5 MB under a 24 MB quota and a ${budgetMb} MB budget: ${remote} evicted to remote, usage ${(usage / MB).toFixed(1)} MB`);
    await page.screenshot({ path: `target/e2e/demo-long-session-${budgetMb}.png` });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    web.close();
    server.proc.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
