// The reference server under hostile clients (issue 13), one check per invocation:
//   node tests/conformance/hostile.mjs bombs    --base-url URL --token T --server-pid PID --max-rss-mb 150 [--side 10000]
//   node tests/conformance/hostile.mjs idle     --base-url URL --sockets 150 --max-ms 100
//   node tests/conformance/hostile.mjs slow     --base-url URL --header-timeout-s 1
//   node tests/conformance/hostile.mjs keepalive --base-url URL --keep-alive-s 1
//   node tests/conformance/hostile.mjs stall    --base-url URL --token T --objects-dir DIR --idle-timeout-s 1
// Prints one JSON line of measurements; exits 1 when a bound is broken. Loopback only.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { deflateSync, crc32 } from 'node:zlib';
import { JPEG_32x16 } from './fixtures.mjs';
import { uuidv7 } from './uuid.mjs';

const arg = (k, d) => { const i = process.argv.indexOf(k); return i > 0 ? process.argv[i + 1] : d; };
const BASE = `${arg('--base-url')}/api`;
const TOKEN = arg('--token', 'dev:alice');
const sha = (b) => createHash('sha256').update(b).digest('hex');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fail = (msg, data) => { console.log(JSON.stringify({ ...data, failed: msg })); process.exit(1); };

const upload = async (bytes, type) => {
  const id = uuidv7();
  const r = await fetch(`${BASE}/media/assets`, { method: 'POST', body: bytes, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': type, 'x-asset-id': id, 'x-asset-name': 'bomb', 'x-content-sha256': sha(bytes) } });
  if (r.status !== 201) fail(`upload answered ${r.status}`, {});
  return id;
};
const vmHwmMb = (pid) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;

/** The 32x16 JPEG with its frame header claiming w x h: tiny file, huge image. */
function jpegBomb(w, h) {
  const b = Buffer.from(JPEG_32x16);
  const sof = b.indexOf(Buffer.from([0xff, 0xc0]));
  b.writeUInt16BE(h, sof + 5); b.writeUInt16BE(w, sof + 7);
  return b;
}
/** A PNG claiming w x h with a few rows of data and no end: truncated. */
function pngBomb(w, h) {
  const chunk = (t, d) => { const l = Buffer.alloc(4); l.writeUInt32BE(d.length); const td = Buffer.concat([Buffer.from(t), d]); const c = Buffer.alloc(4); c.writeUInt32BE(crc32(td) >>> 0); return Buffer.concat([l, td, c]); };
  const ihdr = Buffer.alloc(13); ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 2;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc((w * 3 + 1) * 4)))]);
}

async function bombs() {
  const pid = Number(arg('--server-pid')); const maxRss = Number(arg('--max-rss-mb', '150'));
  // --side N: both bombs claim N x N (e.g. just under maxSourcePixels, so they are decoded).
  const side = arg('--side'); const [js, ps] = side ? [Number(side), Number(side)] : [10000, 11000];
  const ids = [];
  for (let i = 0; i < 4; i++) ids.push(await upload(jpegBomb(js, js), 'image/jpeg'), await upload(pngBomb(ps, ps), 'image/png'));
  const before = vmHwmMb(pid);
  const t0 = performance.now();
  const first = await Promise.all(ids.map((id) => fetch(`${BASE}/media/assets/${id}/thumbnail`, { headers: { authorization: `Bearer ${TOKEN}` } }).then(async (r) => [r.status, r.headers.get('content-type')?.includes('json') ? (await r.json()).error?.code : null])));
  const firstMs = performance.now() - t0;
  const t1 = performance.now();
  const again = await Promise.all(ids.map((id) => fetch(`${BASE}/media/assets/${id}/thumbnail`, { headers: { authorization: `Bearer ${TOKEN}` } }).then((r) => r.status)));
  const againMs = performance.now() - t1;
  const out = { bombs: ids.length, jpeg: `1.3 KB claiming ${js}x${js}`, png: `truncated, claiming ${ps}x${ps}`, rssBeforeMB: +before.toFixed(1), peakRssMB: +vmHwmMb(pid).toFixed(1), firstMs: Math.round(firstMs), againMs: Math.round(againMs) };
  if (out.peakRssMB > maxRss) fail(`peak RSS ${out.peakRssMB} MB over ${maxRss} MB`, out);
  // Header-refused bombs must be 422; bombs within the limits may decode (to a thumbnail of
  // mostly nothing). Either way the second answer is the first one, from memory.
  const ok = ([s, c]) => (s === 422 && c === 'THUMBNAIL_UNAVAILABLE') || (side && s === 200);
  if (!first.every(ok)) fail(`bombs answered ${JSON.stringify(first)}`, out);
  if (!again.every((s, i) => s === first[i][0])) fail(`second requests answered ${again}`, out);
  console.log(JSON.stringify(out));
}

const open = (port) => new Promise((resolve, reject) => { const s = connect(port, '127.0.0.1', () => resolve(s)); s.on('error', reject); });

async function idle() {
  const port = Number(new URL(BASE).port); const n = Number(arg('--sockets', '150')); const maxMs = Number(arg('--max-ms', '100'));
  const sockets = [];
  for (let i = 0; i < n; i++) sockets.push(await open(port).catch(() => null));
  await sleep(1000);
  const times = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const ctl = AbortSignal.timeout(5000);
    const r = await fetch(`${BASE}/media/capabilities`, { signal: ctl, headers: { connection: 'close' } }).catch((e) => ({ status: String(e.name) }));
    times.push(Math.round(performance.now() - t0));
    if (r.status !== 200) fail(`capabilities answered ${r.status} with ${n} idle sockets open`, { times });
    await sleep(100);
  }
  const closed = sockets.filter((s) => !s || s.destroyed || s.readableEnded).length;
  for (const s of sockets) s?.destroy();
  const out = { idleSockets: n, capabilitiesMs: times, maxMs: Math.max(...times) };
  if (out.maxMs > maxMs) fail(`capabilities took ${out.maxMs} ms with ${n} idle sockets`, out);
  console.log(JSON.stringify({ ...out, idleClosedByServer: closed }));
}

async function slow() {
  const port = Number(new URL(BASE).port); const limit = Number(arg('--header-timeout-s', '1'));
  const s = await open(port);
  const t0 = performance.now();
  s.write('GET /api/media/capabilities HTTP/1.1\r\nHost: 127.0.0.1\r\n');
  const closedAfter = await new Promise((resolve) => { s.on('close', () => resolve(performance.now() - t0)); setTimeout(() => resolve(null), (limit + 3) * 1000); });
  s.destroy();
  const out = { headerTimeoutS: limit, slowHeaderClosedAfterMs: closedAfter && Math.round(closedAfter) };
  if (closedAfter === null) fail(`a client trickling headers was not cut off within ${limit + 3} s`, out);
  console.log(JSON.stringify(out));
}

async function keepalive() {
  const port = Number(new URL(BASE).port); const limit = Number(arg('--keep-alive-s', '1'));
  const s = await open(port);
  let answer = '';
  s.on('data', (d) => { answer += d; });
  s.write('GET /api/media/capabilities HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  const t0 = performance.now();
  const closedAfter = await new Promise((resolve) => { s.on('close', () => resolve(performance.now() - t0)); setTimeout(() => resolve(null), (limit + 3) * 1000); });
  s.destroy();
  const out = { keepAliveTimeoutS: limit, answered: answer.startsWith('HTTP/1.1 200'), idleClosedAfterMs: closedAfter && Math.round(closedAfter) };
  if (!out.answered) fail('no 200 on the keep-alive connection', out);
  if (closedAfter === null) fail(`an idle keep-alive connection stayed open past ${limit + 3} s`, out);
  console.log(JSON.stringify(out));
}

async function stall() {
  const port = Number(new URL(BASE).port); const dir = arg('--objects-dir'); const limit = Number(arg('--idle-timeout-s', '1'));
  const id = uuidv7();
  const s = await open(port);
  let answer = '';
  s.on('data', (d) => { answer += d; });
  s.write(`POST /api/media/assets HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/octet-stream\r\nX-Asset-Id: ${id}\r\nX-Asset-Name: stalled.bin\r\nX-Content-SHA256: ${'0'.repeat(64)}\r\nContent-Length: 50000000\r\n\r\n`);
  s.write(randomBytes(6 * 1024 * 1024)); // more than one 5 MiB part, so storage has staged data
  const files = () => { const out = []; const walk = (d) => { for (const f of readdirSync(d)) { const p = join(d, f); if (statSync(p).isDirectory()) walk(p); else if (f.includes(id)) out.push(p); } }; walk(dir); return out; };
  await sleep(500);
  const during = files().length;
  await sleep((limit + 2) * 1000);
  const after = files().length;
  s.destroy();
  const status = /^HTTP\/1\.1 (\d+)/.exec(answer)?.[1];
  const out = { bodyIdleTimeoutS: limit, stagingFilesWhileSending: during, stagingFilesAfterStall: after, answer: status, code: /"code":"(\w+)"/.exec(answer)?.[1] };
  if (during === 0) fail('the upload left no staging data to check', out);
  if (after !== 0 || status !== '408' || out.code !== 'BODY_TIMEOUT') fail('a stalled upload was not abandoned (408 BODY_TIMEOUT, staging data removed)', out);
  console.log(JSON.stringify(out));
}

await ({ bombs, idle, slow, keepalive, stall }[process.argv[2]] ?? (() => fail(`unknown check ${process.argv[2]}`, {})))();
