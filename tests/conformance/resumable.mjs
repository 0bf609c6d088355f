// Conformance checks of the resumable-upload extension (docs/protocol.md, "Resumable uploads
// (extension)"), loaded by suite.mjs. Each check's name starts with "resumable:".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { uuidv7 } from './uuid.mjs';
import { BASE, TOKEN, TOKEN2, CORS_ORIGIN, sha, auth, req, upload, assertError, allChanges, allListed, rawRequest } from './client.mjs';
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
function resumable(name, fn, { minChunks = 0, post = false } = {}) {
  test(`resumable: ${name}`, { timeout: 120_000 }, async (t) => {
    const c = await capsNow();
    if (!c.features?.includes('resumable-uploads')) return t.skip(NOT_ADVERTISED);
    const ru = c.resumableUploads;
    // A file of `minChunks` chunks: chunkMinBytes each but the last (1000 bytes).
    const need = minChunks > 0 ? ru.chunkMinBytes * (minChunks - 1) + 1000 : 0;
    if (need > c.maxUploadBytes) {
      return t.skip(`skipped: needs a ${minChunks}-chunk file (${need} bytes) but maxUploadBytes is ${c.maxUploadBytes}`);
    }
    if (post && need > c.maxUploadBytes) return t.skip('skipped: the file is over maxUploadBytes for POST');
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
  assert.equal(typeof r.json.appending, 'boolean', 'appending is always sent');
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
  assert.equal(other.headers.get('upload-offset'), String(ru.chunkMinBytes), 'a 409 whose details are the Upload carries Upload-Offset');
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
    assert.equal(r.headers.get('etag'), '"1"', 'an Asset answer carries its ETag');
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

resumable('a POST of the same id during a session wins; the session stays open (GET, appends) and its final chunk answers as a retried POST', async (t, ru) => {
  const bytes = fileOf(ru, 3);
  const { id } = await createSession({ size: bytes.length });
  assert.equal((await appendChunk(id, 0, bytes.subarray(0, ru.chunkMinBytes))).status, 200);
  const posted = await upload(bytes, { id });
  assert.equal(posted.status, 201);
  // Still open until its final chunk, a cancel or expiry: GET answers it, a non-final chunk is taken.
  assertUpload(await req('GET', `/media/uploads/${id}`), { id, size: bytes.length, offset: ru.chunkMinBytes });
  const created = await createSession({ id, size: bytes.length });
  assert.equal(created.status, 200);
  assert.deepEqual(created.json, posted.json, 'a create of the id answers the Asset');
  const mid = await appendChunk(id, ru.chunkMinBytes, bytes.subarray(ru.chunkMinBytes, 2 * ru.chunkMinBytes));
  assert.equal(mid.status, 200, mid.buf.toString());
  const fin = await appendChunk(id, 2 * ru.chunkMinBytes, bytes.subarray(2 * ru.chunkMinBytes), { whole: sha(bytes) });
  assert.equal(fin.status, 200, fin.buf.toString());
  assert.deepEqual(fin.json, posted.json, 'the committed Asset');
  assert.equal(fin.headers.get('etag'), '"1"');
  assertError(await req('GET', `/media/uploads/${id}`), 404, 'UPLOAD_NOT_FOUND');
}, { minChunks: 3, post: true });

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


// --- answers to the second implementer's questions (issue 22; docs/protocol.md says each) ---

resumable('create and append: an unreadable Content-Type is 415, like any type that is not the one required', async () => {
  const r = await req('POST', '/media/uploads', { headers: { 'content-type': 'application/json; x=\u00e9' }, body: JSON.stringify({ id: uuidv7(), name: 'x.bin', size: 10 }) });
  assertError(r, 415, 'UNSUPPORTED_MEDIA_TYPE');
  const bytes = randomBytes(100);
  const { id } = await createSession({ size: bytes.length });
  assertError(await appendChunk(id, 0, bytes, { whole: sha(bytes), headers: { 'content-type': 'application/offset+octet-stream; x=\u00e9' } }), 415, 'UNSUPPORTED_MEDIA_TYPE');
  assert.equal((await req('DELETE', `/media/uploads/${id}`)).status, 204);
});

resumable('create: integers have no fraction or exponent; null is absent; type "" is the default, a multipart type is stored', async () => {
  const id = uuidv7();
  const post = (body) => req('POST', '/media/uploads', { headers: json, body });
  for (const size of ['1.0', '1e3', '1000.0', 'true']) assertError(await post(`{"id":"${id}","name":"n.bin","size":${size}}`), 400, 'BAD_REQUEST');
  for (const at of ['1.0', '1e3', 'true']) assertError(await post(`{"id":"${id}","name":"n.bin","size":10,"createdAt":${at}}`), 400, 'BAD_REQUEST');
  assertError(await post(`{"id":null,"name":"n.bin","size":10}`), 400, 'INVALID_ID');
  assertError(await post(`{"id":"${id}","name":null,"size":10}`), 400, 'INVALID_NAME');
  const bytes = randomBytes(100);
  const c = await post(JSON.stringify({ id, name: 'n.bin', size: bytes.length, type: '', tags: null, createdAt: null, sha256: null }));
  assert.equal(c.status, 201, c.buf.toString());
  const done = await appendChunk(id, 0, bytes, { whole: sha(bytes) });
  assert.equal(done.status, 201, done.buf.toString());
  assert.equal(done.json.type, 'application/octet-stream', 'type "" is the default');
  assert.deepEqual(done.json.tags, [], 'tags null is absent');
  assert.ok(Number.isSafeInteger(done.json.createdAt), 'createdAt null is absent');
  const multi = await createSession({ size: bytes.length, extra: { type: 'multipart/form-data; boundary=x' } });
  assert.equal(multi.status, 201, multi.buf.toString());
  const stored = await appendChunk(multi.id, 0, bytes, { whole: sha(bytes) });
  assert.equal(stored.json.type, 'multipart/form-data; boundary=x', 'the JSON type is the asset\'s own: stored');
});

resumable('the default createdAt is the session\'s creation time, not the commit\'s', async (t, ru) => {
  if (ru.sessionLifetimeMs < 3000) return t.skip(`skipped: sessionLifetimeMs is ${ru.sessionLifetimeMs} (under 3 s)`);
  const bytes = randomBytes(100);
  const c = await createSession({ size: bytes.length });
  assert.equal(c.status, 201);
  await new Promise((r) => setTimeout(r, 1200));
  const done = await appendChunk(c.id, 0, bytes, { whole: sha(bytes) });
  assert.equal(done.status, 201);
  assert.ok(done.json.updatedAt - done.json.createdAt >= 1000, `createdAt ${done.json.createdAt} is ~1.2 s before the commit (updatedAt ${done.json.updatedAt})`);
});

resumable('an append without Content-Length (and no body) is 411 LENGTH_REQUIRED, not an empty chunk', async () => {
  const bytes = randomBytes(100);
  const { id } = await createSession({ size: bytes.length });
  const r = await rawRequest('PATCH', `/media/uploads/${id}`, [['authorization', `Bearer ${TOKEN}`], ['content-type', 'application/offset+octet-stream'], ['upload-offset', '0'], ['content-digest', `sha-256=:${b64sha(Buffer.alloc(0))}:`], ['x-content-sha256', sha(bytes)]]);
  assertError(r, 411, 'LENGTH_REQUIRED');
  assert.equal((await req('DELETE', `/media/uploads/${id}`)).status, 204);
});

resumable('Content-Digest is an RFC 8941 dictionary: a malformed member fails the field (400); unpadded base64 and well-formed members of any kind are fine', async () => {
  const bytes = randomBytes(100);
  const { id } = await createSession({ size: bytes.length });
  const d = b64sha(bytes);
  for (const bad of [`sha-256=:${d}:, sha-512=:not base64!:`, `sha-256=:${d}:, x="open`, `sha-256=:${d}:,`, `sha-256=:${d}: trailing`]) {
    assertError(await appendChunk(id, 0, bytes, { whole: sha(bytes), headers: { 'content-digest': bad } }), 400, 'MISSING_CHECKSUM');
  }
  assert.equal((await req('GET', `/media/uploads/${id}`)).json.offset, 0);
  const ok = await appendChunk(id, 0, bytes, { whole: sha(bytes), headers: { 'content-digest': `a, b=?1, c=-1.5;q=2, d=(x "y" :AA==:), sha-256=:${d.replace(/=+$/, '')}:` } });
  assert.equal(ok.status, 201, ok.buf.toString());
});

resumable('the offset is checked before the length rules: a stale Upload-Offset is 409 OFFSET_MISMATCH even when the chunk would look final or past the end there', async (t, ru) => {
  const bytes = fileOf(ru, 2);
  const { id } = await createSession({ size: bytes.length });
  const tail = bytes.subarray(ru.chunkMinBytes);
  for (const [off, chunk] of [[ru.chunkMinBytes, tail], [bytes.length - 64, bytes.subarray(0, 128)]]) {
    const r = await appendChunk(id, off, chunk);
    assertError(r, 409, 'OFFSET_MISMATCH');
    assert.equal(r.json.error.details.offset, 0);
  }
  assert.equal((await req('DELETE', `/media/uploads/${id}`)).status, 204);
}, { minChunks: 2 });

resumable('cancel during an append: the DELETE does not wait (204 first), the running append answers 404 UPLOAD_NOT_FOUND and stores nothing', async (t, ru) => {
  const bytes = fileOf(ru, 2);
  const { id } = await createSession({ size: bytes.length });
  const order = [];
  const slow = slowAppend(id, 0, bytes.subarray(0, ru.chunkMinBytes), 1500).then((r) => { order.push('append'); return r; });
  await new Promise((r) => setTimeout(r, 300));
  const del = await req('DELETE', `/media/uploads/${id}`);
  order.push('delete');
  assert.equal(del.status, 204);
  const ended = await slow;
  assert.deepEqual(order, ['delete', 'append'], 'the cancel is answered while the append still runs');
  assert.equal(ended.status, 404, JSON.stringify(ended.json));
  assert.equal(ended.json.error.code, 'UPLOAD_NOT_FOUND');
  assertError(await req('GET', `/media/uploads/${id}`), 404, 'UPLOAD_NOT_FOUND');
  const again = await createSession({ id, size: bytes.length });
  assert.equal(again.status, 201);
  assert.equal(again.json.offset, 0);
  assert.equal((await req('DELETE', `/media/uploads/${id}`)).status, 204);
}, { minChunks: 2 });

resumable('only a stored chunk extends expiresAt: refused appends and GET do not', async (t, ru) => {
  const bytes = fileOf(ru, 2);
  const c = await createSession({ size: bytes.length });
  assert.equal(c.status, 201);
  await new Promise((r) => setTimeout(r, 20));
  const first = bytes.subarray(0, ru.chunkMinBytes);
  assertError(await appendChunk(c.id, 0, first, { digest: b64sha(Buffer.from('no')) }), 422, 'DIGEST_MISMATCH');
  assertError(await appendChunk(c.id, 64, first), 409, 'OFFSET_MISMATCH');
  assertError(await appendChunk(c.id, 0, first.subarray(0, 64)), 400, 'INVALID_CHUNK');
  for (let i = 0; i < 2; i++) assert.equal((await req('GET', `/media/uploads/${c.id}`)).json.expiresAt, c.json.expiresAt, 'expiresAt unchanged');
  await new Promise((r) => setTimeout(r, 20));
  const stored = await appendChunk(c.id, 0, first);
  assert.ok(stored.json.expiresAt > c.json.expiresAt, 'a stored chunk extends it');
  assert.equal((await req('DELETE', `/media/uploads/${c.id}`)).status, 204);
}, { minChunks: 2 });

resumable('a session does not expire under a running append: GET shows it appending past expiresAt, and the append stores its chunk', async (t, ru) => {
  if (ru.sessionLifetimeMs > 10_000) return t.skip(`skipped: sessionLifetimeMs is ${ru.sessionLifetimeMs} (over 10 s); run the server with a short session lifetime to check it`);
  const bytes = fileOf(ru, 2);
  const c = await createSession({ size: bytes.length });
  const slow = slowAppend(c.id, 0, bytes.subarray(0, ru.chunkMinBytes), ru.sessionLifetimeMs + 1000);
  await new Promise((r) => setTimeout(r, Math.max(0, c.json.expiresAt - Date.now()) + 500));
  const during = await req('GET', `/media/uploads/${c.id}`);
  assert.equal(during.status, 200, `past expiresAt, mid-append: ${during.buf.toString().slice(0, 200)}`);
  assert.equal(during.json.appending, true);
  const done = await slow;
  assert.equal(done.status, 200, JSON.stringify(done.json));
  assert.equal(done.json.offset, ru.chunkMinBytes);
  assert.ok(done.json.expiresAt > c.json.expiresAt, 'the append extended the session');
  assert.equal((await req('DELETE', `/media/uploads/${c.id}`)).status, 204);
}, { minChunks: 2 });
