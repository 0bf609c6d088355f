// Conformance checks of the spaces extension (docs/protocol.md, "Spaces (extension)"), loaded
// by suite.mjs. Each check's name starts with "spaces:". They run where capabilities list the
// `spaces` feature; membership is managed through the reference server's admin API
// (docs/server.md, "Spaces"), so they also need --admin-secret; otherwise each is skipped by name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { uuidv7 } from './uuid.mjs';
import { arg, TOKEN, TOKEN2, sha, req, upload, assertError } from './client.mjs';

const ADMIN_SECRET = arg('--admin-secret');
/** The user id behind a token of the reference server (`dev:<user>` or `<user>.<exp>.<sig>`). */
const userOf = (t) => (t.startsWith('dev:') ? t.slice(4) : t.split('.')[0]);
const USER = arg('--user') ?? userOf(TOKEN);
const USER2 = arg('--user2') ?? userOf(TOKEN2);

let capsCache;
async function capsNow() {
  capsCache ??= (await req('GET', '/media/capabilities', { token: null })).json;
  return capsCache;
}

/** A check that runs only against a server advertising spaces, with the admin secret given. */
function spaces(name, fn) {
  test(`spaces: ${name}`, { timeout: 120_000 }, async (t) => {
    const c = await capsNow();
    if (!c.features?.includes('spaces')) return t.skip('skipped: server does not advertise spaces');
    if (!ADMIN_SECRET) return t.skip('skipped: pass --admin-secret (the reference admin API manages membership)');
    await fn(t, c);
  });
}

const newSpace = () => `s-${uuidv7()}`;
/** The admin API: add (PUT) or remove (DELETE) a member, or list (GET) them. */
const admin = (method, space, user = '', token = ADMIN_SECRET) =>
  req(method, `/admin/spaces/${space}/members${user ? `/${user}` : ''}`, { token });
async function addMember(space, user) {
  const r = await admin('PUT', space, user);
  assert.ok([200, 201].includes(r.status), `add ${user} to ${space}: ${r.status} ${r.buf}`);
}
async function removeMember(space, user) {
  assert.equal((await admin('DELETE', space, user)).status, 204);
}
/** `path` (starting with /media/) under space `space`'s API root. */
const at = (space, path) => `/spaces/${space}${path}`;
const inSpace = (space, opts = {}) => upload(opts.bytes ?? randomBytes(2000), { ...opts, path: at(space, '/media/assets') });
const json = { 'content-type': 'application/json' };
const patch = (space, id, version, body, token = TOKEN) =>
  req('PATCH', at(space, `/media/assets/${id}/metadata`), { token, headers: { ...json, 'if-match': `"${version}"` }, body: JSON.stringify(body) });

/** Every change of `space`'s feed as `token` sees it. */
async function feed(space, token = TOKEN) {
  const out = [];
  let cursor;
  for (let i = 0; i < 100; i++) {
    const q = new URLSearchParams({ limit: '100', ...(cursor ? { cursor } : {}) });
    const r = await req('GET', at(space, `/media/changes?${q}`), { token });
    assert.equal(r.status, 200, `changes: ${r.buf}`);
    out.push(...r.json.changes);
    cursor = r.json.nextCursor;
    if (!r.json.hasMore) return { changes: out, cursor };
  }
  throw new Error('the feed never ended');
}

/** Every protocol request a client makes in a space, for the refusal checks. */
function everyEndpoint(space, id, resumable) {
  const a = `/media/assets/${id}`;
  const chunk = { 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' };
  const bytes = randomBytes(100);
  return [
    ['GET', '/media/assets'],
    ['HEAD', '/media/assets'],
    ['POST', '/media/assets', { 'content-type': 'application/octet-stream', 'x-asset-id': uuidv7(), 'x-asset-name': 'x.bin', 'x-content-sha256': sha(bytes) }, bytes],
    ['GET', a],
    ['HEAD', a],
    ['GET', `${a}/metadata`],
    ['PATCH', `${a}/metadata`, { ...json, 'if-match': '"1"' }, JSON.stringify({ name: 'taken.bin' })],
    ['GET', `${a}/thumbnail`],
    ['DELETE', a],
    ['GET', '/media/changes'],
    ['POST', '/media/uploads', json, JSON.stringify({ id: uuidv7(), name: 'big.bin', size: 10 })],
    ['GET', `/media/uploads/${id}`],
    ['PATCH', `/media/uploads/${id}`, chunk, bytes],
    ['DELETE', `/media/uploads/${id}`],
  ]
    .filter(([, path]) => resumable || !path.startsWith('/media/uploads'))
    .map(([method, path, headers = {}, body]) => ({ method, path: at(space, path), headers, body }));
}

/** Every endpoint answers `token` with 403 NOT_A_MEMBER (HEAD: the status alone). */
async function refusedEverywhere(space, id, token, why) {
  const resumable = (await capsNow()).features.includes('resumable-uploads');
  for (const { method, path, headers, body } of everyEndpoint(space, id, resumable)) {
    const r = await req(method, path, { token, headers, body });
    if (method === 'HEAD') assert.equal(r.status, 403, `${why}: HEAD ${path}`);
    else assertError(r, 403, 'NOT_A_MEMBER');
  }
}

spaces('capabilities advertise the space root; a space root serves the same capabilities without credentials', async (t, c) => {
  assert.equal(typeof c.spaces?.root, 'string');
  assert.ok(c.spaces.root.endsWith('/spaces/{spaceId}'), `spaces.root ${c.spaces.root}`);
  assert.equal(c.spaces.idPattern, '^[A-Za-z0-9_-]{1,64}$');
  const r = await req('GET', at(newSpace(), '/media/capabilities'), { token: null });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, c);
});

spaces('admin API: the secret is required; members are added, listed and removed idempotently; bad ids are typed 400s', async () => {
  const s = newSpace();
  for (const bad of [null, TOKEN, `${ADMIN_SECRET}x`]) assertError(await admin('GET', s, '', bad), 401, 'UNAUTHENTICATED');
  assert.equal((await admin('PUT', s, USER)).status, 201);
  assert.equal((await admin('PUT', s, USER)).status, 200, 'a second add is 200');
  await addMember(s, USER2);
  const list = await admin('GET', s);
  assert.equal(list.status, 200);
  assert.deepEqual(list.json.members.map((m) => m.userId).sort(), [USER, USER2].sort());
  assert.ok(list.json.members.every((m) => Number.isSafeInteger(m.addedAt)));
  await removeMember(s, USER2);
  await removeMember(s, USER2);
  assert.deepEqual((await admin('GET', s)).json.members.map((m) => m.userId), [USER]);
  assertError(await admin('PUT', 'a.b', USER), 400, 'INVALID_SPACE_ID');
  assertError(await admin('PUT', s, 'a.b'), 400, 'INVALID_USER_ID');
});

spaces('a member uses the space like a library; it and the personal library never see each other', async () => {
  const s = newSpace();
  await addMember(s, USER);
  const bytes = randomBytes(3000);
  const up = await inSpace(s, { bytes, name: 'board.bin' });
  assert.equal(up.status, 201, `upload: ${up.buf}`);
  assert.equal(up.json.updatedBy, USER, 'updatedBy names the uploader');
  assert.ok(up.json.url.includes(`/spaces/${s}/media/assets/${up.id}`), `url ${up.json.url} is under the space root`);
  const got = await req('GET', at(s, `/media/assets/${up.id}`));
  assert.equal(got.status, 200);
  assert.deepEqual(got.buf, bytes);
  assert.equal((await req('GET', at(s, '/media/assets'))).json.assets.some((a) => a.id === up.id), true);
  // The personal library: not there, and its own assets not in the space.
  assertError(await req('GET', `/media/assets/${up.id}`), 404, 'NOT_FOUND');
  assert.equal((await req('GET', '/media/assets?limit=1000')).json.assets.some((a) => a.id === up.id), false);
  const mine = await upload(randomBytes(100));
  assert.equal(mine.status, 201);
  assert.equal(mine.json.updatedBy, undefined, 'personal libraries carry no updatedBy');
  assertError(await req('GET', at(s, `/media/assets/${mine.id}`)), 404, 'NOT_FOUND');
  const p = await patch(s, up.id, 1, { name: 'renamed.bin' });
  assert.equal(p.status, 200);
  assert.equal(p.json.name, 'renamed.bin');
  assert.equal((await req('DELETE', at(s, `/media/assets/${up.id}`), { headers: { 'if-match': '"2"' } })).status, 204);
  assertError(await req('GET', at(s, `/media/assets/${up.id}`)), 404, 'NOT_FOUND');
});

spaces('a non-member gets 403 NOT_A_MEMBER on every endpoint, an unknown space too; a malformed id is 400 INVALID_SPACE_ID', async () => {
  const s = newSpace();
  await addMember(s, USER);
  const up = await inSpace(s);
  assert.equal(up.status, 201);
  await refusedEverywhere(s, up.id, TOKEN2, 'non-member');
  await refusedEverywhere(newSpace(), up.id, TOKEN, 'unknown space');
  // Credentials are checked first: no token is 401, member or not.
  assertError(await req('GET', at(s, '/media/assets'), { token: null }), 401, 'UNAUTHENTICATED');
  // Sent as is (fetch percent-encodes `ä`): ids are never percent-decoded.
  for (const bad of ['a.b', '%41', 'x'.repeat(65), 'ä', '']) {
    assertError(await req('GET', at(bad, '/media/assets')), 400, 'INVALID_SPACE_ID');
  }
  // The refused writes stored nothing: the member sees only their own asset.
  const { changes } = await feed(s);
  assert.deepEqual(changes.map((c) => c.id), [up.id]);
  assertError(await req('GET', at(s, '/media/assets/x/y/z')), 404, 'UNKNOWN_ENDPOINT');
});

spaces('cross-space isolation: an asset of space A is 404 in space B; the same id in B is its own asset; cursors do not cross', async () => {
  const [a, b] = [newSpace(), newSpace()];
  for (const s of [a, b]) await addMember(s, USER);
  const bytesA = randomBytes(2500);
  const up = await inSpace(a, { bytes: bytesA });
  assert.equal(up.status, 201);
  for (const path of [`/media/assets/${up.id}`, `/media/assets/${up.id}/metadata`, `/media/assets/${up.id}/thumbnail`]) {
    assertError(await req('GET', at(b, path)), 404, 'NOT_FOUND');
  }
  assertError(await patch(b, up.id, 1, { name: 'x' }), 404, 'NOT_FOUND');
  assertError(await req('DELETE', at(b, `/media/assets/${up.id}`)), 404, 'NOT_FOUND');
  assert.equal((await req('GET', at(a, `/media/assets/${up.id}/metadata`))).json.name, 'file.bin', 'the delete in B left A alone');
  // Idempotency on the id is per library: the same id in B makes B's own asset, with its own bytes.
  const bytesB = randomBytes(2600);
  const upB = await inSpace(b, { bytes: bytesB, id: up.id });
  assert.equal(upB.status, 201, 'the same id in another space is a new asset');
  assert.notEqual(upB.json.path, up.json.path, 'storage keys differ');
  assert.deepEqual((await req('GET', at(a, `/media/assets/${up.id}`))).buf, bytesA);
  assert.deepEqual((await req('GET', at(b, `/media/assets/${up.id}`))).buf, bytesB);
  const fa = await feed(a);
  assertError(await req('GET', at(b, `/media/changes?cursor=${fa.cursor}`)), 400, 'INVALID_CURSOR');
  assertError(await req('GET', `/media/changes?cursor=${fa.cursor}`), 400, 'INVALID_CURSOR');
});

spaces("a space's changes feed shows every member's changes, each with updatedBy", async () => {
  const s = newSpace();
  await addMember(s, USER);
  await addMember(s, USER2);
  const { cursor } = await feed(s, TOKEN2);
  const up = await inSpace(s);
  assert.equal(up.status, 201);
  const renamed = await patch(s, up.id, 1, { tags: ['by-bob'] }, TOKEN2);
  assert.equal(renamed.status, 200);
  assert.equal(renamed.json.updatedBy, USER2);
  let r = await req('GET', at(s, `/media/changes?cursor=${cursor}`), { token: TOKEN2 });
  let c = r.json.changes.filter((x) => x.id === up.id);
  assert.equal(c.length, 1);
  assert.deepEqual([c[0].asset.tags, c[0].asset.updatedBy, c[0].asset.version], [['by-bob'], USER2, 2]);
  const del = await req('DELETE', at(s, `/media/assets/${up.id}`));
  assert.equal(del.status, 204);
  r = await req('GET', at(s, `/media/changes?cursor=${cursor}`), { token: TOKEN2 });
  c = r.json.changes.filter((x) => x.id === up.id);
  assert.equal(c.length, 1);
  assert.deepEqual([c[0].deleted, c[0].updatedBy, c[0].version], [true, USER, 3], 'the tombstone names who deleted');
  // The uploader's own feed shows the same.
  assert.equal((await feed(s)).changes.find((x) => x.id === up.id).updatedBy, USER);
});

spaces('concurrent edits from two members resolve with If-Match: the second is 412 with the current record', async () => {
  const s = newSpace();
  await addMember(s, USER);
  await addMember(s, USER2);
  const up = await inSpace(s);
  const [first, second] = await Promise.all([patch(s, up.id, 1, { name: 'alice.bin' }), patch(s, up.id, 1, { name: 'bob.bin' }, TOKEN2)]);
  const won = [first, second].filter((r) => r.status === 200);
  const lost = [first, second].filter((r) => r.status === 412);
  assert.equal(won.length, 1, `one wins: ${first.status} ${second.status}`);
  assert.equal(lost.length, 1);
  assertError(lost[0], 412, 'PRECONDITION_FAILED');
  const cur = lost[0].json.error.details;
  assert.equal(cur.version, 2);
  assert.equal(cur.name, won[0].json.name);
  assert.equal(cur.updatedBy, won[0] === first ? USER : USER2, 'the loser sees who changed it');
  const loserToken = lost[0] === first ? TOKEN : TOKEN2;
  const merged = await patch(s, up.id, 2, { name: 'merged.bin' }, loserToken);
  assert.equal(merged.status, 200);
  assert.equal(merged.json.version, 3);
});

spaces('removal takes effect at once: the next request of the removed member is 403 on every endpoint; re-adding restores access', async () => {
  const s = newSpace();
  await addMember(s, USER);
  await addMember(s, USER2);
  const up = await inSpace(s);
  assert.equal((await req('GET', at(s, `/media/assets/${up.id}`), { token: TOKEN2 })).status, 200);
  await removeMember(s, USER2);
  await refusedEverywhere(s, up.id, TOKEN2, 'removed member');
  assert.equal((await req('GET', at(s, `/media/assets/${up.id}`))).status, 200, 'the others keep access');
  await addMember(s, USER2);
  assert.equal((await req('GET', at(s, `/media/assets/${up.id}`), { token: TOKEN2 })).status, 200);
});

/** Resumable checks in a space: the server must advertise the extension and allow a 2-chunk file. */
function spacesResumable(name, fn) {
  spaces(`resumable: ${name}`, async (t, c) => {
    if (!c.features?.includes('resumable-uploads')) return t.skip('skipped: server does not advertise resumable-uploads');
    const ru = c.resumableUploads;
    if (ru.chunkMinBytes + 1000 > c.maxUploadBytes) return t.skip(`skipped: a 2-chunk file is over maxUploadBytes (${c.maxUploadBytes})`);
    await fn(t, ru, randomBytes(ru.chunkMinBytes + 1000));
  });
}
const b64sha = (buf) => createHash('sha256').update(buf).digest('base64');
function appendChunk(space, id, offset, chunk, token, whole) {
  const h = { 'content-type': 'application/offset+octet-stream', 'upload-offset': String(offset), 'content-digest': `sha-256=:${b64sha(chunk)}:` };
  if (whole) h['x-content-sha256'] = whole;
  return req('PATCH', at(space, `/media/uploads/${id}`), { token, headers: h, body: chunk });
}

spacesResumable('a session opened before removal: its next append is 403 and nothing becomes visible', async (t, ru, bytes) => {
  const s = newSpace();
  await addMember(s, USER);
  await addMember(s, USER2);
  const id = uuidv7();
  const created = await req('POST', at(s, '/media/uploads'), { token: TOKEN2, headers: json, body: JSON.stringify({ id, name: 'big.bin', size: bytes.length }) });
  assert.equal(created.status, 201, `create: ${created.buf}`);
  assert.ok(created.headers.get('location').includes(`/spaces/${s}/media/uploads/${id}`), 'Location is under the space root');
  const first = await appendChunk(s, id, 0, bytes.subarray(0, ru.chunkMinBytes), TOKEN2);
  assert.equal(first.status, 200, `first chunk: ${first.buf}`);
  await removeMember(s, USER2);
  const last = await appendChunk(s, id, ru.chunkMinBytes, bytes.subarray(ru.chunkMinBytes), TOKEN2, sha(bytes));
  assertError(last, 403, 'NOT_A_MEMBER');
  assertError(await req('GET', at(s, `/media/uploads/${id}`), { token: TOKEN2 }), 403, 'NOT_A_MEMBER');
  // Nothing of it is visible to the remaining member: no asset, no change.
  assertError(await req('GET', at(s, `/media/assets/${id}`)), 404, 'NOT_FOUND');
  assert.equal((await feed(s)).changes.some((c) => c.id === id), false);
});

spacesResumable("a session is its opener's: another member gets 404 UPLOAD_NOT_FOUND and cannot take the id", async (t, ru, bytes) => {
  const s = newSpace();
  await addMember(s, USER);
  await addMember(s, USER2);
  const id = uuidv7();
  const body = JSON.stringify({ id, name: 'big.bin', size: bytes.length });
  assert.equal((await req('POST', at(s, '/media/uploads'), { token: TOKEN2, headers: json, body })).status, 201);
  assertError(await req('GET', at(s, `/media/uploads/${id}`)), 404, 'UPLOAD_NOT_FOUND');
  assertError(await appendChunk(s, id, 0, bytes.subarray(0, ru.chunkMinBytes), TOKEN), 404, 'UPLOAD_NOT_FOUND');
  assertError(await req('DELETE', at(s, `/media/uploads/${id}`)), 404, 'UPLOAD_NOT_FOUND');
  assertError(await req('POST', at(s, '/media/uploads'), { headers: json, body }), 409, 'ID_CONFLICT');
  // Its opener finishes it; the asset names them.
  await appendChunk(s, id, 0, bytes.subarray(0, ru.chunkMinBytes), TOKEN2);
  const done = await appendChunk(s, id, ru.chunkMinBytes, bytes.subarray(ru.chunkMinBytes), TOKEN2, sha(bytes));
  assert.equal(done.status, 201, `final chunk: ${done.buf}`);
  assert.equal(done.json.updatedBy, USER2);
  assert.deepEqual((await req('GET', at(s, `/media/assets/${id}`))).buf, bytes);
});

test('spaces: a server that does not advertise spaces answers space paths like any unknown path', async (t) => {
  const c = await capsNow();
  if (c.features?.includes('spaces')) return t.skip('skipped: server advertises spaces');
  assert.equal(c.spaces, undefined);
  assertError(await req('GET', at(newSpace(), '/media/assets')), 404, 'UNKNOWN_ENDPOINT');
});
