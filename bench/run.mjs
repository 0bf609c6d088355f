// Runs bench/ in headless Debian Chromium (playwright-core), prints a table, writes
// target/bench/import.json. Usage: node bench/run.mjs [--runs 5] [--big-mb 100] [--small-n 500]
import { launchChromium } from '../scripts/chromium.mjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { serve } from '../scripts/serve.mjs';

const arg = (k, d) => { const i = process.argv.indexOf(k); return i > 0 ? process.argv[i + 1] : d; };
const TARGETS = [1.15, 1.3];
// Targets apply to the workload only; a smaller (smoke) run just proves the page works.
const FULL = arg('--big-mb', '100') === '100' && arg('--small-n', '500') === '500';
const server = await serve({ root: '.' });
const url = `http://127.0.0.1:${server.address().port}/bench/index.html?runs=${arg('--runs', 5)}&bigMb=${arg('--big-mb', 100)}&smallN=${arg('--small-n', 500)}`;
const browser = await launchChromium();
  mkdirSync('target/bench', { recursive: true });
  writeFileSync('target/bench/import.json', JSON.stringify({ ...result, targets: TARGETS, judged: FULL, date: new Date().toISOString() }, null, 2));
  console.log('\nwrote target/bench/import.json');
} finally {
  await browser.close();
  server.close();
}
