// A loopback HTTP proxy in front of a protocol server that counts what crosses the wire:
// for every upload (`POST <root>/media/assets`) it records, per `X-Asset-Id`, how many
// request bodies started and how many body bytes it received, as they stream. Tests ask
//   GET /__wire/uploads?id=<asset id>   ->  { "bodies": n, "bytes": n, "complete": n }
// ("complete": bodies that reached their Content-Length or their end), so "sent once" is
// measured at the network, not inferred from a server that deduplicates by id.
// Optionally slows upload bodies (`bytesPerSec`), so a test can act while one is verifiably
// in flight, and spreads requests round-robin over several upstreams (a load balancer in
// front of several server instances). Only ever listens on 127.0.0.1.
//   node tests/wire-proxy.mjs --upstream http://127.0.0.1:8787 [--upstream URL2 ...] [--port 0] [--bytes-per-sec N]
import http from 'node:http';
import { pathToFileURL } from 'node:url';

export function startWireProxy({ upstream, port = 0, bytesPerSec = 0 }) {
  const ups = [upstream].flat().map((u) => new URL(u));
  let turn = 0;
  const uploads = new Map();
  const stats = (id) => {
    if (!uploads.has(id)) uploads.set(id, { bodies: 0, bytes: 0, complete: 0 });
    return uploads.get(id);
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://proxy');
    if (url.pathname === '/__wire/uploads') {
      const id = url.searchParams.get('id') ?? '';
      res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*' });
      res.end(JSON.stringify(uploads.get(id) ?? { bodies: 0, bytes: 0, complete: 0 }));
      return;
    }
    const isUpload = req.method === 'POST' && /\/media\/assets$/.test(url.pathname) && req.headers['x-asset-id'];
    const s = isUpload ? stats(String(req.headers['x-asset-id'])) : null;
    if (s) s.bodies += 1;
    const length = Number(req.headers['content-length'] ?? NaN);
    let seen = 0;
    const up = ups[turn++ % ups.length];
    const out = http.request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      res.writeHead(upRes.statusCode, upRes.statusMessage, upRes.headers);
      upRes.pipe(res);
    });
    out.on('error', () => res.destroy());
    res.on('close', () => { if (!res.writableFinished) out.destroy(); });
    // Flow control: paused while the upstream is full, or (slowed uploads) until the bytes
    // seen so far are due at `bytesPerSec`.
    const start = Date.now();
    let full = false;
    let waitUntil = 0;
    const maybeResume = () => {
      if (full) return; // 'drain' calls again
      const wait = waitUntil - Date.now();
      if (wait > 0) setTimeout(maybeResume, wait + 1); // timers may fire a little early
      else req.resume();
    };
    req.on('data', (chunk) => {
      seen += chunk.length;
      if (s) s.bytes += chunk.length;
      if (!out.write(chunk)) { full = true; req.pause(); }
      if (bytesPerSec > 0 && s) {
        waitUntil = start + (seen / bytesPerSec) * 1000;
        if (Date.now() < waitUntil) { req.pause(); setTimeout(maybeResume, waitUntil - Date.now() + 1); }
      }
    });
    out.on('drain', () => { full = false; maybeResume(); });
    req.on('end', () => {
      if (s && (Number.isNaN(length) || seen === length)) s.complete += 1;
      out.end();
    });
    req.on('error', () => out.destroy());
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = (k, d) => { const i = process.argv.indexOf(k); return i > 0 ? process.argv[i + 1] : d; };
  const upstream = process.argv.flatMap((a, i) => (a === '--upstream' ? [process.argv[i + 1]] : []));
  if (!upstream.length) {
    console.error('usage: node tests/wire-proxy.mjs --upstream URL [--upstream URL2 ...] [--port 0] [--bytes-per-sec N]');
    process.exit(2);
  }
  const server = await startWireProxy({ upstream, port: Number(arg('--port', 0)), bytesPerSec: Number(arg('--bytes-per-sec', 0)) });
  console.log(`wire proxy on http://127.0.0.1:${server.address().port} -> ${upstream.join(', ')}`);
}
