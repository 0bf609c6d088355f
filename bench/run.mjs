// Runs bench/ in headless Debian Chromium (playwright-core), prints a table, writes
// target/bench/import.json. Usage: node bench/run.mjs [--runs 5] [--big-mb 100] [--small-n 500]
import { launchChromium } from '../scripts/chromium.mjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { serve } from '../scripts/serve.mjs';

const arg = (k, d) => { const i = process.argv.indexOf(k); return i > 0 ? process.argv[i + 1] : d; };
// Big file: at most 1.05x the fastest plain-JS write (issue 14); small files one by one: 1.3x.
const TARGETS = [1.05, 1.3];
// Targets apply to the workload only; a smaller (smoke) run just proves the page works.
const FULL = arg('--big-mb', '100') === '100' && arg('--small-n', '500') === '500';
const server = await serve({ root: '.' });
const url = `http://127.0.0.1:${server.address().port}/bench/index.html?runs=${arg('--runs', 5)}&bigMb=${arg('--big-mb', 100)}&smallN=${arg('--small-n', 500)}`;
const browser = await launchChromium();
try {
  const page = await browser.newPage();
  page.on('console', (m) => m.type() === 'error' && console.error('[page]', m.text()));
  await page.goto(url);
  await page.waitForFunction(() => window.__benchResult || window.__benchError, null, { timeout: 20 * 60_000, polling: 500 });
  const err = await page.evaluate(() => window.__benchError);
  if (err) throw new Error(err);
  const result = await page.evaluate(() => window.__benchResult);
  console.log(`\nimport bench (${result.userAgent.match(/Chrome\/[\d.]+/)?.[0]}), median of ${result.rows[0].runs} runs\n`);
  console.log('workload                 plain JS ms   opfs-media ms   ratio (min-max)      target');
  result.rows.forEach((r, i) => {
    const ok = !FULL ? '(smoke run: not judged)' : r.ratio <= TARGETS[i] ? 'met' : 'MISSED';
    console.log(`${r.label.padEnd(24)} ${r.baselineMs.toFixed(0).padStart(11)} ${r.libraryMs.toFixed(0).padStart(15)}   ${r.ratio.toFixed(2)}x (${r.ratioMin.toFixed(2)}-${r.ratioMax.toFixed(2)})   <= ${TARGETS[i]}x ${ok}`);
  });
  mkdirSync('target/bench', { recursive: true });
  writeFileSync('target/bench/import.json', JSON.stringify({ ...result, targets: TARGETS, judged: FULL, date: new Date().toISOString() }, null, 2));
  console.log('\nwrote target/bench/import.json');
} finally {
  await browser.close();
  server.close();
}
