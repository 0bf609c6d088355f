// Reference-server throughput against the raw disk it writes to, measured side by side in one
// run (no browser). Starts the server (SQLite + local files under target/bench/server-<pid>),
// then alternates, round after round:
//   (a) the raw disk: `dd bs=1M conv=fdatasync` of the same size into the same directory
//   (b) one upload of that size through `POST /api/media/assets` (X-Content-SHA256 etc.)
//   (c) the same bytes through a resumable-upload session (POST + PATCH /api/media/uploads,
//       the server's largest chunk, Content-Digest per chunk)
//   (d) many small uploads (--clients concurrent clients, --small-kb each), requests/s,
//       against the raw disk doing the same small durable writes (open, write, fdatasync,
//       close per file, as many writers at once) in a child process
// plus the client's own ceiling: the same client sending the same requests to a sink server
// (a child process that reads and drops each body), so a slow client shows up as such.
// Prints a table (median of --runs, min-max) and writes target/bench/server.json.
// Usage: node bench/server-run.mjs [--runs 3] [--mb 1024] [--small-n 2000] [--small-kb 100]
//   [--clients 50] [--server target/release/opfs-media-server] [--port 18790] [--perf FILE]
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';

const arg = (k, d) => { const i = process.argv.indexOf(k); return i > 0 ? process.argv[i + 1] : d; };
const RUNS = Number(arg('--runs', 3));
const MB = Number(arg('--mb', 1024));
const SMALL_N = Number(arg('--small-n', 2000));
const SMALL_KB = Number(arg('--small-kb', 100));
const CLIENTS = Number(arg('--clients', 50));
const PORT = Number(arg('--port', 18790));
const SERVER = arg('--server', 'target/release/opfs-media-server');
const TARGET = 0.5; // server / raw disk, at least
const FULL = MB === 1024 && SMALL_N >= 1000 && RUNS >= 3;
const MiB = 1 << 20;

const dir = `${process.cwd()}/target/bench/server-${process.pid}`;
rmSync(dir, { recursive: true, force: true });
mkdirSync(`${dir}/raw`, { recursive: true });
// --perf FILE: the server runs under `perf record -g` (profile in FILE, `perf report -i FILE --no-children`).
const PERF = arg('--perf');
const serverArgs = ['--bind', `127.0.0.1:${PORT}`, '--database-url', `sqlite://${dir}/db.sqlite?mode=rwc`,
  '--storage-url', `file://${dir}/objects`, '--max-upload-bytes', String(MB * MiB + 1)];
const api = PERF
  ? spawn('perf', ['record', '-F', '999', '-g', '-o', PERF, '--', SERVER, ...serverArgs], { stdio: ['ignore', 'ignore', 'inherit'] })
  : spawn(SERVER, serverArgs, { stdio: ['ignore', 'ignore', 'inherit'] });
// The sink: reads each body and drops it, answering 201 (what the client alone can send).
const sink = spawn(process.execPath, ['-e', `require('http').createServer((q, s) => { q.on('data', () => {});
  q.on('end', () => { s.writeHead(201, { 'content-type': 'application/json' }); s.end('{}'); }); }).listen(${PORT + 1}, '127.0.0.1')`],
{ stdio: 'inherit' });
const cleanup = () => { api.kill(); sink.kill(); };
process.on('exit', cleanup);

// One keep-alive agent per measurement, closed after it: a connection left idle between
// measurements is closed by the server (its header timeout), and reusing it would fail.
let agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
/** One request; `body` is a Buffer, or a function writing to the request (with backpressure). */
function request(port, method, path, headers, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent, headers: { authorization: 'Bearer dev:bench', ...headers } }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(parts).toString() }));
    });
    req.on('error', reject);
    if (typeof body === 'function') body(req).then(() => req.end(), reject);
    else req.end(body);
  });
}
const write = (req, buf) => (req.write(buf) ? Promise.resolve() : new Promise((r) => req.once('drain', r)));
const expect = (r, status, what) => { if (r.status !== status) throw new Error(`${what}: ${r.status} ${r.text}`); return r; };

for (let i = 0; ; i++) {
  try { if ((await request(PORT, 'GET', '/api/media/capabilities', {})).status === 200) break; } catch { /* not up yet */ }
  if (i > 100) throw new Error(`the server (${SERVER}) did not start`);
  await new Promise((r) => setTimeout(r, 100));
}
const caps = JSON.parse((await request(PORT, 'GET', '/api/media/capabilities', {})).text);
const CHUNK = Math.min(caps.resumableUploads.chunkMaxBytes, MB * MiB);

// The large body: one random MiB repeated (hashes computed once, outside the timings).
const mib = randomBytes(MiB);
const hashOf = (n) => { const h = createHash('sha256'); for (let i = 0; i < n; i++) h.update(mib); return h; };
const wholeHex = hashOf(MB).digest('hex');
const digestOf = (bytes) => `sha-256=:${hashOf(bytes / MiB).digest('base64')}:`;
const sendMiBs = (n) => async (req) => { for (let i = 0; i < n; i++) await write(req, mib); };
const bigHeaders = (id) => ({ 'content-type': 'application/octet-stream', 'content-length': String(MB * MiB),
  'x-asset-id': id, 'x-asset-name': 'big.bin', 'x-content-sha256': wholeHex });
const timed = async (f) => { const t = performance.now(); await f(); return (performance.now() - t) / 1000; };
const forget = () => rmSync(`${dir}/objects/bench`, { recursive: true, force: true }); // keep the disk from filling

const large = {
  async disk() {
    const s = await timed(async () => {
      const r = spawnSync('dd', ['if=/dev/zero', `of=${dir}/raw/big`, 'bs=1M', `count=${MB}`, 'conv=fdatasync'], { stdio: 'ignore' });
      if (r.status !== 0) throw new Error('dd failed');
    });
    rmSync(`${dir}/raw/big`);
    return MB * MiB / 1e6 / s;
  },
  async post() {
    const s = await timed(async () => expect(await request(PORT, 'POST', '/api/media/assets', bigHeaders(randomUUID()), sendMiBs(MB)), 201, 'POST'));
    forget();
    return MB * MiB / 1e6 / s;
  },
  async resumable() {
    const id = randomUUID();
    const size = MB * MiB;
    const s = await timed(async () => {
      const body = Buffer.from(JSON.stringify({ id, name: 'big.bin', size }));
      expect(await request(PORT, 'POST', '/api/media/uploads', { 'content-type': 'application/json' }, body), 201, 'create');
      for (let off = 0; off < size; off += CHUNK) {
        const len = Math.min(CHUNK, size - off);
        const final = off + len === size;
        const h = { 'content-type': 'application/offset+octet-stream', 'content-length': String(len), 'upload-offset': String(off),
          'content-digest': len === CHUNK ? CHUNK_DIGEST : digestOf(len), ...(final ? { 'x-content-sha256': wholeHex } : {}) };
        expect(await request(PORT, 'PATCH', `/api/media/uploads/${id}`, h, sendMiBs(len / MiB)), final ? 201 : 200, `PATCH at ${off}`);
      }
    });
    forget();
    return size / 1e6 / s;
  },
  async sink() {
    const s = await timed(async () => expect(await request(PORT + 1, 'POST', '/', bigHeaders(randomUUID()), sendMiBs(MB)), 201, 'sink'));
    return MB * MiB / 1e6 / s;
  },
};
const CHUNK_DIGEST = digestOf(CHUNK);

// Small files: distinct random bodies, hashed before the clock starts.
const smallBodies = Array.from({ length: SMALL_N }, () => randomBytes(SMALL_KB * 1000));
const smallHashes = smallBodies.map((b) => createHash('sha256').update(b).digest('hex'));
async function pool(task) {
  let next = 0;
  const s = await timed(() => Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (next < SMALL_N) await task(next++);
  })));
  return SMALL_N / s;
}
const small = {
  // In a child process with one libuv thread per writer, so its fsyncs overlap like the server's.
  async disk() {
    const script = `const fs = require('fs/promises'); const b = require('crypto').randomBytes(${SMALL_KB * 1000});
      let next = 0; const t = performance.now();
      Promise.all(Array.from({ length: ${CLIENTS} }, async () => { while (next < ${SMALL_N}) { const i = next++;
        const f = await fs.open('${dir}/raw/s' + i, 'w'); await f.write(b); await f.datasync(); await f.close(); } }))
      .then(() => console.log(${SMALL_N} / ((performance.now() - t) / 1000)));`;
    const r = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, UV_THREADPOOL_SIZE: String(CLIENTS) }, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`small raw writes: ${r.stderr}`);
    rmSync(`${dir}/raw`, { recursive: true }); mkdirSync(`${dir}/raw`);
    return Number(r.stdout);
  },
  async post() {
    const rate = await pool(async (i) => expect(await request(PORT, 'POST', '/api/media/assets', { 'content-type': 'application/octet-stream',
      'x-asset-id': randomUUID(), 'x-asset-name': `s${i}.bin`, 'x-content-sha256': smallHashes[i] }, smallBodies[i]), 201, 'small POST'));
    forget();
    return rate;
  },
  async sink() {
    return pool(async (i) => expect(await request(PORT + 1, 'POST', '/', { 'x-asset-id': randomUUID(), 'x-content-sha256': smallHashes[i] }, smallBodies[i]), 201, 'sink'));
  },
};

const samples = { largeDisk: [], largePost: [], largeResumable: [], largeSink: [], smallDisk: [], smallPost: [], smallSink: [] };
for (let run = 0; run < RUNS; run++) {
  // Alternate the order each round, so drift (other load on the machine) hits both sides.
  const order = run % 2 === 0
    ? [['largeDisk', large.disk], ['largePost', large.post], ['largeResumable', large.resumable], ['largeSink', large.sink], ['smallDisk', small.disk], ['smallPost', small.post], ['smallSink', small.sink]]
    : [['largeSink', large.sink], ['largeResumable', large.resumable], ['largePost', large.post], ['largeDisk', large.disk], ['smallSink', small.sink], ['smallPost', small.post], ['smallDisk', small.disk]];
  for (const [k, f] of order) {
    samples[k].push(await f());
    agent.destroy();
    agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  }
  process.stderr.write(`round ${run + 1}/${RUNS}: ${Object.entries(samples).map(([k, v]) => `${k} ${v.at(-1).toFixed(0)}`).join(', ')}\n`);
}
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const stat = (xs) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs), samples: xs });
// Ratios per round (same round's disk), then their median and spread.
const ratios = (num, den) => stat(samples[num].map((v, i) => v / samples[den][i]));
const rows = [
  { workload: `1 x ${MB} MiB, POST`, unit: 'MB/s', disk: stat(samples.largeDisk), server: stat(samples.largePost), client: stat(samples.largeSink), ratio: ratios('largePost', 'largeDisk') },
  { workload: `1 x ${MB} MiB, resumable (${CHUNK / MiB} MiB chunks)`, unit: 'MB/s', disk: stat(samples.largeDisk), server: stat(samples.largeResumable), client: stat(samples.largeSink), ratio: ratios('largeResumable', 'largeDisk') },
  { workload: `${SMALL_N} x ${SMALL_KB} KB, ${CLIENTS} clients`, unit: 'files/s', disk: stat(samples.smallDisk), server: stat(samples.smallPost), client: stat(samples.smallSink), ratio: ratios('smallPost', 'smallDisk') },
];
const f0 = (s) => `${s.median.toFixed(0)} (${s.min.toFixed(0)}-${s.max.toFixed(0)})`;
console.log(`\nreference server vs the raw disk (${SERVER}; SQLite + local files in ${dir}), median of ${RUNS} rounds (min-max)\n`);
console.log(`${'workload'.padEnd(40)} ${'unit'.padEnd(8)} ${'raw disk'.padStart(18)} ${'server'.padStart(18)} ${'ratio'.padStart(20)}  target    ${'client ceiling (sink)'.padStart(20)}`);
for (const r of rows) {
  const met = !FULL ? '(smoke: not judged)' : r.ratio.median >= TARGET ? 'met' : 'MISSED';
  console.log(`${r.workload.padEnd(40)} ${r.unit.padEnd(8)} ${f0(r.disk).padStart(18)} ${f0(r.server).padStart(18)} ${`${r.ratio.median.toFixed(2)}x (${r.ratio.min.toFixed(2)}-${r.ratio.max.toFixed(2)})`.padStart(20)}  >= ${TARGET}x ${met}  ${f0(r.client).padStart(20)}`);
}
console.log('\nraw disk: large = dd bs=1M conv=fdatasync; small = open + write + fdatasync + close per file, as many writers as clients');
mkdirSync('target/bench', { recursive: true });
writeFileSync('target/bench/server.json', JSON.stringify({ server: SERVER, runs: RUNS, mb: MB, smallN: SMALL_N, smallKb: SMALL_KB, clients: CLIENTS,
  chunkBytes: CHUNK, target: TARGET, judged: FULL, rows, date: new Date().toISOString() }, null, 2));
console.log('wrote target/bench/server.json');
cleanup();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
