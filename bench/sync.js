// The sync bench's page: runs the workloads in a dedicated worker (as deployed) and in this
// page, one context after the other (bench/sync-core.js), and publishes the rows.
import { paramsFrom, runSyncBench } from './sync-core.js';

function inWorker() {
  const w = new Worker(`./sync-worker.js${location.search}`, { type: 'module' });
  return new Promise((ok, err) => {
    w.onmessage = ({ data }) => { w.terminate(); data.error ? err(new Error(`worker: ${data.error}`)) : ok(data.rows); };
    w.onerror = (e) => err(new Error(`worker: ${e.message}`));
  });
}

async function main() {
  const p = paramsFrom(location.search);
  const rows = [];
  for (const context of p.contexts) {
    const got = context === 'worker' ? await inWorker() : await runSyncBench(p);
    rows.push(...got.map((r) => ({ context, ...r })));
    document.getElementById('out').textContent = JSON.stringify(rows, null, 1);
  }
  window.__benchResult = { userAgent: navigator.userAgent, rows };
}
main().catch((e) => { window.__benchError = String(e?.stack ?? e); document.getElementById('out').textContent = window.__benchError; });
