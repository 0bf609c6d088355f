// Bounded loopback load test: N concurrent clients (one user each) upload files and list
// after every upload; afterwards every byte is downloaded and compared, and every client's
// changes feed is read in small pages (each upload exactly once, none skipped or repeated). Optionally one
// large streamed upload while the server's peak memory is read from /proc.
//   node tests/conformance/load.mjs --base-url URL [--clients 50] [--files 20] [--big-mb 1024 --server-pid PID]
//     [--max-peak-rss-mb N]   fail if the server's peak RSS (VmHWM, whole run) goes above N MB
// Tokens: dev mode (`dev:<user>`) unless --token-cmd is given, a command printing a token for $USER_ID.
import { createHash, randomBytes } from 'node:crypto';
import { execSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { uuidv7 } from './uuid.mjs';

const arg = (k, d) => { const i = process.argv.indexOf(k); return i > 0 ? process.argv[i + 1] : d; };
const BASE = arg('--base-url');
const CLIENTS = Number(arg('--clients', 50));
const FILES = Number(arg('--files', 20));
const BIG_MB = Number(arg('--big-mb', 0));
const PID = arg('--server-pid');
const TOKEN_CMD = arg('--token-cmd');
const MAX_PEAK_MB = arg('--max-peak-rss-mb') === undefined ? null : Number(arg('--max-peak-rss-mb'));
if (MAX_PEAK_MB !== null && !PID) { console.error('--max-peak-rss-mb needs --server-pid'); process.exit(2); }
if (!BASE) { console.error('usage: load.mjs --base-url URL [--clients N] [--files N]'); process.exit(2); }

const token = (user) => TOKEN_CMD ? execSync(TOKEN_CMD, { env: { ...process.env, USER_ID: user } }).toString().trim() : `dev:${user}`;
const sha = (b) => createHash('sha256').update(b).digest('hex');
const rssKb = (key) => PID ? Number(readFileSync(`/proc/${PID}/status`, 'utf8').match(new RegExp(`${key}:\\s+(\\d+)`))?.[1]) : NaN;

async function client(n, run) {
  const auth = { authorization: `Bearer ${token(`load${run}-${n}`)}` };
  const files = [];
  let bytesUp = 0, requests = 0;
  for (let i = 0; i < FILES; i++) {
    const body = randomBytes(32 * 1024 + ((n * 7919 + i * 104729) % (224 * 1024)));
    const id = uuidv7();
    const r = await fetch(`${BASE}/api/media/assets`, { method: 'POST', body, headers: { ...auth, 'content-type': 'application/octet-stream', 'x-asset-id': id, 'x-asset-name': `f${i}.bin`, 'x-content-sha256': sha(body) } });
    requests++;
    if (r.status !== 201) throw new Error(`client ${n}: upload ${i} got ${r.status} ${await r.text()}`);
    await r.arrayBuffer();
    bytesUp += body.length;
    files.push({ id, body });
    const l = await fetch(`${BASE}/api/media/assets?limit=1000`, { headers: auth });
    requests++;
    const listed = (await l.json()).assets;
    if (listed.length !== files.length) throw new Error(`client ${n}: listed ${listed.length}, expected ${files.length}`);
  }
  return { files, auth, bytesUp, requests };
}

const run = Date.now().toString(36);
const t0 = performance.now();
const results = await Promise.all(Array.from({ length: CLIENTS }, (_, n) => client(n, run)));
const upMs = performance.now() - t0;
let verified = 0, bytesDown = 0;
const t1 = performance.now();
await Promise.all(results.map(async ({ files, auth }) => {
  for (const f of files) {
    const r = await fetch(`${BASE}/api/media/assets/${f.id}`, { headers: auth });
    const got = Buffer.from(await r.arrayBuffer());
    if (r.status !== 200 || !got.equals(f.body)) throw new Error(`asset ${f.id}: status ${r.status}, bytes differ`);
    verified++; bytesDown += got.length;
  }
}));
const downMs = performance.now() - t1;

// Every client reads its changes feed in small pages (behind a round-robin proxy, the pages
// come from alternating instances): each of its uploads exactly once, nothing skipped or
// repeated, nothing of another user.
let feedsChecked = 0;
await Promise.all(results.map(async ({ files, auth }, n) => {
  const seen = [];
  let cursor = null;
  for (let pages = 0; pages < 1000; pages++) {
    const q = cursor === null ? 'limit=7' : `limit=7&cursor=${encodeURIComponent(cursor)}`;
    const r = await fetch(`${BASE}/api/media/changes?${q}`, { headers: auth });
    if (r.status !== 200) throw new Error(`client ${n}: changes page ${pages} got ${r.status} ${await r.text()}`);
    const page = await r.json();
    seen.push(...page.changes.map((c) => c.id));
    cursor = page.nextCursor;
    if (!page.hasMore) break;
  }
  const want = files.map((f) => f.id).sort();
  const got = [...seen].sort();
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    throw new Error(`client ${n}: the changes feed gave ${seen.length} ids (${new Set(seen).size} distinct) for ${want.length} uploads`);
  }
  feedsChecked++;
}));
const bytesUp = results.reduce((s, r) => s + r.bytesUp, 0);
const reqs = results.reduce((s, r) => s + r.requests, 0);
const report = {
  clients: CLIENTS, uploads: CLIENTS * FILES, listRequests: CLIENTS * FILES, verified, feedsChecked,
  uploadPhaseSeconds: +(upMs / 1000).toFixed(2), uploadMBps: +(bytesUp / 1e6 / (upMs / 1000)).toFixed(1),
  requestsPerSecond: +(reqs / (upMs / 1000)).toFixed(0), downloadMBps: +(bytesDown / 1e6 / (downMs / 1000)).toFixed(1),
};

if (BIG_MB > 0) {
  // One large upload streamed from a generator: neither side holds the file in memory.
  const chunk = randomBytes(1 << 20);
  const hash = createHash('sha256');
  for (let i = 0; i < BIG_MB; i++) hash.update(chunk);
  let sent = 0;
  const body = new ReadableStream({ pull(c) { if (sent++ < BIG_MB) c.enqueue(chunk); else c.close(); } });
  const before = rssKb('VmRSS');
  const t = performance.now();
  const r = await fetch(`${BASE}/api/media/assets`, { method: 'POST', body, duplex: 'half', headers: { authorization: `Bearer ${token(`big${run}`)}`, 'content-type': 'application/octet-stream', 'x-asset-id': uuidv7(), 'x-asset-name': 'big.bin', 'x-content-sha256': hash.digest('hex') } });
  if (r.status !== 201) throw new Error(`big upload: ${r.status} ${await r.text()}`);
  report.bigUploadMB = BIG_MB;
  report.bigUploadMBps = +(BIG_MB * 1.048576 / ((performance.now() - t) / 1000)).toFixed(1);
  report.serverRssBeforeMB = +(before / 1024).toFixed(1);
}
if (PID) report.serverPeakRssMB = +(rssKb('VmHWM') / 1024).toFixed(1);
console.log(JSON.stringify(report, null, 2));
if (MAX_PEAK_MB !== null && !(report.serverPeakRssMB <= MAX_PEAK_MB)) {
  console.error(`the server's peak RSS was ${report.serverPeakRssMB} MB, above the bound of ${MAX_PEAK_MB} MB`);
  console.log(`${verified + feedsChecked} passed, 1 failed`);
  process.exit(1);
}
console.log(`${verified + feedsChecked + (MAX_PEAK_MB !== null ? 1 : 0)} passed, 0 failed`);
