// The opfs-media protocol conformance suite (docs/protocol.md). Runs against any server:
//   npm run conformance -- --base-url http://127.0.0.1:8787 --token TOKEN --token2 TOKEN_OF_ANOTHER_USER
// --base-url is the API root, read as a client reads `apiBaseUrl` ("API root" in the protocol):
// `https://host/v2/sync` means requests to `https://host/v2/sync/media/...`, a bare origin
// means `<origin>/api`. Every check talks HTTP only, so any implementation can run it. Each
// run uses fresh ids.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { uuidv7 } from './uuid.mjs';
import { JPEG_32x16 } from './fixtures.mjs';

const arg = (k, d) => { const i = process.argv.indexOf(k); return i > 0 ? process.argv[i + 1] : (process.env[k.replace(/^--/, 'CONFORMANCE_').replace(/-/g, '_').toUpperCase()] ?? d); };
const USAGE = `usage: node tests/conformance/suite.mjs --base-url URL --token TOKEN --token2 TOKEN2

Checks a server against docs/protocol.md over HTTP. Options (or environment variables):
  --base-url URL   the API root (CONFORMANCE_BASE_URL): requests go to URL/media/...;
                   a bare origin such as http://127.0.0.1:8787 means http://127.0.0.1:8787/api
  --token T        a valid credential of one user (CONFORMANCE_TOKEN), sent as "Bearer T"
  --token2 T       a valid credential of a second user (CONFORMANCE_TOKEN2)
  --cors-origin O  a browser origin the server allows (CONFORMANCE_CORS_ORIGIN): enables the
                   CORS checks (preflight, Vary, refused origins)
  --help           this text
Node's test runner options work too, e.g. --test-name-pattern="rate limit".`;
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(USAGE);
  process.exit(0);
}
const BASE_ARG = arg('--base-url');
const TOKEN = arg('--token');
const TOKEN2 = arg('--token2');
const CORS_ORIGIN = arg('--cors-origin');
if (!BASE_ARG || !TOKEN || !TOKEN2) {
  console.error(USAGE);
  process.exit(2);
}
/** The API root, by the rule clients use for `apiBaseUrl`. */
function apiRoot(base) {
  const u = new URL(base);
  const path = u.pathname.replace(/\/+$/, '');
  return u.origin + (path === '' ? '/api' : path);
}
const BASE = apiRoot(BASE_ARG);

const sha = (buf) => createHash('sha256').update(buf).digest('hex');
const auth = (t = TOKEN) => ({ authorization: `Bearer ${t}` });

async function req(method, path, { token = TOKEN, headers = {}, body } = {}) {
  const res = await fetch(BASE + path, { method, headers: { ...(token ? auth(token) : {}), ...headers }, body });
  const buf = Buffer.from(await res.arrayBuffer());
  let json = null;
  if ((res.headers.get('content-type') ?? '').includes('application/json')) json = JSON.parse(buf.toString('utf8'));
  return { status: res.status, headers: res.headers, buf, json };
}

async function upload(bytes, { id = uuidv7(), name = 'file.bin', type = 'application/octet-stream', token = TOKEN, checksum = sha(bytes), headers = {} } = {}) {
  const h = { 'content-type': type, 'x-asset-id': id, 'x-asset-name': encodeURIComponent(name), ...headers };
  if (checksum !== null) h['x-content-sha256'] = checksum;
  const r = await req('POST', '/media/assets', { token, headers: h, body: bytes });
  return { ...r, id };
}

function assertError(r, status, code) {
  assert.equal(r.status, status, `status (body: ${r.buf.toString('utf8').slice(0, 300)})`);
  assert.equal(r.json?.error?.code, code, 'error code');
  assert.equal(typeof r.json.error.message, 'string');
}

// A tiny valid PNG (w x h, RGB, or RGBA half transparent), so thumbnails can be checked.
function png(w, h, { alpha = false } = {}) {
  const px = alpha ? 4 : 3;
  return import('node:zlib').then(({ deflateSync, crc32 }) => {
    const raw = Buffer.alloc((w * px + 1) * h, 0x80);
    for (let y = 0; y < h; y++) raw[y * (w * px + 1)] = 0;
    const chunk = (t, d) => { const l = Buffer.alloc(4); l.writeUInt32BE(d.length); const td = Buffer.concat([Buffer.from(t), d]); const c = Buffer.alloc(4); c.writeUInt32BE(crc32(td) >>> 0); return Buffer.concat([l, td, c]); };
    const ihdr = Buffer.alloc(13); ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = alpha ? 6 : 2;
    return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
  });
}

/** The JPEG with an EXIF APP1 segment (little-endian TIFF, one IFD entry: Orientation). */
function withOrientation(jpeg, orientation) {
  const tiff = Buffer.from([0x49, 0x49, 0x2a, 0x00, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, orientation, 0, 0, 0, 0, 0, 0, 0]);
  const body = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
  const len = Buffer.alloc(2); len.writeUInt16BE(body.length + 2);
  return Buffer.concat([jpeg.subarray(0, 2), Buffer.from([0xff, 0xe1]), len, body, jpeg.subarray(2)]);
}

/** Width, height and colour type of a PNG. */
const pngInfo = (buf) => ({ w: buf.readUInt32BE(16), h: buf.readUInt32BE(20), colorType: buf[25] });

let caps;

test('capabilities: protocol, versions and limits (no auth needed)', async () => {
  const r = await req('GET', '/media/capabilities', { token: null });
  assert.equal(r.status, 200);
  caps = r.json;
  assert.equal(caps.protocol, 'opfs-media');
  assert.ok(Array.isArray(caps.versions) && caps.versions.includes(1));
  assert.ok(Number.isSafeInteger(caps.maxUploadBytes) && caps.maxUploadBytes > 0);
  assert.ok(Number.isSafeInteger(caps.pageMax) && caps.pageMax >= 1);
  const t = caps.thumbnails;
  assert.ok(t.sourceTypes.includes('image/png') && t.sourceTypes.includes('image/jpeg'), 'thumbnails.sourceTypes has PNG and JPEG');
  assert.ok(Number.isSafeInteger(t.maxSourceBytes) && Number.isSafeInteger(t.maxSourcePixels), 'thumbnail source limits');
  assert.ok(Number.isSafeInteger(caps.maxJsonBytes) && caps.maxJsonBytes >= 65536, 'maxJsonBytes');
  assert.equal(typeof caps.chunkedUploads, 'boolean');
  assert.equal(typeof caps.cookieName, 'string');
  assert.ok(typeof caps.datasetId === 'string' && caps.datasetId.length > 0, 'datasetId');
  const again = await req('GET', '/media/capabilities', { token: null });
  assert.equal(again.json.datasetId, caps.datasetId, 'datasetId is stable');
});

test('unknown paths and methods under the API root get JSON errors', async () => {
  assertError(await req('GET', '/media/nothing-here'), 404, 'UNKNOWN_ENDPOINT');
  assertError(await req('GET', '/media/assets/x/y/z', { token: null }), 404, 'UNKNOWN_ENDPOINT');
  assertError(await req('PUT', '/media/assets'), 405, 'METHOD_NOT_ALLOWED');
  assertError(await req('GET', '/media/assets/%ff'), 400, 'INVALID_ID');
});

test('auth: missing or invalid credentials get 401 UNAUTHENTICATED', async () => {
  for (const token of [null, 'not-a-valid-token', `${TOKEN}!`]) {
    const r = await req('GET', '/media/assets', { token });
    assertError(r, 401, 'UNAUTHENTICATED');
    assert.match(r.headers.get('www-authenticate') ?? '', /Bearer/);
  }
});

test('upload: 201 with the asset record, relative path, version 1', async () => {
  const bytes = randomBytes(5000);
  const r = await upload(bytes, { name: 'héllo wörld.bin', type: 'application/x-test' });
  assert.equal(r.status, 201);
  const a = r.json;
  assert.equal(a.id, r.id);
  assert.equal(a.name, 'héllo wörld.bin');
  assert.equal(a.type, 'application/x-test');
  assert.equal(a.size, 5000);
  assert.equal(a.sha256, sha(bytes));
  assert.equal(a.version, 1);
  assert.deepEqual(a.tags, []);
  assert.ok(Number.isSafeInteger(a.createdAt) && Number.isSafeInteger(a.updatedAt));
  assert.equal(typeof a.url, 'string');
  // `url` resolves against the URL of the response that carried it and serves the bytes.
  const byUrl = await fetch(new URL(a.url, `${BASE}/media/assets`), { headers: auth() });
  assert.equal(byUrl.status, 200, `GET of the asset's url ${a.url}`);
  assert.deepEqual(Buffer.from(await byUrl.arrayBuffer()), bytes);
  assert.ok(typeof a.path === 'string' && !a.path.startsWith('/') && !a.path.split('/').includes('..'), `path ${a.path} must be relative`);
  assert.equal(r.headers.get('etag'), '"1"');
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
});

test('upload is idempotent on the client id: a retry returns the same asset, a different body is 409', async () => {
  const bytes = randomBytes(3000);
  const first = await upload(bytes);
  assert.equal(first.status, 201);
  const retry = await upload(bytes, { id: first.id });
  assert.equal(retry.status, 200);
  assert.deepEqual(retry.json, first.json, 'the retry returns the stored asset unchanged');
  const other = await upload(randomBytes(3000), { id: first.id });
  assertError(other, 409, 'ID_CONFLICT');
  const got = await req('GET', `/media/assets/${first.id}`);
  assert.deepEqual(got.buf, bytes, 'the original bytes are untouched');
});

test('checksum: a mismatch is 422 and stores nothing; a missing checksum is 400', async () => {
  const bytes = randomBytes(2000);
  const bad = await upload(bytes, { checksum: sha(Buffer.from('something else')) });
  assertError(bad, 422, 'CHECKSUM_MISMATCH');
  assertError(await req('GET', `/media/assets/${bad.id}`), 404, 'NOT_FOUND');
  const ok = await upload(bytes, { id: bad.id });
  assert.equal(ok.status, 201, 'the id is still free after a rejected upload');
  assertError(await upload(bytes, { checksum: null }), 400, 'MISSING_CHECKSUM');
  assertError(await upload(bytes, { checksum: 'xyz' }), 400, 'MISSING_CHECKSUM');
});

test('bad input: ids, names, content types, tags', async () => {
  const bytes = Buffer.from('x');
  for (const id of ['not-a-uuid', '0190F0C2-7A0E-7CC0-8000-000000000001', '0190f0c27a0e7cc08000000000000001', '..%2F..%2Fetc']) {
    assertError(await upload(bytes, { id }), 400, 'INVALID_ID');
  }
  for (const name of ['', '../x', 'a/b', 'bell\u0007', 'x'.repeat(256)]) {
    assertError(await upload(bytes, { name }), 400, 'INVALID_NAME');
  }
  assertError(await upload(bytes, { type: 'multipart/form-data; boundary=x' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
  assertError(await upload(bytes, { headers: { 'x-asset-tags': encodeURIComponent('{"not":"a list"}') } }), 400, 'INVALID_TAGS');
  for (const id of ['nope', '0190F0C2-7A0E-7CC0-8000-000000000001']) {
    assertError(await req('GET', `/media/assets/${id}`), 400, 'INVALID_ID');
    assertError(await req('DELETE', `/media/assets/${id}`), 400, 'INVALID_ID');
  }
  assertError(await req('GET', `/media/assets/${uuidv7()}`), 404, 'NOT_FOUND');
});

test('size limit: over maxUploadBytes is 413 PAYLOAD_TOO_LARGE', async (t) => {
  if (caps.maxUploadBytes > 64 * 1024 * 1024) {
    t.skip(`the server allows ${caps.maxUploadBytes} bytes; run it with a smaller limit to check 413 cheaply`);
    return;
  }
  const big = Buffer.alloc(caps.maxUploadBytes + 1, 1);
  const r = await upload(big);
  assertError(r, 413, 'PAYLOAD_TOO_LARGE');
  assertError(await req('GET', `/media/assets/${r.id}`), 404, 'NOT_FOUND');
  // Content-Length is judged before the id is looked up: an existing id gets 413 too.
  const small = await upload(Buffer.from('small'));
  assertError(await upload(big, { id: small.id, checksum: sha(Buffer.from('small')) }), 413, 'PAYLOAD_TOO_LARGE');
});

test('download: bytes, type, ETag, If-None-Match, Range, safe headers', async () => {
  const bytes = randomBytes(1000);
  const { id } = await upload(bytes, { name: 'pic "1".png', type: 'image/png' });
  const r = await req('GET', `/media/assets/${id}`);
  assert.equal(r.status, 200);
  assert.deepEqual(r.buf, bytes);
  assert.equal(r.headers.get('content-type'), 'image/png');
  assert.equal(r.headers.get('etag'), `"${sha(bytes)}"`);
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  const cd = r.headers.get('content-disposition') ?? '';
  assert.match(cd, /^attachment;/);
  const star = /filename\*=UTF-8''([^;\s]+)/.exec(cd)?.[1] ?? '';
  assert.match(star, /^(?:[A-Za-z0-9!#$&+\-.^_`|~]|%[0-9A-Fa-f]{2})+$/, `filename* ${star} is RFC 8187 attr-chars and %XX only`);
  assert.equal(decodeURIComponent(star), 'pic "1".png', 'filename* decodes to the name');
  assert.equal((await req('GET', `/media/assets/${id}`, { headers: { 'if-none-match': `"${sha(bytes)}"` } })).status, 304);
  const part = await req('GET', `/media/assets/${id}`, { headers: { range: 'bytes=10-19' } });
  assert.equal(part.status, 206);
  assert.deepEqual(part.buf, bytes.subarray(10, 20));
  assert.equal(part.headers.get('content-range'), 'bytes 10-19/1000');
  const tail = await req('GET', `/media/assets/${id}`, { headers: { range: 'bytes=-5' } });
  assert.deepEqual(tail.buf, bytes.subarray(995));
  const bad = await req('GET', `/media/assets/${id}`, { headers: { range: 'bytes=5000-' } });
  assertError(bad, 416, 'RANGE_NOT_SATISFIABLE');
  assert.equal(bad.headers.get('content-range'), 'bytes */1000');
});

test('metadata: read with ETag, If-Match required, 412 with the current record when stale', async () => {
  const { id } = await upload(Buffer.from('meta'), { name: 'm.txt', type: 'text/plain' });
  const m = await req('GET', `/media/assets/${id}/metadata`);
  assert.equal(m.status, 200);
  assert.equal(m.json.version, 1);
  assert.equal(m.headers.get('etag'), '"1"');
  const patch = (body, headers) => req('PATCH', `/media/assets/${id}/metadata`, { headers: { 'content-type': 'application/json', ...headers }, body });
  assertError(await patch(JSON.stringify({ name: 'n.txt' }), {}), 428, 'PRECONDITION_REQUIRED');
  const ok = await patch(JSON.stringify({ name: 'renamed.txt', tags: ['a', 'b'] }), { 'if-match': '"1"' });
  assert.equal(ok.status, 200);
  assert.equal(ok.json.version, 2);
  assert.equal(ok.json.name, 'renamed.txt');
  assert.deepEqual(ok.json.tags, ['a', 'b']);
  assert.ok(ok.json.updatedAt > m.json.updatedAt);
  assert.equal(ok.headers.get('etag'), '"2"');
  const stale = await patch(JSON.stringify({ name: 'lost-update.txt' }), { 'if-match': '"1"' });
  assertError(stale, 412, 'PRECONDITION_FAILED');
  assert.equal(stale.json.error.details.version, 2, '412 carries the current record');
  assert.equal(stale.json.error.details.name, 'renamed.txt');
  assertError(await patch('{not json', { 'if-match': '"2"' }), 400, 'INVALID_JSON');
  assertError(await patch(JSON.stringify({ colour: 'red' }), { 'if-match': '"2"' }), 400, 'INVALID_JSON');
  assertError(await req('PATCH', `/media/assets/${id}/metadata`, { headers: { 'content-type': 'text/plain', 'if-match': '"2"' }, body: 'x' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
  assertError(await patch(JSON.stringify({ name: '../x' }), { 'if-match': '"2"' }), 400, 'INVALID_NAME');
  assertError(await patch(JSON.stringify({ name: 'x'.repeat(70 * 1024) }), { 'if-match': '"2"' }), 413, 'PAYLOAD_TOO_LARGE');
  const bytes = await req('GET', `/media/assets/${id}`);
  assert.equal(bytes.buf.toString(), 'meta', 'metadata edits never touch the bytes');
});

async function allChanges(cursor, limit) {
  const out = [];
  for (let i = 0; i < 1000; i++) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (cursor) q.set('cursor', cursor);
    const r = await req('GET', `/media/changes?${q}`);
    assert.equal(r.status, 200);
    assert.ok(r.json.changes.length <= limit);
    out.push(...r.json.changes);
    assert.equal(typeof r.json.nextCursor, 'string');
    cursor = r.json.nextCursor;
    if (!r.json.hasMore) return { changes: out, cursor };
  }
  throw new Error('changes never ended');
}

test('changes: paged from a cursor, in order, with tombstones for deletes', async () => {
  const start = (await allChanges(undefined, 100)).cursor;
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push((await upload(Buffer.from(`c${i}`))).id);
  await req('DELETE', `/media/assets/${ids[1]}`);
  const { changes, cursor } = await allChanges(start, 2);
  const seen = changes.map((c) => c.id);
  // Each asset appears once, at its latest state; the deleted one as a tombstone.
  assert.deepEqual(new Set(seen), new Set(ids));
  assert.equal(seen.length, ids.length, 'no duplicates in one pass');
  const tomb = changes.find((c) => c.id === ids[1]);
  assert.equal(tomb.deleted, true);
  assert.ok(Number.isSafeInteger(tomb.deletedAt));
  for (const c of changes.filter((c) => c.id !== ids[1])) {
    assert.equal(c.deleted, false);
    assert.equal(c.asset.id, c.id);
  }
  assert.deepEqual(seen.filter((x) => x !== ids[1]), ids.filter((x) => x !== ids[1]), 'changes come in write order');
  const again = await allChanges(cursor, 10);
  assert.deepEqual(again.changes, [], 'nothing new since the last cursor');
  assert.equal(again.cursor, cursor, 'an empty page keeps the cursor');
  assertError(await req('GET', '/media/changes?cursor=garbage!!'), 400, 'INVALID_CURSOR');
  assertError(await req('GET', '/media/changes?limit=0'), 400, 'BAD_REQUEST');
});

/** Every listed asset id of the first user, in pages of `limit`. */
async function allListed(limit) {
  const all = [];
  let cursor;
  for (let i = 0; i < 10000; i++) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (cursor) q.set('cursor', cursor);
    const r = await req('GET', `/media/assets?${q}`);
    assert.equal(r.status, 200);
    all.push(...r.json.assets.map((a) => a.id));
    if (!r.json.hasMore) return all;
    cursor = r.json.nextCursor;
  }
  throw new Error('the list never ended');
}

test('list: paged, ordered by id, without deleted assets', async () => {
  const mine = [];
  for (let i = 0; i < 3; i++) mine.push((await upload(Buffer.from(`l${i}`))).id);
  await req('DELETE', `/media/assets/${mine[0]}`);
  const all = await allListed(2);
  assert.deepEqual([...all].sort(), all, 'ordered by id');
  assert.ok(!all.includes(mine[0]), 'deleted assets are not listed');
  assert.ok(all.includes(mine[1]) && all.includes(mine[2]));
});

test('delete: 204, idempotent, then 404; the id cannot be reused; If-Match guards edits', async () => {
  const bytes = Buffer.from('delete me');
  const { id } = await upload(bytes);
  assertError(await req('DELETE', `/media/assets/${id}`, { headers: { 'if-match': '"7"' } }), 412, 'PRECONDITION_FAILED');
  assert.equal((await req('DELETE', `/media/assets/${id}`, { headers: { 'if-match': '"1"' } })).status, 204);
  assert.equal((await req('DELETE', `/media/assets/${id}`)).status, 204, 'a retried delete succeeds');
  assertError(await req('GET', `/media/assets/${id}`), 404, 'NOT_FOUND');
  assertError(await req('GET', `/media/assets/${id}/metadata`), 404, 'NOT_FOUND');
  assertError(await upload(bytes, { id }), 409, 'ASSET_DELETED');
  assertError(await req('DELETE', `/media/assets/${uuidv7()}`), 404, 'NOT_FOUND');
});

test('isolation: another user sees and touches nothing of mine (404, not 403)', async () => {
  const bytes = Buffer.from('private');
  const { id } = await upload(bytes, { type: 'image/png' });
  for (const [m, p] of [['GET', ''], ['GET', '/metadata'], ['GET', '/thumbnail'], ['DELETE', '']]) {
    assertError(await req(m, `/media/assets/${id}${p}`, { token: TOKEN2 }), 404, 'NOT_FOUND');
  }
  const patch = await req('PATCH', `/media/assets/${id}/metadata`, { token: TOKEN2, headers: { 'content-type': 'application/json', 'if-match': '"1"' }, body: '{"name":"mine now"}' });
  assertError(patch, 404, 'NOT_FOUND');
  const theirs = await req('GET', '/media/assets?limit=1000', { token: TOKEN2 });
  assert.ok(!theirs.json.assets.some((a) => a.id === id));
  const theirChanges = await allChangesAs(TOKEN2);
  assert.ok(!theirChanges.some((c) => c.id === id));
  // Ids are per user: the same id for another user is a different asset.
  const other = await upload(Buffer.from('theirs'), { id, token: TOKEN2 });
  assert.equal(other.status, 201);
  assert.deepEqual((await req('GET', `/media/assets/${id}`)).buf, bytes, 'mine is unchanged');
});

async function allChangesAs(token) {
  const out = [];
  let cursor;
  for (let i = 0; i < 10000; i++) {
    const q = new URLSearchParams({ limit: '1000' });
    if (cursor) q.set('cursor', cursor);
    const r = await req('GET', `/media/changes?${q}`, { token });
    out.push(...r.json.changes);
    if (!r.json.hasMore) return out;
    cursor = r.json.nextCursor;
  }
  return out;
}

test('thumbnails: a small PNG for images, made once; 415 NOT_AN_IMAGE otherwise', async () => {
  const image = await png(600, 300);
  const { id, json } = await upload(image, { name: 'wide.png', type: 'image/png' });
  assert.equal(new URL(json.thumbnailUrl, `${BASE}/media/assets`).href, `${BASE}/media/assets/${id}/thumbnail`);
  const t = await req('GET', `/media/assets/${id}/thumbnail`);
  assert.equal(t.status, 200);
  assert.equal(t.headers.get('content-type'), 'image/png');
  assert.deepEqual([...t.buf.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
  const [w, h] = [t.buf.readUInt32BE(16), t.buf.readUInt32BE(20)];
  assert.ok(w <= caps.thumbnails.maxSize && h <= caps.thumbnails.maxSize && w === 2 * h, `thumbnail ${w}x${h}`);
  const again = await req('GET', `/media/assets/${id}/thumbnail`);
  assert.deepEqual(again.buf, t.buf, 'served from the cache');
  const text = await upload(Buffer.from('not an image'), { type: 'text/plain' });
  assertError(await req('GET', `/media/assets/${text.id}/thumbnail`), 415, 'NOT_AN_IMAGE');
  const broken = await upload(Buffer.from('not really a png'), { type: 'image/png' });
  assertError(await req('GET', `/media/assets/${broken.id}/thumbnail`), 422, 'THUMBNAIL_UNAVAILABLE');
});

test('cookie credentials work like the bearer token; an invalid cookie is 401 and stores nothing', async () => {
  const r = await fetch(`${BASE}/media/assets?limit=1`, { headers: { cookie: `opfs_media_session=${TOKEN}` } });
  assert.equal(r.status, 200);
  for (const cookie of ['opfs_media_session=not-a-token', `opfs_media_session=${TOKEN}!`, 'opfs_media_session=']) {
    const bad = await upload(randomBytes(1000), { token: null, headers: { cookie } });
    assertError(bad, 401, 'UNAUTHENTICATED');
    assertError(await req('GET', `/media/assets/${bad.id}`), 404, 'NOT_FOUND');
  }
});

test('rate limit: bursts over the advertised rate get 429 RATE_LIMITED with Retry-After', async (t) => {
  const c = (await req('GET', '/media/capabilities', { token: null })).json;
  if (!Number.isInteger(c.rateLimitPerSecond)) {
    t.skip('the server advertises no rateLimitPerSecond');
    return;
  }
  const burst = await Promise.all(Array.from({ length: c.rateLimitPerSecond * 3 + 5 }, () => req('GET', '/media/assets?limit=1')));
  const limited = burst.filter((r) => r.status === 429);
  assert.ok(limited.length > 0, 'some requests of the burst are limited');
  assert.ok(burst.filter((r) => r.status === 200).length >= c.rateLimitPerSecond, 'the allowed rate still passes');
  assertError(limited[0], 429, 'RATE_LIMITED');
  const wait = Number(limited[0].headers.get('retry-after'));
  assert.ok(Number.isInteger(wait) && wait >= 1, 'Retry-After in whole seconds');
  const other = await req('GET', '/media/assets?limit=1', { token: TOKEN2 });
  assert.equal(other.status, 200, 'another user is not limited by this one');
  // The limit is per user, not per spelling of the credential.
  for (const headers of [{ authorization: `Bearer  ${TOKEN}` }, { authorization: `bearer ${TOKEN}` }, { cookie: `opfs_media_session=${TOKEN}; x=1` }]) {
    const r = await fetch(`${BASE}/media/assets?limit=1`, { headers });
    assert.equal(r.status, 429, `${JSON.stringify(headers).slice(0, 40)} shares the user's allowance`);
  }
  const capsNow = await req('GET', '/media/capabilities');
  assert.equal(capsNow.status, 200, 'capabilities is never limited, with credentials too');
  await new Promise((r) => setTimeout(r, wait * 1000 + 200));
  assert.equal((await req('GET', '/media/assets?limit=1')).status, 200, 'allowed again after Retry-After');
  // Requests without valid credentials count too (per client address), and do not use up a user's allowance.
  const anon = await Promise.all(Array.from({ length: c.rateLimitPerSecond * 3 + 5 }, (_, i) => req('GET', '/media/assets?limit=1', { token: `invalid-${i}` })));
  assert.ok(anon.some((r) => r.status === 429), 'a burst of invalid credentials is limited');
  assert.ok(anon.every((r) => r.status === 429 || r.status === 401));
  assert.equal((await req('GET', '/media/assets?limit=1', { token: TOKEN2 })).status, 200, 'a signed-in user from that address is not');
});

// --- precision checks (docs/protocol.md: each rule below is stated there) ---

test('order of checks: 401 first; on upload the headers before 413; DELETE checks If-Match before looking up', async () => {
  assertError(await upload(Buffer.from('x'), { token: null, id: 'not-an-id' }), 401, 'UNAUTHENTICATED');
  const patch401 = await req('PATCH', '/media/assets/nope/metadata', { token: null, headers: { 'content-type': 'text/plain' }, body: 'x' });
  assertError(patch401, 401, 'UNAUTHENTICATED');
  // PATCH: id, then media type, then JSON, then existence, then If-Match.
  assertError(await req('PATCH', '/media/assets/nope/metadata', { headers: { 'content-type': 'text/plain' }, body: 'x' }), 400, 'INVALID_ID');
  const missing = `/media/assets/${uuidv7()}`;
  assertError(await req('PATCH', `${missing}/metadata`, { headers: { 'content-type': 'text/plain' }, body: 'x' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
  assertError(await req('PATCH', `${missing}/metadata`, { headers: { 'content-type': 'application/json' }, body: '[' }), 400, 'INVALID_JSON');
  assertError(await req('PATCH', `${missing}/metadata`, { headers: { 'content-type': 'application/json', 'if-match': '+1' }, body: '{}' }), 404, 'NOT_FOUND');
  // DELETE: a malformed If-Match is 400 on a missing id and on a tombstone too.
  assertError(await req('DELETE', missing, { headers: { 'if-match': '"01"' } }), 400, 'BAD_REQUEST');
  const { id } = await upload(Buffer.from('tomb'));
  assert.equal((await req('DELETE', `/media/assets/${id}`)).status, 204);
  assertError(await req('DELETE', `/media/assets/${id}`, { headers: { 'if-match': 'W/' } }), 400, 'BAD_REQUEST');
  assert.equal((await req('DELETE', `/media/assets/${id}`, { headers: { 'if-match': '"9"' } })).status, 204, 'a tombstone ignores a well-formed If-Match');
});

test('If-Match: one canonical version; "0" is well-formed (412), "01" +3 -1 ""3"" and non-ASCII are 400', async () => {
  const { id } = await upload(Buffer.from('if-match'));
  const del = (v) => req('DELETE', `/media/assets/${id}`, { headers: { 'if-match': v } });
  assertError(await del('"0"'), 412, 'PRECONDITION_FAILED');
  for (const bad of ['"01"', '+3', '-1', '""1""', '*', '"1", "2"', '"\u00e9"', '"1']) assertError(await del(bad), 400, 'BAD_REQUEST');
  assert.equal((await req('GET', `/media/assets/${id}/metadata`)).status, 200, 'no malformed If-Match deleted the asset');
  assert.equal((await del('W/"1"')).status, 204);
});

test('PATCH: wrong field types, duplicate keys and lone surrogates are INVALID_JSON; only application/json', async () => {
  const { id } = await upload(Buffer.from('patch types'), { name: 'p.txt' });
  const patch = (body, type = 'application/json') => req('PATCH', `/media/assets/${id}/metadata`, { headers: { 'content-type': type, 'if-match': '"1"' }, body });
  for (const body of ['{"tags":"x"}', '{"tags":[1]}', '{"name":5}', '[]', '"x"', '{"name":"a","name":"b"}', '{"name":"\\ud800.txt"}']) {
    assertError(await patch(body), 400, 'INVALID_JSON');
  }
  assertError(await patch('{"tags":[""]}'), 400, 'INVALID_TAGS');
  assertError(await patch('{"name":"\u00a0\u3000"}'), 400, 'INVALID_NAME');
  for (const type of ['application/jsonp', 'application/json-seq', 'text/json']) assertError(await patch('{}', type), 415, 'UNSUPPORTED_MEDIA_TYPE');
  const ok = await patch('{"name":"q.txt","tags":null}', 'Application/JSON; charset=utf-8');
  assert.equal(ok.status, 200);
  assert.equal(ok.json.name, 'q.txt');
});

test('upload headers: strict percent-encoding, ASCII only, created-at below 2^53, type normalised', async () => {
  const bytes = Buffer.from('hdr');
  for (const raw of ['%zz', '%', 'a%4', '%ED%A0%80.txt', '%20%C2%A0%E3%80%80', 'caf\u00e9.txt']) {
    assertError(await upload(bytes, { headers: { 'x-asset-name': raw } }), 400, 'INVALID_NAME');
  }
  assertError(await upload(bytes, { headers: { 'x-asset-tags': '["\u00e9"]' } }), 400, 'INVALID_TAGS');
  assertError(await upload(bytes, { headers: { 'x-asset-tags': '%zz' } }), 400, 'INVALID_TAGS');
  assertError(await upload(bytes, { type: 'image/p\u00e9ng' }), 400, 'INVALID_TYPE');
  for (const at of ['9007199254740992', '+5', '-1', '01', '1.5', '1\u00e9']) {
    assertError(await upload(bytes, { headers: { 'x-asset-created-at': at } }), 400, 'BAD_REQUEST');
  }
  const max = await upload(bytes, { headers: { 'x-asset-created-at': '9007199254740991' } });
  assert.equal(max.status, 201);
  assert.equal(max.json.createdAt, 9007199254740991);
  const plain = await upload(bytes, { headers: { 'x-asset-name': "it's+ok(1).txt" } });
  assert.equal(plain.json.name, "it's+ok(1).txt", 'characters encodeURIComponent leaves alone stay as they are');
  const typed = await upload(await png(4, 4), { type: ' Image/PNG; X=Y ' });
  assert.equal(typed.status, 201);
  assert.equal(typed.json.type, 'image/png; x=y', 'trimmed and lowercased, parameters kept');
  assert.ok(typed.json.thumbnailUrl, 'thumbnails follow the essence');
  assert.equal((await req('GET', `/media/assets/${typed.id}/thumbnail`)).status, 200);
  const empty = await upload(bytes, { type: '' });
  assert.equal(empty.json.type, 'application/octet-stream', 'an empty Content-Type is absent');
});

test('present but unreadable headers are errors, never ignored', async () => {
  const { id } = await upload(Buffer.from('latin1'));
  assertError(await req('DELETE', `/media/assets/${id}`, { headers: { 'if-match': '"\u00e9"' } }), 400, 'BAD_REQUEST');
  assert.equal((await req('GET', `/media/assets/${id}/metadata`)).status, 200, 'still there');
  const both = await fetch(`${BASE}/media/assets?limit=1`, { headers: { authorization: 'Bearer \u00e9', cookie: `opfs_media_session=${TOKEN}` } });
  assert.equal(both.status, 401, 'an unreadable Authorization does not fall through to the cookie');
});

test('cursors: empty, repeated, forged, foreign and cross-endpoint cursors are rejected; bad limits are JSON 400s', async () => {
  await upload(Buffer.from('cursor a'));
  await upload(Buffer.from('cursor b'));
  const list = await req('GET', '/media/assets?limit=1');
  const changes = await req('GET', '/media/changes?limit=1');
  assert.equal(list.json.hasMore, true);
  for (const ep of ['/media/assets', '/media/changes']) {
    assertError(await req('GET', `${ep}?cursor=`), 400, 'INVALID_CURSOR');
    assertError(await req('GET', `${ep}?cursor=djE6enp6eg`), 400, 'INVALID_CURSOR');
    assertError(await req('GET', `${ep}?limit=abc`), 400, 'BAD_REQUEST');
    assertError(await req('GET', `${ep}?limit=1&limit=2`), 400, 'BAD_REQUEST');
    assertError(await req('GET', `${ep}?limit=1.0`), 400, 'BAD_REQUEST');
  }
  const lc = encodeURIComponent(list.json.nextCursor);
  const cc = encodeURIComponent(changes.json.nextCursor);
  assertError(await req('GET', `/media/assets?cursor=${lc}&cursor=${lc}`), 400, 'BAD_REQUEST');
  assertError(await req('GET', `/media/changes?cursor=${lc}`), 400, 'INVALID_CURSOR');
  assertError(await req('GET', `/media/assets?cursor=${cc}`), 400, 'INVALID_CURSOR');
  assertError(await req('GET', `/media/changes?cursor=${cc}`, { token: TOKEN2 }), 400, 'INVALID_CURSOR');
  assertError(await req('GET', `/media/assets?cursor=${lc}`, { token: TOKEN2 }), 400, 'INVALID_CURSOR');
  assert.equal((await req('GET', `/media/changes?cursor=${cc}`)).status, 200);
  assert.match(changes.json.nextCursor, /^[A-Za-z0-9\-_.~]{1,256}$/);
});

test('Range: long suffixes and huge ends clamp; malformed ranges are ignored; weak If-None-Match matches', async () => {
  const bytes = randomBytes(1000);
  const { id } = await upload(bytes);
  const get = (headers) => req('GET', `/media/assets/${id}`, { headers });
  const suffix = await get({ range: 'bytes=-5000' });
  assert.equal(suffix.status, 206);
  assert.equal(suffix.headers.get('content-range'), 'bytes 0-999/1000');
  assert.deepEqual(suffix.buf, bytes);
  const huge = await get({ range: 'bytes=990-18446744073709551615' });
  assert.equal(huge.status, 206);
  assert.equal(huge.headers.get('content-range'), 'bytes 990-999/1000');
  for (const range of ['bytes=5-1', 'items=0-1', 'bytes=0-1,3-4', 'bytes=a-b', 'bytes=-']) {
    const r = await get({ range });
    assert.equal(r.status, 200, `${range} is ignored`);
    assert.deepEqual(r.buf, bytes);
  }
  assertError(await get({ range: 'bytes=-0' }), 416, 'RANGE_NOT_SATISFIABLE');
  assertError(await get({ range: 'bytes=99999999999999999999999-' }), 416, 'RANGE_NOT_SATISFIABLE');
  assert.equal((await get({ 'if-none-match': `W/"${sha(bytes)}"` })).status, 304);
  assert.equal((await get({ 'if-none-match': '"other", W/"x"' })).status, 200);
});

test('early answers to an upload are readable: the server drains the body it does not need', async () => {
  // Without draining, the server's close resets the connection while the client still sends,
  // and the answer is lost (a network error): likelier the larger the unread rest.
  const size = Math.min(4 * 1024 * 1024, caps.maxUploadBytes);
  const bytes = randomBytes(size);
  const first = await upload(bytes);
  assert.equal(first.status, 201);
  const tooBig = caps.maxUploadBytes <= 1024 * 1024 ? Buffer.alloc(caps.maxUploadBytes + 3 * 1024 * 1024, 7) : null;
  for (let i = 0; i < 12; i++) {
    const retry = await upload(bytes, { id: first.id });
    assert.equal(retry.status, 200, 'a retried upload gets its 200');
    assertError(await upload(randomBytes(size), { id: first.id, checksum: sha(Buffer.from('x')) }), 409, 'ID_CONFLICT');
    assertError(await upload(bytes, { id: 'not-an-id' }), 400, 'INVALID_ID');
    assertError(await upload(tooBig ?? bytes, { token: 'not-a-valid-token' }), 401, 'UNAUTHENTICATED');
    if (tooBig) assertError(await upload(tooBig), 413, 'PAYLOAD_TOO_LARGE');
  }
});

test('thumbnails: baseline JPEG, EXIF orientation, no upscaling, alpha kept', async () => {
  const thumb = async (bytes, type) => {
    const { id } = await upload(bytes, { type });
    const t = await req('GET', `/media/assets/${id}/thumbnail`);
    assert.equal(t.status, 200, `thumbnail of ${type} (body: ${t.buf.toString('utf8').slice(0, 200)})`);
    assert.equal(t.headers.get('content-type'), 'image/png');
    return pngInfo(t.buf);
  };
  assert.deepEqual(await thumb(JPEG_32x16, 'image/jpeg'), { w: 32, h: 16, colorType: 2 }, 'a small JPEG keeps its size');
  const turned = await thumb(withOrientation(JPEG_32x16, 6), 'image/jpeg');
  assert.deepEqual([turned.w, turned.h], [16, 32], 'EXIF orientation 6 (rotate 90°) is applied');
  const small = await thumb(await png(10, 5), 'image/png');
  assert.deepEqual([small.w, small.h], [10, 5], 'never upscaled');
  const alpha = await thumb(await png(300, 30, { alpha: true }), 'image/png');
  assert.ok([4, 6].includes(alpha.colorType), `alpha kept (colour type ${alpha.colorType})`);
  assert.equal(alpha.w, caps.thumbnails.maxSize, 'scaled down to maxSize');
});

test('CORS: preflight without credentials, allowed origin echoed with Vary and Max-Age, other origins refused', async (t) => {
  if (!CORS_ORIGIN) {
    t.skip('pass --cors-origin with an origin the server allows to run the CORS checks');
    return;
  }
  const pre = await fetch(`${BASE}/media/assets`, { method: 'OPTIONS', headers: { origin: CORS_ORIGIN, 'access-control-request-method': 'PATCH', 'access-control-request-headers': 'authorization, if-match, content-type' } });
  assert.ok([200, 204].includes(pre.status), `preflight status ${pre.status}`);
  assert.equal(pre.headers.get('access-control-allow-origin'), CORS_ORIGIN);
  assert.equal(pre.headers.get('access-control-allow-credentials'), 'true');
  assert.match(pre.headers.get('access-control-allow-methods') ?? '', /PATCH/);
  assert.match((pre.headers.get('access-control-allow-headers') ?? '').toLowerCase(), /if-match/);
  assert.ok(Number(pre.headers.get('access-control-max-age')) > 0, 'Access-Control-Max-Age');
  const get = await fetch(`${BASE}/media/assets?limit=1`, { headers: { origin: CORS_ORIGIN, ...auth() } });
  assert.equal(get.headers.get('access-control-allow-origin'), CORS_ORIGIN);
  assert.match((get.headers.get('vary') ?? '').toLowerCase(), /origin/);
  assert.match((get.headers.get('access-control-expose-headers') ?? '').toLowerCase(), /etag/);
  const evil = await fetch(`${BASE}/media/assets`, { method: 'OPTIONS', headers: { origin: 'https://refused.invalid', 'access-control-request-method': 'GET' } });
  assert.equal(evil.headers.get('access-control-allow-origin'), null, 'a refused origin gets no allow headers');
  const evilGet = await fetch(`${BASE}/media/assets?limit=1`, { headers: { origin: 'https://refused.invalid', ...auth() } });
  assert.equal(evilGet.headers.get('access-control-allow-origin'), null);
});

// --- resumable uploads (docs/protocol.md, "Resumable uploads (extension)") ---
// Every check's name starts with "resumable:" (select them with --test-name-pattern=resumable).
// They read the bounds from capabilities and use the smallest chunks allowed.

const NOT_ADVERTISED = 'skipped: server does not advertise resumable-uploads';
let capsCache;
async function capsNow() {
  capsCache ??= (await req('GET', '/media/capabilities', { token: null })).json;
  return capsCache;
}
const b64sha = (buf) => createHash('sha256').update(buf).digest('base64');
const json = { 'content-type': 'application/json' };

/** A check that runs only against a server advertising the extension; `ru` is its capabilities field. */
function resumable(name, fn, { minChunks = 0 } = {}) {
  test(`resumable: ${name}`, { timeout: 120_000 }, async (t) => {
    const c = await capsNow();
    if (!c.features?.includes('resumable-uploads')) return t.skip(NOT_ADVERTISED);
    const ru = c.resumableUploads;
    // A file of `minChunks` chunks: chunkMinBytes each but the last (1000 bytes).
    const need = minChunks > 0 ? ru.chunkMinBytes * (minChunks - 1) + 1000 : 0;
    if (need > c.maxUploadBytes) {
      return t.skip(`skipped: needs a ${minChunks}-chunk file (${need} bytes) but maxUploadBytes is ${c.maxUploadBytes}`);
    }
    await fn(t, ru, c);
  });
}

async function createSession({ id = uuidv7(), name = 'big.bin', size, token = TOKEN, extra = {} } = {}) {
  const r = await req('POST', '/media/uploads', { token, headers: json, body: JSON.stringify({ id, name, size, ...extra }) });
  return { ...r, id };
}

function appendChunk(id, offset, chunk, { token = TOKEN, whole, digest = b64sha(chunk), headers = {} } = {}) {
  const h = { 'content-type': 'application/offset+octet-stream', 'upload-offset': String(offset), 'content-digest': `sha-256=:${digest}:`, ...headers };
  if (whole) h['x-content-sha256'] = whole;
  return req('PATCH', `/media/uploads/${id}`, { token, headers: h, body: chunk });
}

/** Bytes of a file of `n` chunks (chunkMinBytes each, the last 1000). */
const fileOf = (ru, n) => randomBytes(ru.chunkMinBytes * (n - 1) + 1000);

/** Sends `bytes` from `from` in chunkMinBytes chunks; returns the last answer. */
async function sendFrom(ru, id, bytes, from = 0, token = TOKEN) {
  let r;
  for (let off = from; off < bytes.length; off += ru.chunkMinBytes) {
    const chunk = bytes.subarray(off, Math.min(off + ru.chunkMinBytes, bytes.length));
    const final = off + chunk.length === bytes.length;
    r = await appendChunk(id, off, chunk, { token, whole: final ? sha(bytes) : undefined });
    assert.equal(r.status, final ? 201 : 200, `append at ${off} (body: ${r.buf.toString('utf8').slice(0, 300)})`);
  }
  return r;
}

function assertUpload(r, { id, size, offset }) {
  assert.equal(r.json.id, id);
  assert.equal(r.json.size, size);
  assert.equal(r.json.offset, offset);
  assert.ok(Number.isSafeInteger(r.json.expiresAt) && r.json.expiresAt > Date.now() - 60_000, 'expiresAt');
  assert.equal(r.headers.get('upload-offset'), String(offset), 'Upload-Offset header');
  assert.match(r.headers.get('cache-control') ?? '', /no-store/, 'Cache-Control: no-store');
}

test('resumable: a server that does not advertise the extension answers 404 on its endpoints', async (t) => {
  const c = await capsNow();
  if (c.features?.includes('resumable-uploads')) return t.skip('skipped: server advertises resumable-uploads');
  assert.equal(c.resumableUploads, undefined, 'no resumableUploads field without the feature');
  const id = uuidv7();
  assert.equal((await req('POST', '/media/uploads', { headers: json, body: JSON.stringify({ id, name: 'x', size: 1 }) })).status, 404);
  for (const m of ['GET', 'PATCH', 'DELETE']) {
    assert.equal((await req(m, `/media/uploads/${id}`, { headers: { 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' }, body: m === 'PATCH' ? 'x' : undefined })).status, 404, m);
  }
});

resumable('capabilities: the bounds are consistent', async (t, ru, c) => {
  for (const k of ['minBytes', 'chunkMinBytes', 'chunkMaxBytes', 'sessionLifetimeMs', 'maxSessions']) {
    assert.ok(Number.isSafeInteger(ru[k]) && ru[k] >= 1, `${k} is a positive integer`);
  }
  assert.equal(ru.chunkMinBytes % 64, 0, 'chunkMinBytes is a multiple of 64');
  assert.ok(ru.chunkMaxBytes >= ru.chunkMinBytes, 'chunkMaxBytes >= chunkMinBytes');
  assert.ok(c.maxUploadBytes >= 1);
});

resumable('create: 201 with Location; a retried create finds the same session at its current offset; another size is 409 ID_CONFLICT', async (t, ru) => {
  const bytes = fileOf(ru, 2);
  const first = await createSession({ size: bytes.length });
  assert.equal(first.status, 201, first.buf.toString());
  assertUpload(first, { id: first.id, size: bytes.length, offset: 0 });
  const loc = first.headers.get('location');
  assert.ok(loc, 'Location');
  assert.equal(new URL(loc, `${BASE}/media/uploads`).href, `${BASE}/media/uploads/${first.id}`);
  assert.equal((await appendChunk(first.id, 0, bytes.subarray(0, ru.chunkMinBytes))).status, 200);
  const retry = await createSession({ id: first.id, size: bytes.length, name: 'other-name.bin' });
  assert.equal(retry.status, 200, 'a retried create is 200');
  assertUpload(retry, { id: first.id, size: bytes.length, offset: ru.chunkMinBytes });
  const other = await createSession({ id: first.id, size: bytes.length + 1 });
  assertError(other, 409, 'ID_CONFLICT');
  assert.equal(other.json.error.details.offset, ru.chunkMinBytes, 'details carry the Upload');
  const got = await req('GET', `/media/uploads/${first.id}`);
  assert.equal(got.status, 200);
  assertUpload(got, { id: first.id, size: bytes.length, offset: ru.chunkMinBytes });
  assert.equal((await req('DELETE', `/media/uploads/${first.id}`)).status, 204);
}, { minChunks: 2 });

resumable('create on a committed id answers as POST does: 200 the asset, 409 ID_CONFLICT, 409 ASSET_DELETED', async () => {
  const bytes = randomBytes(3000);
  const up = await upload(bytes);
  assert.equal(up.status, 201);
  for (const extra of [{ sha256: sha(bytes) }, {}]) {
    const r = await createSession({ id: up.id, size: 3000, extra });
    assert.equal(r.status, 200, `create ${JSON.stringify(extra).slice(0, 30)} on a committed id`);
    assert.deepEqual(r.json, up.json, 'the Asset, unchanged');
    assert.equal(r.json.offset, undefined, 'an Asset has no offset');
  }
  const conflict = await createSession({ id: up.id, size: 3000, extra: { sha256: sha(Buffer.from('other')) } });
  assertError(conflict, 409, 'ID_CONFLICT');
  assert.equal(conflict.json.error.details.sha256, sha(bytes), 'details carry the Asset');
  assert.equal((await req('DELETE', `/media/assets/${up.id}`)).status, 204);
  assertError(await createSession({ id: up.id, size: 3000 }), 409, 'ASSET_DELETED');
  assertError(await req('GET', `/media/uploads/${up.id}`), 404, 'UPLOAD_NOT_FOUND');
});

resumable('create validates its JSON: ids, names, types, checksums, tags, createdAt, size, unknown fields, 413, 415, 401', async (t, ru, c) => {
  const post = (body, headers = json, token) => req('POST', '/media/uploads', { headers, body: typeof body === 'string' ? body : JSON.stringify(body), token });
  const ok = { id: uuidv7(), name: 'v.bin', size: 10 };
  assertError(await post(ok, json, null), 401, 'UNAUTHENTICATED');
  for (const id of ['nope', ok.id.toUpperCase(), 5, undefined]) assertError(await post({ ...ok, id }), 400, 'INVALID_ID');
  for (const name of ['', '../x', 'a/b', 'x'.repeat(256), 7, undefined]) assertError(await post({ ...ok, name }), 400, 'INVALID_NAME');
  for (const type of ['png', 'image/p g', 5]) assertError(await post({ ...ok, type }), 400, 'INVALID_TYPE');
  for (const sha256 of ['xyz', 'a'.repeat(63), 12]) assertError(await post({ ...ok, sha256 }), 400, 'MISSING_CHECKSUM');
  for (const tags of ['x', [1], [''], { a: 1 }]) assertError(await post({ ...ok, tags }), 400, 'INVALID_TAGS');
  for (const createdAt of [-1, 1.5, '5', 9007199254740992]) assertError(await post({ ...ok, createdAt }), 400, 'BAD_REQUEST');
  for (const size of [0, -1, 1.5, '10', null, undefined]) assertError(await post({ ...ok, size }), 400, 'BAD_REQUEST');
  assertError(await post({ ...ok, colour: 'red' }), 400, 'INVALID_JSON');
  assertError(await post('{"id":1,"id":2}'), 400, 'INVALID_JSON');
  assertError(await post('{nope'), 400, 'INVALID_JSON');
  assertError(await post(ok, { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
  const big = await post({ ...ok, size: c.maxUploadBytes + 1 });
  assertError(big, 413, 'PAYLOAD_TOO_LARGE');
  assertError(await req('GET', `/media/uploads/${ok.id}`), 404, 'UPLOAD_NOT_FOUND');
  const typed = await post({ ...ok, type: ' Image/PNG; X=Y ', tags: ['a'], createdAt: 5 });
  assert.equal(typed.status, 201, typed.buf.toString());
  assert.equal((await req('DELETE', `/media/uploads/${ok.id}`)).status, 204);
});

resumable('a file in chunks: each append moves the offset; the final chunk commits the asset (201, ETag, same bytes as POST would store)', async (t, ru) => {
  const bytes = fileOf(ru, 3);
  const c = await createSession({ size: bytes.length, name: 'chunked.bin', extra: { type: 'video/mp4', tags: ['t'], createdAt: 1234 } });
  assert.equal(c.status, 201);
  let before = c.json.expiresAt;
  for (let off = 0; off + ru.chunkMinBytes < bytes.length; off += ru.chunkMinBytes) {
    await new Promise((r) => setTimeout(r, 5));
    const r = await appendChunk(c.id, off, bytes.subarray(off, off + ru.chunkMinBytes));
    assert.equal(r.status, 200, r.buf.toString());
    assertUpload(r, { id: c.id, size: bytes.length, offset: off + ru.chunkMinBytes });
    assert.ok(r.json.expiresAt >= before, 'an append extends expiresAt');
    before = r.json.expiresAt;
  }
  const last = 2 * ru.chunkMinBytes;
  const done = await appendChunk(c.id, last, bytes.subarray(last), { whole: sha(bytes) });
  assert.equal(done.status, 201, done.buf.toString());
  assert.equal(done.json.offset, undefined, 'the answer is an Asset');
  assert.equal(done.json.id, c.id);
  assert.equal(done.json.size, bytes.length);
  assert.equal(done.json.sha256, sha(bytes));
  assert.equal(done.json.name, 'chunked.bin');
  assert.equal(done.json.type, 'video/mp4');
  assert.deepEqual(done.json.tags, ['t']);
  assert.equal(done.json.createdAt, 1234);
  assert.equal(done.json.version, 1);
  assert.equal(done.headers.get('etag'), '"1"');
  const got = await req('GET', `/media/assets/${c.id}`);
  assert.equal(got.status, 200);
  assert.equal(sha(got.buf), sha(bytes), 'downloaded bytes are the file');
  assertError(await req('GET', `/media/uploads/${c.id}`), 404, 'UPLOAD_NOT_FOUND');
  const again = await createSession({ id: c.id, size: bytes.length });
  assert.equal(again.status, 200);
  assert.deepEqual(again.json, done.json, 'a retried create answers the Asset');
  assertError(await appendChunk(c.id, last, bytes.subarray(last), { whole: sha(bytes) }), 404, 'UPLOAD_NOT_FOUND');
}, { minChunks: 3 });

resumable('an append at the wrong offset changes nothing and answers the current offset (409 OFFSET_MISMATCH)', async (t, ru) => {
  const bytes = fileOf(ru, 2);
  const { id } = await createSession({ size: bytes.length });
  for (const off of [64, ru.chunkMinBytes]) {
    const r = await appendChunk(id, off, bytes.subarray(off, off + ru.chunkMinBytes), { whole: sha(bytes) });
    assertError(r, 409, 'OFFSET_MISMATCH');
    assert.equal(r.json.error.details.offset, 0);
    assert.equal(r.headers.get('upload-offset'), '0');
  }
  assert.equal((await req('GET', `/media/uploads/${id}`)).json.offset, 0, 'unchanged');
  assert.equal((await appendChunk(id, 0, bytes.subarray(0, ru.chunkMinBytes))).status, 200);
  const back = await appendChunk(id, 0, bytes.subarray(0, ru.chunkMinBytes));
  assertError(back, 409, 'OFFSET_MISMATCH');
  assert.equal(back.json.error.details.offset, ru.chunkMinBytes, 'a chunk sent twice is refused with the offset');
  const done = await sendFrom(ru, id, bytes, ru.chunkMinBytes);
  assert.equal(sha((await req('GET', `/media/assets/${id}`)).buf), sha(bytes));
  assert.equal(done.json.sha256, sha(bytes));
}, { minChunks: 2 });

resumable('a chunk whose Content-Digest does not match appends nothing (422 DIGEST_MISMATCH)', async (t, ru) => {
  const bytes = fileOf(ru, 2);
  const { id } = await createSession({ size: bytes.length });
  const first = bytes.subarray(0, ru.chunkMinBytes);
  const bad = await appendChunk(id, 0, first, { digest: b64sha(Buffer.from('not this')) });
  assertError(bad, 422, 'DIGEST_MISMATCH');
  assert.equal((await req('GET', `/media/uploads/${id}`)).json.offset, 0, 'nothing appended');
  // Corrupted in transit: the right digest, other bytes of the same length.
  const flipped = Buffer.from(first); flipped[100] ^= 1;
  assertError(await appendChunk(id, 0, flipped, { digest: b64sha(first) }), 422, 'DIGEST_MISMATCH');
  assert.equal((await req('GET', `/media/uploads/${id}`)).json.offset, 0);
  await sendFrom(ru, id, bytes);
  assert.equal(sha((await req('GET', `/media/assets/${id}`)).buf), sha(bytes), 'no byte of a refused chunk was kept');
}, { minChunks: 2 });

resumable('append headers: Upload-Offset, Content-Type, Content-Length, Content-Digest, and X-Content-SHA256 on the final chunk', async (t, ru) => {
  const bytes = randomBytes(1000);
  const { id } = await createSession({ size: bytes.length });
  const send = (headers, body = bytes) => req('PATCH', `/media/uploads/${id}`, { headers: { 'content-type': 'application/offset+octet-stream', 'upload-offset': '0', 'content-digest': `sha-256=:${b64sha(bytes)}:`, 'x-content-sha256': sha(bytes), ...headers }, body });
  for (const o of ['', '+0', '00', '-0', 'x', '1.0']) assertError(await send({ 'upload-offset': o }), 400, 'BAD_REQUEST');
  assertError(await send({ 'content-type': 'application/octet-stream' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
  for (const d of ['', `sha-512=:${createHash('sha512').update(bytes).digest('base64')}:`, `sha-256=${b64sha(bytes)}`, 'sha-256=:AAAA:']) {
    assertError(await send({ 'content-digest': d }), 400, 'MISSING_CHECKSUM');
  }
  for (const x of ['', 'xyz']) assertError(await send({ 'x-content-sha256': x }), 400, 'MISSING_CHECKSUM');
  // A streamed body has no Content-Length.
  const stream = new ReadableStream({ start(c) { c.enqueue(new Uint8Array(bytes)); c.close(); } });
  const r = await fetch(`${BASE}/media/uploads/${id}`, { method: 'PATCH', duplex: 'half', body: stream, headers: { ...auth(), 'content-type': 'application/offset+octet-stream', 'upload-offset': '0', 'content-digest': `sha-256=:${b64sha(bytes)}:`, 'x-content-sha256': sha(bytes) } });
  assert.equal(r.status, 411, 'no Content-Length');
  assert.equal((await r.json()).error.code, 'LENGTH_REQUIRED');
  assertError(await req('PATCH', `/media/uploads/${uuidv7()}`, { headers: { 'upload-offset': 'x' }, body: 'x' }), 404, 'UPLOAD_NOT_FOUND');
  assertError(await req('PATCH', '/media/uploads/nope', { body: 'x' }), 400, 'INVALID_ID');
  assert.equal((await req('GET', `/media/uploads/${id}`)).json.offset, 0);
  const ok = await send({ 'content-digest': `sha-512=:${createHash('sha512').update(bytes).digest('base64')}:, sha-256=:${b64sha(bytes)}:` });
  assert.equal(ok.status, 201, 'other algorithms in the list are ignored');
});

resumable('chunk lengths: non-final chunks within the bounds and a multiple of 64 (400 INVALID_CHUNK), none past the end, none over chunkMaxBytes (413)', async (t, ru) => {
  const bytes = fileOf(ru, 2);
  const { id } = await createSession({ size: bytes.length });
  assertError(await appendChunk(id, 0, bytes.subarray(0, ru.chunkMinBytes + 1)), 400, 'INVALID_CHUNK');
  if (ru.chunkMinBytes > 64) assertError(await appendChunk(id, 0, bytes.subarray(0, 64)), 400, 'INVALID_CHUNK');
  assertError(await appendChunk(id, 0, Buffer.alloc(0)), 400, 'INVALID_CHUNK');
  const small = await createSession({ size: 100 });
  assertError(await appendChunk(small.id, 0, randomBytes(128), { whole: sha(Buffer.alloc(100)) }), 400, 'INVALID_CHUNK');
  assert.equal((await req('DELETE', `/media/uploads/${small.id}`)).status, 204);
  if (ru.chunkMaxBytes + 64 <= 8 * 1024 * 1024) {
    const huge = await createSession({ size: ru.chunkMaxBytes * 2 });
    if (huge.status === 201) {
      assertError(await appendChunk(huge.id, 0, randomBytes(ru.chunkMaxBytes + 64)), 413, 'PAYLOAD_TOO_LARGE');
      assert.equal((await req('DELETE', `/media/uploads/${huge.id}`)).status, 204);
    } else {
      t.diagnostic(`413 on a chunk not checked: a session of ${ru.chunkMaxBytes * 2} bytes is over maxUploadBytes`);
    }
  } else {
    t.diagnostic('413 on a chunk not checked: chunkMaxBytes is over 8 MiB');
  }
  assert.equal((await req('GET', `/media/uploads/${id}`)).json.offset, 0, 'no refused chunk moved the offset');
  assert.equal((await req('DELETE', `/media/uploads/${id}`)).status, 204);
}, { minChunks: 2 });

resumable('completion verifies the whole file: a wrong X-Content-SHA256 is 422 CHECKSUM_MISMATCH, nothing kept, the session gone', async (t, ru) => {
  const bytes = fileOf(ru, 2);
  const { id } = await createSession({ size: bytes.length });
  assert.equal((await appendChunk(id, 0, bytes.subarray(0, ru.chunkMinBytes))).status, 200);
  const r = await appendChunk(id, ru.chunkMinBytes, bytes.subarray(ru.chunkMinBytes), { whole: sha(Buffer.from('another file')) });
  assertError(r, 422, 'CHECKSUM_MISMATCH');
  assertError(await req('GET', `/media/uploads/${id}`), 404, 'UPLOAD_NOT_FOUND');
  assertError(await req('GET', `/media/assets/${id}`), 404, 'NOT_FOUND');
  assertError(await req('GET', `/media/assets/${id}/metadata`), 404, 'NOT_FOUND');
  const again = await createSession({ id, size: bytes.length });
  assert.equal(again.status, 201, 'the id is free: a new session starts at 0');
  assert.equal(again.json.offset, 0);
  assert.equal((await req('DELETE', `/media/uploads/${id}`)).status, 204);
}, { minChunks: 2 });

resumable('nothing is visible before completion: list, changes, metadata, download, thumbnail', async (t, ru) => {
  const start = (await allChanges(undefined, 1000)).cursor;
  const bytes = fileOf(ru, 2);
  const { id } = await createSession({ size: bytes.length, extra: { type: 'image/png' } });
  assert.equal((await appendChunk(id, 0, bytes.subarray(0, ru.chunkMinBytes))).status, 200);
  const listed = () => allListed(1000);
  assert.ok(!(await listed()).includes(id), 'not listed');
  assert.deepEqual((await allChanges(start, 1000)).changes.filter((c) => c.id === id), [], 'not in the changes feed');
  for (const p of ['', '/metadata', '/thumbnail']) assertError(await req('GET', `/media/assets/${id}${p}`), 404, 'NOT_FOUND');
  await sendFrom(ru, id, bytes, ru.chunkMinBytes);
  assert.ok((await listed()).includes(id), 'listed once committed');
  assert.equal((await allChanges(start, 1000)).changes.filter((c) => c.id === id).length, 1, 'in the changes feed once committed');
}, { minChunks: 2 });

resumable('a POST of the same id during a session wins; the final chunk then answers as a retried POST (session bytes discarded)', async (t, ru) => {
  const bytes = fileOf(ru, 2);
  const { id } = await createSession({ size: bytes.length });
  assert.equal((await appendChunk(id, 0, bytes.subarray(0, ru.chunkMinBytes))).status, 200);
  if (bytes.length > (await capsNow()).maxUploadBytes) return t.skip('skipped: the file is over maxUploadBytes for POST');
  const posted = await upload(bytes, { id });
  assert.equal(posted.status, 201);
  const fin = await appendChunk(id, ru.chunkMinBytes, bytes.subarray(ru.chunkMinBytes), { whole: sha(bytes) });
  assert.equal(fin.status, 200, fin.buf.toString());
  assert.deepEqual(fin.json, posted.json, 'the committed Asset');
  assertError(await req('GET', `/media/uploads/${id}`), 404, 'UPLOAD_NOT_FOUND');
}, { minChunks: 2 });

resumable("another user's session is 404 UPLOAD_NOT_FOUND; the same id is theirs to use", async () => {
  const bytes = randomBytes(1000);
  const mine = await createSession({ size: bytes.length });
  assert.equal(mine.status, 201);
  assertError(await req('GET', `/media/uploads/${mine.id}`, { token: TOKEN2 }), 404, 'UPLOAD_NOT_FOUND');
  assertError(await appendChunk(mine.id, 0, bytes, { token: TOKEN2, whole: sha(bytes) }), 404, 'UPLOAD_NOT_FOUND');
  assertError(await req('DELETE', `/media/uploads/${mine.id}`, { token: TOKEN2 }), 404, 'UPLOAD_NOT_FOUND');
  const theirs = await createSession({ id: mine.id, size: 2000, token: TOKEN2 });
  assert.equal(theirs.status, 201, 'a separate session for the other user');
  assert.equal((await req('GET', `/media/uploads/${mine.id}`)).json.size, 1000, 'mine is unchanged');
  const done = await appendChunk(mine.id, 0, bytes, { whole: sha(bytes) });
  assert.equal(done.status, 201);
  assertError(await req('GET', `/media/assets/${mine.id}`, { token: TOKEN2 }), 404, 'NOT_FOUND');
  assert.equal((await req('GET', `/media/uploads/${mine.id}`, { token: TOKEN2 })).json.offset, 0);
  assert.equal((await req('DELETE', `/media/uploads/${mine.id}`, { token: TOKEN2 })).status, 204);
  assertError(await req('GET', `/media/uploads/${mine.id}`), 404, 'UPLOAD_NOT_FOUND');
  for (const m of ['GET', 'DELETE']) assertError(await req(m, `/media/uploads/${mine.id}`, { token: null }), 401, 'UNAUTHENTICATED');
});

resumable('cancel: 204, then the session is gone (GET, PATCH, DELETE 404) and the id is free', async (t, ru) => {
  const bytes = randomBytes(1000);
  const { id } = await createSession({ size: bytes.length });
  assert.equal((await req('DELETE', `/media/uploads/${id}`)).status, 204);
  assertError(await req('GET', `/media/uploads/${id}`), 404, 'UPLOAD_NOT_FOUND');
  assertError(await appendChunk(id, 0, bytes, { whole: sha(bytes) }), 404, 'UPLOAD_NOT_FOUND');
  assertError(await req('DELETE', `/media/uploads/${id}`), 404, 'UPLOAD_NOT_FOUND');
  assertError(await req('DELETE', `/media/uploads/${uuidv7()}`), 404, 'UPLOAD_NOT_FOUND');
  assertError(await req('GET', `/media/assets/${id}`), 404, 'NOT_FOUND');
  const again = await createSession({ id, size: bytes.length });
  assert.equal(again.status, 201);
  assert.equal(again.json.offset, 0);
  assert.equal((await appendChunk(id, 0, bytes, { whole: sha(bytes) })).status, 201);
});

resumable('expiry: a session unused for sessionLifetimeMs is gone (404), and the id is free', async (t, ru) => {
  if (ru.sessionLifetimeMs > 10_000) {
    return t.skip(`skipped: sessionLifetimeMs is ${ru.sessionLifetimeMs} (over 10 s); run the server with a short session lifetime to check expiry`);
  }
  const bytes = randomBytes(1000);
  const c = await createSession({ size: bytes.length });
  assert.equal(c.status, 201);
  assert.ok(c.json.expiresAt <= Date.now() + ru.sessionLifetimeMs + 1000, 'expiresAt within the lifetime');
  await new Promise((r) => setTimeout(r, Math.max(0, c.json.expiresAt - Date.now()) + 1500));
  assertError(await req('GET', `/media/uploads/${c.id}`), 404, 'UPLOAD_NOT_FOUND');
  assertError(await appendChunk(c.id, 0, bytes, { whole: sha(bytes) }), 404, 'UPLOAD_NOT_FOUND');
  assertError(await req('DELETE', `/media/uploads/${c.id}`), 404, 'UPLOAD_NOT_FOUND');
  const again = await createSession({ id: c.id, size: bytes.length + 1 });
  assert.equal(again.status, 201, 'an expired session does not hold its id (a new size is fine)');
  assert.equal((await req('DELETE', `/media/uploads/${c.id}`)).status, 204);
});

resumable('limits: more than maxSessions open sessions is 429 TOO_MANY_UPLOADS with Retry-After; a cancelled one frees a place', async (t, ru) => {
  if (ru.maxSessions > 64) return t.skip(`skipped: maxSessions is ${ru.maxSessions} (over 64); run the server with a lower limit to check it cheaply`);
  const ids = [];
  for (let i = 0; i < ru.maxSessions; i++) {
    const r = await createSession({ size: 1000, token: TOKEN2 });
    assert.equal(r.status, 201, `session ${i + 1} of ${ru.maxSessions} (body: ${r.buf.toString().slice(0, 200)})`);
    ids.push(r.id);
  }
  try {
    const over = await createSession({ size: 1000, token: TOKEN2 });
    assertError(over, 429, 'TOO_MANY_UPLOADS');
    const wait = Number(over.headers.get('retry-after'));
    assert.ok(Number.isInteger(wait) && wait >= 1, 'Retry-After in whole seconds');
    assertError(await req('GET', `/media/uploads/${over.id}`, { token: TOKEN2 }), 404, 'UPLOAD_NOT_FOUND');
    const retry = await createSession({ id: ids[0], size: 1000, token: TOKEN2 });
    assert.equal(retry.status, 200, 'a retried create of an open session is not refused');
    assert.equal((await req('DELETE', `/media/uploads/${ids.shift()}`, { token: TOKEN2 })).status, 204);
    const fits = await createSession({ size: 1000, token: TOKEN2 });
    assert.equal(fits.status, 201, 'room again after a cancel');
    ids.push(fits.id);
  } finally {
    for (const id of ids) await req('DELETE', `/media/uploads/${id}`, { token: TOKEN2 });
  }
});

/** A PATCH whose body is sent in two halves with a pause between (node:http, with Content-Length). */
function slowAppend(id, offset, chunk, pauseMs) {
  const u = new URL(`${BASE}/media/uploads/${id}`);
  return new Promise((ok, fail) => {
    const r = http.request(u, { method: 'PATCH', headers: { ...auth(), 'content-type': 'application/offset+octet-stream', 'content-length': chunk.length, 'upload-offset': String(offset), 'content-digest': `sha-256=:${b64sha(chunk)}:` } }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => ok({ status: res.statusCode, json: JSON.parse(Buffer.concat(parts).toString() || 'null') }));
    });
    r.on('error', fail);
    const half = Math.floor(chunk.length / 2);
    r.write(chunk.subarray(0, half));
    setTimeout(() => r.end(chunk.subarray(half)), pauseMs);
  });
}

resumable('concurrent appends at one offset: one wins, the other gets 409 UPLOAD_LOCKED or OFFSET_MISMATCH; the file is the winner\'s bytes', async (t, ru) => {
  const a = fileOf(ru, 2);
  const b = Buffer.from(a); b.fill(0x5a, 0, ru.chunkMinBytes);
  const { id } = await createSession({ size: a.length });
  const slow = slowAppend(id, 0, a.subarray(0, ru.chunkMinBytes), 800);
  await new Promise((r) => setTimeout(r, 300));
  // Mid-append, the session says so (a client waits instead of sending a chunk to be drained).
  const busy = await req('GET', `/media/uploads/${id}`);
  assert.equal(busy.status, 200);
  assert.equal(busy.json.appending, true, `appending while another append runs: ${JSON.stringify(busy.json)}`);
  const loser = await appendChunk(id, 0, b.subarray(0, ru.chunkMinBytes));
  assert.equal(loser.status, 409, `the second append meanwhile (body: ${loser.buf.toString().slice(0, 200)})`);
  assert.ok(['UPLOAD_LOCKED', 'OFFSET_MISMATCH'].includes(loser.json.error.code), loser.json.error.code);
  if (loser.json.error.code === 'UPLOAD_LOCKED') assert.ok(Number(loser.headers.get('retry-after')) >= 1, 'Retry-After');
  const won = await slow;
  assert.equal(won.status, 200, JSON.stringify(won.json));
  assert.equal(won.json.offset, ru.chunkMinBytes);
  assert.notEqual((await req('GET', `/media/uploads/${id}`)).json.appending, true, 'not appending once it ended');
  assertError(await appendChunk(id, 0, b.subarray(0, ru.chunkMinBytes)), 409, 'OFFSET_MISMATCH');
  await sendFrom(ru, id, a, ru.chunkMinBytes);
  assert.equal(sha((await req('GET', `/media/assets/${id}`)).buf), sha(a), 'the bytes are the winner\'s, whole');
}, { minChunks: 2 });

resumable('CORS: PATCH with Upload-Offset and Content-Digest is allowed; Upload-Offset and Location are exposed', async (t) => {
  if (!CORS_ORIGIN) return t.skip('pass --cors-origin with an origin the server allows to run the CORS checks');
  const pre = await fetch(`${BASE}/media/uploads/${uuidv7()}`, { method: 'OPTIONS', headers: { origin: CORS_ORIGIN, 'access-control-request-method': 'PATCH', 'access-control-request-headers': 'authorization, content-type, upload-offset, content-digest, x-content-sha256' } });
  assert.ok([200, 204].includes(pre.status), `preflight status ${pre.status}`);
  assert.match(pre.headers.get('access-control-allow-methods') ?? '', /PATCH/);
  const allowed = (pre.headers.get('access-control-allow-headers') ?? '').toLowerCase();
  for (const h of ['upload-offset', 'content-digest', 'x-content-sha256']) assert.ok(allowed.includes(h), `allows ${h}: ${allowed}`);
  const c = await fetch(`${BASE}/media/uploads`, { method: 'POST', headers: { origin: CORS_ORIGIN, ...auth(), ...json }, body: JSON.stringify({ id: uuidv7(), name: 'c.bin', size: 10 }) });
  assert.equal(c.status, 201);
  const exposed = (c.headers.get('access-control-expose-headers') ?? '').toLowerCase();
  for (const h of ['upload-offset', 'location', 'retry-after']) assert.ok(exposed.includes(h), `exposes ${h}: ${exposed}`);
  await req('DELETE', new URL(c.headers.get('location'), BASE).pathname.replace(new URL(BASE).pathname, ''));
});
