// The reference server under hostile clients (issue 13), one check per invocation:
//   node tests/conformance/hostile.mjs bombs    --base-url URL --token T --server-pid PID --max-rss-mb 150 [--side 10000]
//   node tests/conformance/hostile.mjs idle     --base-url URL --sockets 150 --max-connections 64 --max-ms 1000
//   node tests/conformance/hostile.mjs slow     --base-url URL --header-timeout-s 1
//   node tests/conformance/hostile.mjs keepalive --base-url URL --keep-alive-s 1
//   node tests/conformance/hostile.mjs stall    --base-url URL --token T --objects-dir DIR --idle-timeout-s 1
//   node tests/conformance/hostile.mjs stall-json --base-url URL --token T --idle-timeout-s 1
// Prints one JSON line of measurements; exits 1 when a bound is broken. Loopback only.
// Timeouts are bounded at both ends: cut off too late fails, and so does cut off at once
// (a server that drops every connection would otherwise pass).
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
/** Polls `cond` every 20 ms until it holds (true) or `ms` pass (false). */
const until = async (cond, ms) => { const end = performance.now() + ms; for (;;) { if (await cond()) return true; if (performance.now() > end) return false; await sleep(20); } };
/** A timeout of `limitS` seconds fired after `ms`: not before 0.8 x the limit (a server that
 *  cuts at once), not after the limit + 3 s. Returns what is wrong, or null. */
const outsideTimeout = (ms, limitS) => (ms === null ? `not within ${limitS + 3} s` : ms < limitS * 800 ? `after ${Math.round(ms)} ms, before ${limitS * 800} ms (0.8 x the ${limitS} s timeout)` : null);

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
  const port = Number(new URL(BASE).port); const n = Number(arg('--sockets', '150')); const maxMs = Number(arg('--max-ms', '1000'));
  const maxConn = Number(arg('--max-connections', '64'));
  // Every connect must succeed (the kernel queues them while the server is at its cap); each
  // socket reads, so a close by the server is seen ('end'), not only a reset.
  const sockets = []; const failedConnects = [];
  for (let i = 0; i < n; i++) {
    const s = await open(port).catch((e) => { failedConnects.push(e.code ?? e.message); return null; });
    if (s) { s.closedByServer = false; s.on('end', () => { s.closedByServer = true; }); s.on('error', () => { s.closedByServer = true; }); s.resume(); sockets.push(s); }
  }
  if (failedConnects.length) fail(`${failedConnects.length} of ${n} connects failed: ${[...new Set(failedConnects)]}`, {});
  const closed = () => sockets.filter((s) => s.closedByServer).length;
  // At its cap the server makes room by closing the longest-idle connections (idle >= 250 ms):
  // wait until it has made room for every socket, i.e. closed at least n - maxConn of them.
  if (!(await until(() => closed() >= n - maxConn, 5000))) fail(`the server closed ${closed()} idle sockets, not the ${n - maxConn} over its cap of ${maxConn}, within 5 s`, { idleClosedByServer: closed() });
  const times = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const ctl = AbortSignal.timeout(5000);
    const r = await fetch(`${BASE}/media/capabilities`, { signal: ctl, headers: { connection: 'close' } }).catch((e) => ({ status: String(e.name) }));
    times.push(Math.round(performance.now() - t0));
    if (r.status !== 200) fail(`capabilities answered ${r.status} with ${n} idle sockets open`, { times });
    await sleep(100);
  }
  const idleClosedByServer = closed();
  for (const s of sockets) s.destroy();
  const out = { idleSockets: n, capabilitiesMs: times, maxMs: Math.max(...times), idleClosedByServer };
  if (out.maxMs > maxMs) fail(`capabilities took ${out.maxMs} ms with ${n} idle sockets`, out);
  // Both ends: it closed those over the cap, and not many more (one per capabilities request
  // at most): a server that drops idle connections wholesale, or at once, fails here.
  if (idleClosedByServer < n - maxConn || idleClosedByServer > n - maxConn + times.length) fail(`the server closed ${idleClosedByServer} of ${n} idle sockets; the cap of ${maxConn} asks for ${n - maxConn} to ${n - maxConn + times.length}`, out);
  console.log(JSON.stringify(out));
}

async function slow() {
  const port = Number(new URL(BASE).port); const limit = Number(arg('--header-timeout-s', '1'));
  const s = await open(port);
  const t0 = performance.now();
  s.write('GET /api/media/capabilities HTTP/1.1\r\nHost: 127.0.0.1\r\n');
  const closedAfter = await new Promise((resolve) => { s.on('close', () => resolve(performance.now() - t0)); setTimeout(() => resolve(null), (limit + 3) * 1000); });
  s.destroy();
  const out = { headerTimeoutS: limit, slowHeaderClosedAfterMs: closedAfter && Math.round(closedAfter) };
  const wrong = outsideTimeout(closedAfter, limit);
  if (wrong) fail(`a client trickling headers was cut off ${wrong}`, out);
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
  const wrong = outsideTimeout(closedAfter, limit);
  if (wrong) fail(`an idle keep-alive connection was closed ${wrong}`, out);
  console.log(JSON.stringify(out));
}

async function stall() {
  const port = Number(new URL(BASE).port); const dir = arg('--objects-dir'); const limit = Number(arg('--idle-timeout-s', '1'));
  const id = uuidv7();
  const s = await open(port);
  let answer = '';
  s.on('data', (d) => { answer += d; });
  s.write(`POST /api/media/assets HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/octet-stream\r\nX-Asset-Id: ${id}\r\nX-Asset-Name: stalled.bin\r\nX-Content-SHA256: ${'0'.repeat(64)}\r\nContent-Length: 50000000\r\n\r\n`);
  // The body's last byte left at `sent` (written to the kernel): the stall starts there.
  const sent = await new Promise((ok) => s.write(randomBytes(6 * 1024 * 1024), () => ok(performance.now()))); // more than one 5 MiB part, so storage has staged data
  const files = () => { const out = []; const walk = (d) => { for (const f of readdirSync(d)) { const p = join(d, f); if (statSync(p).isDirectory()) walk(p); else if (f.includes(id)) out.push(p); } }; walk(dir); return out; };
  // Staging data appears once the server has read into the body: wait for it (not a fixed time).
  const staged = await until(() => files().length > 0 || answer !== '', (limit + 3) * 1000);
  const during = files().length;
  const answered = await until(() => answer.includes('\r\n\r\n'), (limit + 3) * 1000);
  const answeredAfter = answered ? performance.now() - sent : null;
  // The 408 and the removal of the staging data are one step: poll briefly for the files.
  await until(() => files().length === 0, 2000);
  const after = files().length;
  s.destroy();
  const status = /^HTTP\/1\.1 (\d+)/.exec(answer)?.[1];
  const out = { bodyIdleTimeoutS: limit, stagingFilesWhileSending: during, stagingFilesAfterStall: after, answer: status, code: /"code":"(\w+)"/.exec(answer)?.[1], answeredAfterMs: answeredAfter && Math.round(answeredAfter) };
  if (!staged || during === 0) fail('the upload left no staging data to check', out);
  const wrong = outsideTimeout(answeredAfter, limit);
  if (wrong) fail(`a stalled upload was answered ${wrong} after its last byte`, out);
  if (after !== 0 || status !== '408' || out.code !== 'BODY_TIMEOUT') fail('a stalled upload was not abandoned (408 BODY_TIMEOUT, staging data removed)', out);
  console.log(JSON.stringify(out));
}

/** A JSON body that stalls (a metadata PATCH) gets 408 BODY_TIMEOUT too, and changes nothing. */
async function stallJson() {
  const port = Number(new URL(BASE).port); const limit = Number(arg('--idle-timeout-s', '1'));
  const id = uuidv7();
  const body = Buffer.from('json stall');
  const up = await fetch(`${BASE}/media/assets`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'text/plain', 'x-asset-id': id, 'x-asset-name': 'before.txt', 'x-content-sha256': sha(body) }, body });
  if (up.status !== 201) fail('could not upload the asset to patch', { status: up.status });
  const s = await open(port);
  let answer = '';
  s.on('data', (d) => { answer += d; });
  const t0 = performance.now();
  s.write(`PATCH /api/media/assets/${id}/metadata HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nIf-Match: "1"\r\nContent-Length: 100\r\n\r\n{"name":`);
  while (!answer.includes('\r\n\r\n') && performance.now() - t0 < (limit + 3) * 1000) await sleep(50);
  const ms = Math.round(performance.now() - t0);
  s.destroy();
  const meta = await (await fetch(`${BASE}/media/assets/${id}/metadata`, { headers: { authorization: `Bearer ${TOKEN}` } })).json();
  const out = { bodyIdleTimeoutS: limit, answer: /^HTTP\/1\.1 (\d+)/.exec(answer)?.[1], code: /"code":"(\w+)"/.exec(answer)?.[1], answeredAfterMs: ms, nameAfter: meta.name, versionAfter: meta.version };
  if (out.answer !== '408' || out.code !== 'BODY_TIMEOUT') fail('a stalled JSON body was not answered 408 BODY_TIMEOUT', out);
  if (ms < limit * 1000 - 100) fail('answered before the idle timeout', out);
  if (meta.name !== 'before.txt' || meta.version !== 1) fail('a stalled PATCH changed the asset', out);
  console.log(JSON.stringify(out));
}

await ({ bombs, idle, slow, keepalive, stall, 'stall-json': stallJson }[process.argv[2]] ?? (() => fail(`unknown check ${process.argv[2]}`, {})))();
