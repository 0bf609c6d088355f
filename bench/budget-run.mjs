// The budget's cost (issue 15): evicting 1,000 synced local copies under a budget against
// dropping the same copies without one (`MediaSyncService.freeLocalCopies()`), and 10,000 reads
// (`getFile`) with the budget's bookkeeping (access times, read leases) against the same reads
// without a budget; alternating runs in one page or dedicated worker (the e2e harness), against
// a reference server it starts (setup only: uploads and re-downloads are not timed).
// Prints a table, writes target/bench/budget.json.
// Usage: node bench/budget-run.mjs [--runs 3] [--n 1000] [--reads 10000] [--where page,worker]
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchChromium } from '../scripts/chromium.mjs';
import { serve } from '../scripts/serve.mjs';
import { openHarness } from '../tests/e2e/lib/harness.mjs';
import { startReferenceServer } from '../tests/lib/reference-server.mjs';

const arg = (k, d) => { const i = process.argv.indexOf(k); return i > 0 ? process.argv[i + 1] : d; };
const RUNS = Number(arg('--runs', 3));
const N = Number(arg('--n', 1000));
const READS = Number(arg('--reads', 10000));
const TARGET = 1.1;
const FULL = N === 1000 && READS === 10000;

// Runs in the page or the worker.
async function bench(opfs, api, user, runs, n, reads) {
  const lib = await opfs.MediaLibrary.open({ name: `bench-${user}` });
  const sync = new opfs.MediaSyncService({ apiBaseUrl: api, getUserId: () => user, getAuthToken: () => `dev:${user}`, autoSync: false, library: `bench-${user}` });
  const ids = [];
  for (let i = 0; i < n; i++) ids.push((await lib.importFile(new File([new Uint8Array(10_000).fill(i & 255)], `f${i}.bin`))).id);
  await sync.syncNow();
  const redownload = async () => {
    for (let i = 0; i < ids.length; i += 8) await Promise.all(ids.slice(i, i + 8).map((id) => sync.downloadAsset(id)));
  };
  // A seeded order of reads over all assets (xorshift).
  let x = 12345;
  const order = Array.from({ length: reads }, () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return ids[(x >>> 0) % ids.length]; });
  const time = async (f) => { const t = performance.now(); await f(); return performance.now() - t; };
  const rows = { evict: [], reads: [] };
  for (let r = 0; r < runs; r++) {
    // Reads: without a budget, then with one that fits everything (bookkeeping only).
    await lib.setBudget(null);
    const plainReads = await time(async () => { for (const id of order) await lib.getFile(id); });
    await lib.setBudget({ maxBytes: 1e15 });
    const budgetReads = await time(async () => { for (const id of order) await lib.getFile(id); });
    await new Promise((res) => setTimeout(res, 6000)); // let the read leases run out
    // Eviction of every copy: without a budget (freeLocalCopies), then with a budget of 0.
    await lib.setBudget(null);
    const plainEvict = await time(() => sync.freeLocalCopies());
    await redownload();
    const budgetEvict = await time(() => lib.setBudget({ maxBytes: 0 }));
    const evicted = (await lib.list()).filter((a) => a.storage === 'remote').length;
    if (evicted !== n) throw new Error(`the budget evicted ${evicted} of ${n}`);
    await lib.setBudget(null);
    await redownload();
    rows.reads.push([plainReads, budgetReads]);
    rows.evict.push([plainEvict, budgetEvict]);
  }
  sync.dispose();
  return rows;
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const dir = mkdtempSync(join(tmpdir(), 'opfs-budget-bench-'));
const server = await startReferenceServer(['--database-url', `sqlite://${dir}/db.sqlite?mode=rwc`, '--storage-url', `file://${dir}/objects`, '--cors-origins', '*']);
const site = await serve({ root: '.' });
const origin = `http://127.0.0.1:${site.address().port}`;
const browser = await launchChromium();
const result = { runs: RUNS, n: N, reads: READS, target: TARGET, judged: FULL, rows: [], date: new Date().toISOString() };
try {
  for (const where of arg('--where', 'page,worker').split(',')) {
    const page = await (await browser.newContext()).newPage();
    page.on('console', (m) => m.type() === 'error' && console.error('[page]', m.text()));
    const run = await openHarness(page, origin);
    const rows = await run(where, bench, server.url, `${where}-${Date.now()}`, RUNS, N, READS);
    result.userAgent ??= await page.evaluate(() => navigator.userAgent);
    for (const [label, pairs] of [[`evict ${N} synced copies`, rows.evict], [`${READS} reads (getFile)`, rows.reads]]) {
      const ratios = pairs.map(([a, b]) => b / a);
      result.rows.push({ where, label, runs: pairs.length, baselineMs: median(pairs.map((p) => p[0])), budgetMs: median(pairs.map((p) => p[1])),
        ratio: median(ratios), ratioMin: Math.min(...ratios), ratioMax: Math.max(...ratios) });
    }
  }
} finally {
  await browser.close();
  site.close();
  server.proc.kill();
}
console.log(`\nbudget bench (${result.userAgent?.match(/Chrome\/[\d.]+/)?.[0]}), median of ${RUNS} runs\n`);
console.log('where   workload                   no budget ms   budget ms   ratio (min-max)      target');
for (const r of result.rows) {
  const ok = !FULL ? '(smoke run: not judged)' : r.ratio <= TARGET ? 'met' : 'MISSED';
  console.log(`${r.where.padEnd(7)} ${r.label.padEnd(26)} ${r.baselineMs.toFixed(0).padStart(12)} ${r.budgetMs.toFixed(0).padStart(11)}   ${r.ratio.toFixed(2)}x (${r.ratioMin.toFixed(2)}-${r.ratioMax.toFixed(2)})   <= ${TARGET}x ${ok}`);
}
mkdirSync('target/bench', { recursive: true });
writeFileSync('target/bench/budget.json', JSON.stringify(result, null, 2));
console.log('\nwrote target/bench/budget.json');
