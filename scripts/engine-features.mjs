// Asks each engine (through its WebDriver server, no extra packages) which browser APIs
// opfs-media touches it has, in a page and in a dedicated worker, and prints the table the
// README's support table is written from. Writes target/engines/features.json.
// Usage: node scripts/engine-features.mjs  (WebKit needs a display: run under xvfb-run -a)
import { spawn, execSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { serve } from './serve.mjs';
import { CHROMIUM_ARGS } from './chromium.mjs';

const which = (c) => { try { return execSync(`command -v ${c}`, { shell: '/bin/bash' }).toString().trim(); } catch { return null; } };
const ENGINES = {
  chromium: { driver: '/usr/bin/chromedriver', args: (p) => [`--port=${p}`], caps: { browserName: 'chrome', 'goog:chromeOptions': { binary: '/usr/bin/chromium', args: CHROMIUM_ARGS } } },
  firefox: { driver: which('geckodriver'), args: (p) => ['--port', String(p)], caps: { browserName: 'firefox', 'moz:firefoxOptions': { args: ['-headless'] } } },
  webkit: { driver: '/usr/bin/WebKitWebDriver', args: (p) => [`--port=${p}`], caps: {} }, // what wasm-bindgen-test-runner sends for WebKit: the driver's defaults
};

async function wd(base, method, path, body) {
  const r = await fetch(base + path, { method, headers: { 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
  const j = await r.json();
  if (!r.ok) throw new Error(`${method} ${path}: ${JSON.stringify(j.value ?? j)}`);
  return j.value;
}

async function probe(name, e, url) {
  const dbg = (...a) => process.env.DEBUG && console.error(name, ...a); // DEBUG=1 traces the WebDriver steps
  const port = 9515 + Object.keys(ENGINES).indexOf(name) + 20;
  const proc = spawn(e.driver, e.args(port), { stdio: 'ignore' });
  const base = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0; i < 50; i++) { try { await wd(base, 'GET', '/status'); break; } catch { await new Promise((r) => setTimeout(r, 200)); } }
    dbg('driver up');
    const session = await wd(base, 'POST', '/session', { capabilities: { alwaysMatch: e.caps } });
    dbg('caps', JSON.stringify(session.capabilities).slice(0, 200));
    const sid = session.sessionId;
    try {
      dbg('session', sid);
      await wd(base, 'POST', `/session/${sid}/url`, { url });
      dbg('navigated');
      for (let i = 0; i < 100; i++) {
        const v = await wd(base, 'POST', `/session/${sid}/execute/sync`, { script: 'return window.__probe ?? null', args: [] });
        if (v) return { ...v, version: session.capabilities.browserVersion };
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('probe did not finish');
    } finally {
      await wd(base, 'DELETE', `/session/${sid}`).catch(() => {});
    }
  } finally {
    proc.kill();
  }
}

const server = await serve({ root: '.' });
const url = `http://127.0.0.1:${server.address().port}/tests/engines/probe.html`;
const results = {};
for (const [name, e] of Object.entries(ENGINES)) {
  try { results[name] = await probe(name, e, url); } catch (err) { results[name] = { error: String(err.message ?? err) }; }
}
server.close();
const keys = ['opfs', 'createWritable', 'createSyncAccessHandle', 'move', 'estimate', 'persist', 'webLocks', 'broadcastChannel', 'indexedDB', 'idbStoresBlobs', 'blobStream'];
const cell = (v) => (v === true ? 'yes' : v === false ? 'no' : '-');
console.log(`feature                 ${Object.keys(results).map((n) => `${n} ${results[n].version ?? ''}`.padEnd(24)).join('')}`);
for (const k of keys) {
  console.log(k.padEnd(24) + Object.values(results).map((r) => `page ${cell(r.page?.[k])} / worker ${cell(r.worker?.[k])}`.padEnd(24)).join(''));
}
for (const [n, r] of Object.entries(results)) if (r.error) console.log(`${n}: ${r.error}`);
mkdirSync('target/engines', { recursive: true });
writeFileSync('target/engines/features.json', JSON.stringify(results, null, 2));
