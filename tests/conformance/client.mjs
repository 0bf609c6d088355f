// Shared by the conformance checks: the command line, the API root, and small HTTP helpers.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { uuidv7 } from './uuid.mjs';

export const arg = (k, d) => { const i = process.argv.indexOf(k); return i > 0 ? process.argv[i + 1] : (process.env[k.replace(/^--/, 'CONFORMANCE_').replace(/-/g, '_').toUpperCase()] ?? d); };
export const USAGE = `usage: node tests/conformance/suite.mjs --base-url URL --token TOKEN --token2 TOKEN2

Checks a server against docs/protocol.md over HTTP. Options (or environment variables):
  --base-url URL   the API root (CONFORMANCE_BASE_URL): requests go to URL/media/...;
                   a bare origin such as http://127.0.0.1:8787 means http://127.0.0.1:8787/api
  --token T        a valid credential of one user (CONFORMANCE_TOKEN), sent as "Bearer T"
  --token2 T       a valid credential of a second user (CONFORMANCE_TOKEN2)
  --cors-origin O  a browser origin the server allows (CONFORMANCE_CORS_ORIGIN): enables the
                   CORS checks (preflight, Vary, refused origins)
  --admin-secret S the reference server's admin secret (CONFORMANCE_ADMIN_SECRET): enables the
                   spaces checks, which manage membership through its admin API
  --user U, --user2 U  the user ids of the two tokens (CONFORMANCE_USER, CONFORMANCE_USER2);
                   by default read from reference tokens (dev:<user>, <user>.<exp>.<sig>)
  --help           this text
Node's test runner options work too, e.g. --test-name-pattern="rate limit".`;
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(USAGE);
  process.exit(0);
}
export const BASE_ARG = arg('--base-url');
export const TOKEN = arg('--token');
export const TOKEN2 = arg('--token2');
export const CORS_ORIGIN = arg('--cors-origin');
if (!BASE_ARG || !TOKEN || !TOKEN2) {
  console.error(USAGE);
  process.exit(2);
}
/** The API root, by the rule clients use for `apiBaseUrl`. */
export function apiRoot(base) {
  const u = new URL(base);
  const path = u.pathname.replace(/\/+$/, '');
  return u.origin + (path === '' ? '/api' : path);
}
export const BASE = apiRoot(BASE_ARG);

export const sha = (buf) => createHash('sha256').update(buf).digest('hex');
export const auth = (t = TOKEN) => ({ authorization: `Bearer ${t}` });

export async function req(method, path, { token = TOKEN, headers = {}, body } = {}) {
  const res = await fetch(BASE + path, { method, headers: { ...(token ? auth(token) : {}), ...headers }, body });
  const buf = Buffer.from(await res.arrayBuffer());
  let json = null;
  if (buf.length && (res.headers.get('content-type') ?? '').includes('application/json')) json = JSON.parse(buf.toString('utf8'));
  return { status: res.status, headers: res.headers, buf, json };
}

export async function upload(bytes, { id = uuidv7(), name = 'file.bin', type = 'application/octet-stream', token = TOKEN, checksum = sha(bytes), headers = {}, path = '/media/assets' } = {}) {
  const h = { 'content-type': type, 'x-asset-id': id, 'x-asset-name': encodeURIComponent(name), ...headers };
  if (checksum !== null) h['x-content-sha256'] = checksum;
  const r = await req('POST', path, { token, headers: h, body: bytes });
  return { ...r, id };
}

export function assertError(r, status, code) {
  assert.equal(r.status, status, `status (body: ${r.buf.toString('utf8').slice(0, 300)})`);
  assert.equal(r.json?.error?.code, code, 'error code');
  assert.equal(typeof r.json.error.message, 'string');
}

// A tiny valid PNG (w x h, RGB, or RGBA half transparent), so thumbnails can be checked.
export function png(w, h, { alpha = false } = {}) {
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
export function withOrientation(jpeg, orientation) {
  const tiff = Buffer.from([0x49, 0x49, 0x2a, 0x00, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, orientation, 0, 0, 0, 0, 0, 0, 0]);
  const body = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
  const len = Buffer.alloc(2); len.writeUInt16BE(body.length + 2);
  return Buffer.concat([jpeg.subarray(0, 2), Buffer.from([0xff, 0xe1]), len, body, jpeg.subarray(2)]);
}

/** Width, height and colour type of a PNG. */
export const pngInfo = (buf) => ({ w: buf.readUInt32BE(16), h: buf.readUInt32BE(20), colorType: buf[25] });

export async function allChanges(cursor, limit) {
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


/** Every listed asset id of the first user, in pages of `limit`. */
export async function allListed(limit) {
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

/**
 * One request over a raw socket (`Connection: close`), for what fetch cannot send: no
 * `Content-Length` and no body, or a header field sent twice. `headers` is a list of
 * [name, value] pairs, values written as Latin-1. Returns the status, headers and JSON body.
 */
export async function rawRequest(method, path, headers = [], body = Buffer.alloc(0)) {
  const u = new URL(BASE + path);
  const net = await import(u.protocol === 'https:' ? 'node:tls' : 'node:net');
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  const lines = [`${method} ${u.pathname}${u.search} HTTP/1.1`, `host: ${u.host}`, 'connection: close', ...headers.map(([k, v]) => `${k}: ${v}`)];
  const raw = await new Promise((ok, fail) => {
    const s = net.connect({ host: u.hostname, port, servername: u.hostname }, () => s.write(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body])));
    const parts = [];
    s.on('data', (d) => parts.push(d));
    s.on('end', () => ok(Buffer.concat(parts)));
    s.on('error', fail);
  });
  const split = raw.indexOf('\r\n\r\n');
  const [status, ...fields] = raw.subarray(0, split).toString('latin1').split('\r\n');
  const h = new Map(fields.map((f) => [f.slice(0, f.indexOf(':')).toLowerCase(), f.slice(f.indexOf(':') + 1).trim()]));
  const rest = raw.subarray(split + 4);
  const text = h.get('transfer-encoding') === 'chunked' ? rest.toString('utf8').replace(/^[0-9a-f]+\r\n/i, '').replace(/\r\n0\r\n\r\n$/, '') : rest.toString('utf8');
  const json = (h.get('content-type') ?? '').includes('application/json') && text ? JSON.parse(text) : null;
  return { status: Number(status.split(' ')[1]), headers: h, json, buf: Buffer.from(text) };
}
