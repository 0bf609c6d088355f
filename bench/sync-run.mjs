// Runs bench/sync.html in headless Debian Chromium against a release reference server it
// starts (SQLite + local files under target/bench/sync-server), prints a table, writes
// target/bench/sync.json. Usage: node bench/sync-run.mjs [--runs 3] [--big-mb 200] [--small-n 1000]
// [--server target/release/opfs-media-server]
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { launchChromium } from '../scripts/chromium.mjs';
import { serve } from '../scripts/serve.mjs';

const arg = (k, d) => { const i = process.argv.indexOf(k); return i > 0 ? process.argv[i + 1] : d; };
const TARGET = 1.15;
const FULL = arg('--big-mb', '200') === '200' && arg('--small-n', '1000') === '1000';
const PORT = Number(arg('--api-port', 18799));
const dir = 'target/bench/sync-server';
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const api = spawn(arg('--server', 'target/release/opfs-media-server'), ['--bind', `127.0.0.1:${PORT}`,
  '--database-url', `sqlite://${dir}/db.sqlite?mode=rwc`, '--storage-url', `file://${dir}/objects`,
  '--cors-origins', '*'], { stdio: ['ignore', 'ignore', 'inherit'] });
const apiUrl = `http://127.0.0.1:${PORT}`;
for (let i = 0; ; i++) {
  try { if ((await fetch(`${apiUrl}/api/media/capabilities`)).ok) break; } catch { /* not up yet */ }
  if (i > 100) throw new Error('reference server did not start');
  await new Promise((r) => setTimeout(r, 100));
}
const server = await serve({ root: '.' });
const url = `http://127.0.0.1:${server.address().port}/bench/sync.html?api=${encodeURIComponent(apiUrl)}&runs=${arg('--runs', 3)}&bigMb=${arg('--big-mb', 200)}&smallN=${arg('--small-n', 1000)}`;
const browser = await launchChromium();
try {
  const page = await browser.newPage();
  page.on('console', (m) => m.type() === 'error' && console.error('[page]', m.text()));
  await page.goto(url);
  await page.waitForFunction(() => window.__benchResult || window.__benchError, null, { timeout: 30 * 60_000, polling: 500 });
  const err = await page.evaluate(() => window.__benchError);
  if (err) throw new Error(err);
  const result = await page.evaluate(() => window.__benchResult);
  console.log(`\nsync bench (${result.userAgent.match(/Chrome\/[\d.]+/)?.[0]}), median of ${result.rows[0].runs} runs, concurrency ${result.rows[0].concurrency}\n`);
  console.log('workload                 fetch pool ms   opfs-media ms   ratio (min-max)      target');
  for (const r of result.rows) {
    const ok = !FULL ? '(smoke run: not judged)' : r.ratio <= TARGET ? 'met' : 'MISSED';
    console.log(`${r.label.padEnd(24)} ${r.baselineMs.toFixed(0).padStart(13)} ${r.libraryMs.toFixed(0).padStart(15)}   ${r.ratio.toFixed(2)}x (${r.ratioMin.toFixed(2)}-${r.ratioMax.toFixed(2)})   <= ${TARGET}x ${ok}`);
  }
  console.log('\nmain-thread long tasks (> 50 ms) during the library runs:');
  for (const r of result.rows) {
    console.log(`${r.label.padEnd(24)} ${r.libraryLongTasks.map((s) => `${s.longTasks} (longest ${s.longestTaskMs.toFixed(0)} ms)`).join(', ')}`);
  }
  mkdirSync('target/bench', { recursive: true });
  writeFileSync('target/bench/sync.json', JSON.stringify({ ...result, target: TARGET, judged: FULL, date: new Date().toISOString() }, null, 2));
  console.log('\nwrote target/bench/sync.json');
} finally {
  await browser.close();
  server.close();
  api.kill();
}
