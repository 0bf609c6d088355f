// Real server faults against the reference server in one storage configuration, chosen by
// the environment (scripts/test-server-faults.sh runs it on SQLite + local files and on
// PostgreSQL + S3):
//   FAULTS_DATABASE_URL, FAULTS_STORAGE_URL   the server's --database-url / --storage-url
//   FAULTS_S3_ENDPOINT                         with s3:// storage: the S3 endpoint to list
// - kill -9 mid-upload with committed assets beside the victim: after the restart and its
//   sweep, every committed asset is intact, the partial one is gone, nothing else is stored;
// - a client that disconnects mid-body: no asset, no object left (before any sweep);
// - a chunked body (no Content-Length) over the size limit: 413 PAYLOAD_TOO_LARGE, no asset,
//   no object left.
// - resumable uploads: a session started on one instance and continued and completed on another
//   (two processes on one database and store); kill -9 mid-append (after the restart the offset
//   is the last whole chunk and the session continues to identical bytes); the sweep removes an
//   expired session's bytes (the staging file, or the S3 multipart upload: ListMultipartUploads).
// Objects are counted in the store itself (the directory, or an S3 listing), not through the API;
// on S3 the open multipart uploads are listed too (ListMultipartUploads), since a crashed or cut
// upload leaves its bytes there, where an object listing does not show them.
// Nothing waits for a fixed time before it looks: each check polls for its condition.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { uuidv7 } from './uuid.mjs';
import { SERVER_BIN, startReferenceServer } from '../lib/reference-server.mjs';

const BIN = SERVER_BIN;
const DB = process.env.FAULTS_DATABASE_URL;
const STORAGE = process.env.FAULTS_STORAGE_URL;
const S3 = process.env.FAULTS_S3_ENDPOINT;
const SECRET = 'faults-secret-0123456789';
const MAX = 4_000_000;
if (!DB || !STORAGE) {
  console.error('set FAULTS_DATABASE_URL and FAULTS_STORAGE_URL (see scripts/test-server-faults.sh)');
  process.exit(2);
}

const sha = (b) => createHash('sha256').update(b).digest('hex');
const IS_S3 = STORAGE.startsWith('s3://');
/** Calls `get` every 50 ms until `ok(value)` holds or `ms` pass; returns the last value. */
async function poll(get, ok, ms = 5000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}
const token = execFileSync(BIN, ['--auth', 'hmac', '--secret', SECRET, 'mint-token', `faults${Date.now()}`]).toString().trim();
const auth = { authorization: `Bearer ${token}` };

let server;
let base;
async function start(extra = []) {
  server = await startReferenceServer(['--auth', 'hmac', '--secret', SECRET, '--max-upload-bytes', String(MAX),
    '--database-url', DB, '--storage-url', STORAGE, ...extra], { bin: BIN });
  base = server.url;
}
const stop = (signal) => server.stop(signal);
// A test that fails before its stop() must not leave a server running: the process would
// never exit, and CI would hang instead of failing.
after(() => server?.proc.kill('SIGKILL'));

// Every object in the store, by its key.
async function objects() {
  if (STORAGE.startsWith('file://')) {
    const root = STORAGE.slice('file://'.length);
    const walk = (dir) => readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n).slice(root.length + 1)]));
    try { return walk(root); } catch { return []; }
  }
  // The whole bucket: anything outside the configured prefix would be a leak too.
  const [bucket] = STORAGE.slice('s3://'.length).split('/');
  const xml = await (await fetch(`${S3}/${bucket}?list-type=2`)).text();
  assert.match(xml, /<ListBucketResult/, `listing the bucket: ${xml.slice(0, 200)}`);
  return [...xml.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]);
}
const mine = async (id) => (await objects()).filter((k) => k.includes(id));

// Open multipart uploads in the bucket (S3 ListMultipartUploads), by key.
async function multipartUploads() {
  const [bucket] = STORAGE.slice('s3://'.length).split('/');
  const xml = await (await fetch(`${S3}/${bucket}?uploads`)).text();
  assert.match(xml, /<ListMultipartUploadsResult/, `listing multipart uploads: ${xml.slice(0, 200)}`);
  return [...xml.matchAll(/<Upload>[\s\S]*?<Key>([^<]*)<\/Key>[\s\S]*?<\/Upload>/g)].map((m) => m[1]);
}
// An upload's bytes in the store while it runs: its staging file(s) with local files (they are
// in the directory walk), its open multipart upload on S3.
const inFlight = async (id) => (IS_S3 ? (await multipartUploads()).filter((k) => k.includes(id)) : mine(id));

async function upload(bytes, id = uuidv7()) {
  const r = await fetch(`${base}/api/media/assets`, { method: 'POST', body: bytes, headers: { ...auth, 'content-type': 'application/octet-stream', 'x-asset-id': id, 'x-asset-name': 'f.bin', 'x-content-sha256': sha(bytes) } });
  return { status: r.status, id, json: await r.json().catch(() => null) };
}

// A raw HTTP/1.1 upload over a socket, so the test decides when the body stops.
function rawUpload(id, { contentLength, chunked = false }) {
  const sock = net.connect(new URL(base).port, '127.0.0.1');
  const head = [`POST /api/media/assets HTTP/1.1`, `Host: 127.0.0.1`, `Authorization: ${auth.authorization}`,
    'Content-Type: application/octet-stream', `X-Asset-Id: ${id}`, 'X-Asset-Name: cut.bin', `X-Content-SHA256: ${'0'.repeat(64)}`,
    chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${contentLength}`, '', ''].join('\r\n');
  sock.write(head);
  let reply = '';
  let failure = '';
  sock.on('data', (d) => { reply += d; });
  sock.on('error', (e) => { failure ||= `${e.code ?? ''} ${e.message}`; });
  sock.setMaxListeners(0);
  // Resolves true once written, false if the connection ended first (never hangs on a
  // server that stopped reading and closed).
  const send = (buf) => new Promise((ok) => {
    if (sock.destroyed) return ok(false);
    sock.once('close', () => ok(false));
    sock.write(chunked ? Buffer.concat([Buffer.from(`${buf.length.toString(16)}\r\n`), buf, Buffer.from('\r\n')]) : buf, (err) => ok(!err));
  });
  return { sock, send, reply: () => reply, failure: () => failure, closed: new Promise((ok) => sock.on('close', ok)) };
}

async function listed() {
  return (await (await fetch(`${base}/api/media/assets?limit=1000`, { headers: auth })).json()).assets.map((a) => a.id);
}

const live = [];
test('setup: three committed assets', { timeout: 60_000 }, async () => {
  await start();
  for (let i = 0; i < 3; i++) {
    const bytes = randomBytes(200_000 + i);
    const r = await upload(bytes);
    assert.equal(r.status, 201);
    live.push({ id: r.id, sha: sha(bytes) });
  }
});

test('kill -9 mid-upload: after restart and sweep, committed assets intact, the partial one gone', { timeout: 60_000 }, async () => {
  const victim = uuidv7();
  const up = rawUpload(victim, { contentLength: MAX - 1 });
  for (let sent = 0; sent < 2_000_000; sent += 65536) await up.send(randomBytes(65536));
  // The server is storing the upload (a staging file, or an open multipart upload on S3).
  const partial = await poll(() => inFlight(victim), (v) => v.length > 0);
  await stop('SIGKILL');
  up.sock.destroy();
  assert.ok(partial.length > 0, 'the crash left a partial upload in the store: otherwise this proves nothing');
  await start(['--sweep-grace-secs', '0']);
  // The start-up sweep runs in the background: poll until it has removed the partial object.
  const left = await poll(() => mine(victim), (v) => v.length === 0);
  assert.deepEqual(left, [], `the crashed upload left ${left} (before the restart: ${partial})`);
  assert.equal((await fetch(`${base}/api/media/assets/${victim}`, { headers: auth })).status, 404, 'the crashed id is free');
  for (const a of live) {
    const r = await fetch(`${base}/api/media/assets/${a.id}`, { headers: auth });
    assert.equal(r.status, 200);
    assert.equal(sha(Buffer.from(await r.arrayBuffer())), a.sha, `${a.id} intact`);
  }
  assert.deepEqual((await listed()).sort(), live.map((a) => a.id).sort());
  const keys = await objects();
  assert.equal(keys.length, live.length, `only the committed objects remain: ${keys}`);
  if (STORAGE.startsWith('s3://') && STORAGE.split('/').length > 3) {
    const prefix = STORAGE.split('/').slice(3).join('/');
    assert.ok(keys.every((k) => k.startsWith(`${prefix}/`)), `every object under the configured prefix ${prefix}: ${keys}`);
  }
  if (IS_S3) {
    // The one thing a kill -9 leaves on S3: the crashed upload's open multipart upload, which
    // object_store cannot list, so no sweep of the server can see it (the bucket's
    // AbortIncompleteMultipartUpload rule removes it, docs/server.md). Exactly that one: no
    // other upload open, and no object of it.
    assert.deepEqual(await multipartUploads(), partial, 'open multipart uploads after the restart: the crashed one only');
  }
  console.log(`kill -9: ${partial.length} partial upload(s) in the store before the restart, no object after${IS_S3 ? ' (its multipart upload left to the lifecycle rule, nothing else open)' : ''}; ${live.length} committed intact`);
});

test('a client that disconnects mid-body leaves no asset and no object', { timeout: 60_000 }, async () => {
  const victim = uuidv7();
  const up = rawUpload(victim, { contentLength: MAX - 1 });
  for (let sent = 0; sent < 1_000_000; sent += 65536) await up.send(randomBytes(65536));
  // The upload is visibly being stored when it is cut: a staging file, or (S3) an open
  // multipart upload (its parts are not objects until completed).
  const during = await poll(() => inFlight(victim), (v) => v.length > 0);
  assert.ok(during.length > 0, 'the upload was being stored when cut');
  up.sock.destroy();
  const left = await poll(() => inFlight(victim), (v) => v.length === 0);
  assert.deepEqual(left, [], `the cut upload's ${IS_S3 ? 'multipart upload was not aborted' : 'staging data stayed'}, without waiting for a sweep`);
  assert.deepEqual(await mine(victim), [], 'no object of the cut upload');
  assert.equal((await fetch(`${base}/api/media/assets/${victim}`, { headers: auth })).status, 404);
  assert.equal((await objects()).length, live.length);
});

test('a chunked body over the size limit: 413 PAYLOAD_TOO_LARGE, nothing stored', { timeout: 60_000 }, async () => {
  const victim = uuidv7();
  const up = rawUpload(victim, { chunked: true });
  let sent = 0;
  while (sent < MAX + 1_000_000 && !up.reply().includes('\r\n\r\n')) {
    if (!(await up.send(randomBytes(65536)))) break;
    sent += 65536;
  }
  if (!up.sock.destroyed) up.sock.write('0\r\n\r\n');
  await Promise.race([up.closed, new Promise((r) => setTimeout(r, 3000))]);
  up.sock.destroy();
  const reply = up.reply();
  assert.match(reply, /^HTTP\/1\.1 413/, `reply after ${sent} body bytes: ${reply.slice(0, 200)} (socket: ${up.failure() || 'no error'})`);
  assert.match(reply, /PAYLOAD_TOO_LARGE/);
  const left = await poll(() => inFlight(victim), (v) => v.length === 0);
  assert.deepEqual(left, [], `the refused upload left ${IS_S3 ? 'its multipart upload open' : 'staging data'}`);
  assert.deepEqual(await mine(victim), [], 'no object of the refused upload');
  assert.equal((await fetch(`${base}/api/media/assets/${victim}`, { headers: auth })).status, 404);
  assert.equal((await objects()).length, live.length);
  await stop();
});

// --- resumable uploads ---
// S3 parts are at least 5 MiB; local files take small chunks, so the checks stay quick.
// Locally 2 MiB: half a chunk (what the kill test sends before the kill) is more than the
// server's 512 KiB write batch (server/src/localfile.rs), so it reaches the staging file.
const CHUNK = IS_S3 ? 5 * 1024 * 1024 : 2 * 1024 * 1024;
const RU_ARGS = ['--chunk-min-bytes', String(CHUNK), '--chunk-max-bytes', String(CHUNK), '--upload-lease-secs', '2'];
const RU_MAX = ['--max-upload-bytes', String(4 * CHUNK)];
const b64 = (b) => createHash('sha256').update(b).digest('base64');

async function ruStart(extra = []) {
  return startReferenceServer(['--auth', 'hmac', '--secret', SECRET, '--database-url', DB, '--storage-url', STORAGE, ...RU_MAX, ...RU_ARGS, ...extra], { bin: BIN });
}
async function ruCreate(url, size, id = uuidv7()) {
  const r = await fetch(`${url}/api/media/uploads`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ id, name: 'big.bin', size }) });
  assert.equal(r.status, 201, await r.clone().text());
  return id;
}
/** One append; a 409 UPLOAD_LOCKED (a dead instance's lease) is retried after Retry-After. */
async function ruAppend(url, id, offset, chunk, whole) {
  for (let i = 0; i < 20; i++) {
    const headers = { ...auth, 'content-type': 'application/offset+octet-stream', 'upload-offset': String(offset), 'content-digest': `sha-256=:${b64(chunk)}:` };
    if (whole) headers['x-content-sha256'] = whole;
    const r = await fetch(`${url}/api/media/uploads/${id}`, { method: 'PATCH', headers, body: chunk });
    const body = await r.json();
    if (r.status === 409 && body.error.code === 'UPLOAD_LOCKED') {
      await new Promise((ok) => setTimeout(ok, Number(r.headers.get('retry-after')) * 1000));
      continue;
    }
    return { status: r.status, json: body };
  }
  throw new Error('the session stayed locked');
}
const ruOffset = async (url, id) => {
  const r = await fetch(`${url}/api/media/uploads/${id}`, { headers: auth });
  return r.status === 200 ? (await r.json()).offset : r.status;
};
const download = async (url, id) => sha(Buffer.from(await (await fetch(`${url}/api/media/assets/${id}`, { headers: auth })).arrayBuffer()));

// The session's bytes waiting in storage: staging files, or open multipart uploads.
async function staged(id) {
  if (IS_S3) return (await multipartUploads()).filter((k) => k.includes(id));
  const root = STORAGE.slice('file://'.length);
  const walk = (dir) => readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));
  try { return walk(join(root, '.uploads')).filter((f) => f.includes(id)); } catch { return []; }
}

test('resumable: a session started on instance A continues and completes on instance B (one database, one store)', { timeout: 120_000 }, async () => {
  const [a, b] = [await ruStart(), await ruStart()];
  try {
    const bytes = randomBytes(2 * CHUNK + 1000);
    const id = await ruCreate(a.url, bytes.length);
    assert.equal((await ruAppend(a.url, id, 0, bytes.subarray(0, CHUNK))).status, 200, 'chunk 1 on A');
    assert.equal(await ruOffset(b.url, id), CHUNK, 'B sees the offset A confirmed');
    assert.equal((await ruAppend(b.url, id, CHUNK, bytes.subarray(CHUNK, 2 * CHUNK))).status, 200, 'chunk 2 on B');
    assert.equal(await ruOffset(a.url, id), 2 * CHUNK, 'and A sees B\'s');
    const done = await ruAppend(b.url, id, 2 * CHUNK, bytes.subarray(2 * CHUNK), sha(bytes));
    assert.equal(done.status, 201, JSON.stringify(done.json));
    assert.equal(done.json.sha256, sha(bytes));
    assert.equal(await download(a.url, id), sha(bytes), 'A serves the bytes B completed');
    assert.deepEqual(await staged(id), [], 'nothing left staged');
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('resumable: kill -9 mid-append; after the restart the offset is the last whole chunk and the session completes to identical bytes', { timeout: 120_000 }, async () => {
  let srv = await ruStart();
  const bytes = randomBytes(3 * CHUNK + 1000);
  const id = await ruCreate(srv.url, bytes.length);
  assert.equal((await ruAppend(srv.url, id, 0, bytes.subarray(0, CHUNK))).status, 200);
  // Chunk 2, cut: headers and half the body, then the server dies.
  const sock = net.connect(new URL(srv.url).port, '127.0.0.1');
  sock.on('error', () => {});
  const chunk = bytes.subarray(CHUNK, 2 * CHUNK);
  sock.write([`PATCH /api/media/uploads/${id} HTTP/1.1`, 'Host: 127.0.0.1', `Authorization: ${auth.authorization}`,
    'Content-Type: application/offset+octet-stream', `Content-Length: ${CHUNK}`, `Upload-Offset: ${CHUNK}`,
    `Content-Digest: sha-256=:${b64(chunk)}:`, '', ''].join('\r\n'));
  // Half the chunk, then the kill once the server holds it: with local files the staging file
  // grows past the first chunk; S3 shows nothing before the part is put, so there the
  // condition is that the half left this process.
  await new Promise((ok) => sock.write(chunk.subarray(0, CHUNK / 2), ok));
  const stagedSize = async () => { const [f] = await staged(id); return f ? statSync(f).size : 0; };
  const partial = IS_S3 ? null : await poll(stagedSize, (n) => n > CHUNK);
  await srv.stop('SIGKILL');
  sock.destroy();
  if (!IS_S3) assert.ok(partial > CHUNK, `the crash left a partial chunk in the staging file (${partial} bytes): otherwise this proves nothing`);
  srv = await ruStart();
  try {
    assert.equal(await ruOffset(srv.url, id), CHUNK, 'the offset is the last whole chunk');
    for (let off = CHUNK; off < bytes.length; off += CHUNK) {
      const part = bytes.subarray(off, Math.min(off + CHUNK, bytes.length));
      const final = off + part.length === bytes.length;
      const r = await ruAppend(srv.url, id, off, part, final ? sha(bytes) : undefined);
      assert.equal(r.status, final ? 201 : 200, JSON.stringify(r.json));
    }
    assert.equal(await download(srv.url, id), sha(bytes), 'bytes identical');
    assert.deepEqual(await staged(id), [], 'nothing left staged');
    console.log(`kill -9 mid-append: ${IS_S3 ? 'S3 (the part was never put)' : `${partial} bytes staged at the kill`}, resumed at ${CHUNK}, bytes identical`);
  } finally {
    await srv.stop();
  }
});

test('resumable: the sweep removes an expired session and its bytes (staging file / S3 multipart upload aborted)', { timeout: 120_000 }, async () => {
  const srv = await ruStart(['--upload-session-lifetime-secs', '2']);
  try {
    const bytes = randomBytes(2 * CHUNK + 1000);
    const id = await ruCreate(srv.url, bytes.length);
    assert.equal((await ruAppend(srv.url, id, 0, bytes.subarray(0, CHUNK))).status, 200);
    const before = await staged(id);
    assert.equal(before.length, 1, `the session's bytes are staged: ${before}`);
    let left = before;
    for (let i = 0; i < 100 && left.length; i++) { await new Promise((r) => setTimeout(r, 100)); left = await staged(id); }
    assert.deepEqual(left, [], 'the sweep removed the expired session\'s bytes');
    assert.equal(await ruOffset(srv.url, id), 404, 'the session is gone');
    console.log(`expired session: ${IS_S3 ? 'multipart upload aborted' : 'staging file removed'} by the sweep`);
  } finally {
    await srv.stop();
  }
});
