// Runs the import and list bench (bench/bench.js) in headless Debian Chromium (playwright-core),
// in a page and in a dedicated worker, prints one table, writes target/bench/import.json.
// Usage: node bench/run.mjs [--runs 5] [--big-mb 100] [--small-n 500] [--list-n 10000]
//        [--contexts page,worker] [--only import,list,read,crossover] [--profile]
// --profile records a CPU profile of the page's main thread (DevTools protocol) over the
// whole run and prints the top self-time functions (page context only).
import { launchChromium } from '../scripts/chromium.mjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { serve } from '../scripts/serve.mjs';

const arg = (k, d) => { const i = process.argv.indexOf(k); return i > 0 ? process.argv[i + 1] : d; };
// A smoke run (fewer small files than the 500) lists 100 assets unless told otherwise.
const SMOKE = Number(arg('--small-n', '500')) < 500;
const opts = { runs: arg('--runs', '5'), bigMb: arg('--big-mb', '100'), smallN: arg('--small-n', '500'), listN: arg('--list-n', SMOKE ? '100' : '10000') };
const CONTEXTS = arg('--contexts', 'page,worker').split(',');
const ONLY = arg('--only', '');
const PROFILE = process.argv.includes('--profile');
// Targets apply to the workload only; a smaller (smoke) run just proves the pages work.
const FULL = opts.bigMb === '100' && opts.smallN === '500' && opts.listN === '10000' && Number(opts.runs) >= 3;
const server = await serve({ root: '.' });
const query = new URLSearchParams(opts).toString() + (ONLY ? `&only=${ONLY}` : '');
const browser = await launchChromium();
const results = [];
try {
  for (const ctx of CONTEXTS) {
    const page = await browser.newPage();
    page.on('console', (m) => m.type() === 'error' && console.error(`[${ctx}]`, m.text()));
    page.on('pageerror', (e) => console.error(`[${ctx}]`, e.message));
    let cdp;
    if (PROFILE) {
      cdp = await page.context().newCDPSession(page);
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
      await cdp.send('Profiler.start');
    }
    await page.goto(`http://127.0.0.1:${server.address().port}/bench/index.html?ctx=${ctx}&${query}`);
    await page.waitForFunction(() => window.__benchResult || window.__benchError, null, { timeout: 40 * 60_000, polling: 500 });
    const err = await page.evaluate(() => window.__benchError);
    if (err) throw new Error(`${ctx}: ${err}`);
    results.push(await page.evaluate(() => window.__benchResult));
    if (cdp) printProfile((await cdp.send('Profiler.stop')).profile);
    await page.close();
  }
} finally {
  await browser.close();
  server.close();
}

const rows = results.flatMap((r) => r.rows);
const verdict = (r) => {
  if (!r.target) return 'report';
  if (!FULL) return '(smoke: not judged)';
  const ok = r.target.strict ? r.ratio < r.target.max : r.ratio <= r.target.max;
  return `${r.target.strict ? '<' : '<='} ${r.target.max}x ${ok ? 'met' : 'MISSED'}`;
};
console.log(`\nimport + list bench (${results[0].userAgent.match(/Chrome\/[\d.]+/)?.[0]}), median of ${opts.runs} alternating runs; ratio = opfs-media / baseline (lower is better)\n`);
const cols = [['context', 7], ['workload', 56], ['baseline (named)', 66], ['baseline ms', 11], ['opfs-media ms', 13], ['ratio (min-max)', 20], ['target', 20]];
console.log(cols.map(([h, w]) => h.padEnd(w)).join(' | '));
for (const r of rows) {
  const ms = (x) => (x < 10 ? x.toFixed(3) : x.toFixed(0));
  const cells = [r.context, r.workload, r.baselineName, ms(r.baselineMs), ms(r.libraryMs),
    `${r.ratio.toFixed(2)}x (${r.ratioMin.toFixed(2)}-${r.ratioMax.toFixed(2)})`, verdict(r)];
  console.log(cells.map((c, i) => String(c).padEnd(cols[i][1])).join(' | '));
}
mkdirSync('target/bench', { recursive: true });
writeFileSync('target/bench/import.json', JSON.stringify({ userAgent: results[0].userAgent, options: opts, judged: FULL, date: new Date().toISOString(), rows }, null, 2));
console.log('\nwrote target/bench/import.json');

// Top self-time functions of a V8 CPU profile (what the page's thread spent its time in).
function printProfile(profile) {
  const dt = {};
  const { samples, timeDeltas, nodes } = profile;
  const byId = new Map(nodes.map((n) => [n.id, n]));
  samples.forEach((id, i) => { dt[id] = (dt[id] ?? 0) + (timeDeltas[i] ?? 0); });
  const self = new Map();
  for (const [id, us] of Object.entries(dt)) {
    const f = byId.get(Number(id)).callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').pop()}:${f.lineNumber}`;
    self.set(key, (self.get(key) ?? 0) + us);
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  console.log('\nCPU profile of the page thread, top self time:');
  for (const [k, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
    console.log(`  ${(us / 1000).toFixed(0).padStart(7)} ms ${(100 * us / total).toFixed(1).padStart(5)}%  ${k}`);
  }
}
