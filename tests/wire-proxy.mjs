// A loopback HTTP proxy in front of a protocol server that counts what crosses the wire:
// for every upload (`POST <root>/media/assets`, and each chunk of a resumable upload,
// `PATCH <root>/media/uploads/<id>`) it records, per asset id, how many request bodies
// started and how many body bytes it received, as they stream; for every download
// (`GET <root>/media/assets/<id>`) the response bytes it passed on. Tests ask
//   GET /__wire/uploads?id=<asset id>   ->  { "bodies": n, "bytes": n, "complete": n, "open": n, "firstAt": ms }
//   GET /__wire/downloads?id=<asset id> ->  { "bodies": n, "bytes": n, "complete": n, "starts": [n], "startedAt": [ms], "sent": [n] }
// (per request: where it started, when, and the bytes passed on)
//   GET /__wire/preflights                ->  { "count": n, "paths": { path: n } }  (CORS preflights: OPTIONS requests)
// ("complete": bodies that reached their Content-Length or their end), so "sent once" is
// measured at the network, not inferred from a server that deduplicates by id.
// A test can also cut a transfer for real: `POST /__wire/cut?id=<id>&dir=upload|download&at=<n>`
// arms a one-shot fault that destroys both connections of the request that carries the
// asset's n-th byte (counted over all its requests), as a dropped network would. With
// `&hold=1` (downloads) the bytes up to the cut are sent and the response then stalls, open,
// until `POST /__wire/release?id=<id>&dir=download` ends it short (the downloads report says
// `"held": true` meanwhile): a test can let the client take in every byte before the network
// drops, instead of racing the browser, which may discard what its buffers hold at a break.
// Optionally slows upload bodies (`bytesPerSec`) and download bodies (`downloadBytesPerSec`),
// so a test can act while one is verifiably in flight, and spreads requests round-robin over several upstreams (a load balancer in
// front of several server instances). Only ever listens on 127.0.0.1.
//   node tests/wire-proxy.mjs --upstream http://127.0.0.1:8787 [--upstream URL2 ...] [--port 0] [--bytes-per-sec N]
import http from 'node:http';
import { pathToFileURL } from 'node:url';

export function startWireProxy({ upstream, port = 0, bytesPerSec = 0, downloadBytesPerSec = 0 }) {
  const ups = [upstream].flat().map((u) => new URL(u));
  let turn = 0;
  const counts = { upload: new Map(), download: new Map() };
  const stats = (dir, id) => {
    const m = counts[dir];
    if (!m.has(id)) m.set(id, { bodies: 0, bytes: 0, complete: 0, open: 0 });
    return m.get(id);
  };
  const cuts = new Map(); // `${dir}:${id}` -> byte count at which to drop the connection
  const holds = new Set(); // cuts (keys of `cuts`) that stall until released
  const held = new Map(); // `${dir}:${id}` -> ends that held response
  let preflights = 0;
  const preflightPaths = {};
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://proxy');
    const cors = { 'content-type': 'application/json', 'access-control-allow-origin': '*' };
    const wireStats = /^\/__wire\/(uploads|downloads)$/.exec(url.pathname);
    if (wireStats) {
      const id = url.searchParams.get('id') ?? '';
      const m = counts[wireStats[1] === 'uploads' ? 'upload' : 'download'];
      res.writeHead(200, cors);
      res.end(JSON.stringify(m.get(id) ?? { bodies: 0, bytes: 0, complete: 0, open: 0 }));
      return;
    }
    if (url.pathname === '/__wire/preflights') {
      res.writeHead(200, cors);
      res.end(JSON.stringify({ count: preflights, paths: preflightPaths }));
      return;
    }
    if (req.method === 'OPTIONS') {
      preflights += 1;
      preflightPaths[url.pathname] = (preflightPaths[url.pathname] ?? 0) + 1;
    }
    if (url.pathname === '/__wire/cut') {
      const id = url.searchParams.get('id') ?? '';
      const dir = url.searchParams.get('dir');
      const at = Number(url.searchParams.get('at'));
      if (!id || !['upload', 'download'].includes(dir) || !(at >= 0)) {
        res.writeHead(400, cors);
        res.end(JSON.stringify({ error: 'want ?id=&dir=upload|download&at=<bytes>' }));
        return;
      }
      cuts.set(`${dir}:${id}`, at);
      if (url.searchParams.get('hold') === '1') holds.add(`${dir}:${id}`);
      res.writeHead(200, cors);
      res.end('{}');
      return;
    }
    if (url.pathname === '/__wire/release') {
      const key = `${url.searchParams.get('dir')}:${url.searchParams.get('id') ?? ''}`;
      const end = held.get(key);
      held.delete(key);
      res.writeHead(end ? 200 : 409, cors);
      res.end(end ? '{}' : JSON.stringify({ error: 'no response is held for that id' }));
      end?.();
      return;
    }
    const chunkOf = req.method === 'PATCH' && /\/media\/uploads\/([^/]+)$/.exec(url.pathname);
    const isPost = req.method === 'POST' && /\/media\/assets$/.test(url.pathname) && req.headers['x-asset-id'];
    const uploadId = chunkOf ? decodeURIComponent(chunkOf[1]) : isPost ? String(req.headers['x-asset-id']) : null;
    const downloadOf = req.method === 'GET' && /\/media\/assets\/([^/]+)$/.exec(url.pathname);
    const s = uploadId ? stats('upload', uploadId) : null;
    if (s) {
      s.bodies += 1;
      // Bodies still arriving: one ends with its request (whole, cut or aborted).
      s.open += 1;
      let ended = false;
      const end = () => { if (!ended) { ended = true; s.open -= 1; } };
      req.once('end', end);
      req.once('error', end);
      req.once('close', end);
    }
    const d = downloadOf ? stats('download', decodeURIComponent(downloadOf[1])) : null;
    // Where each download request started (`Range: bytes=<n>-`; 0 without one).
    if (d) {
      (d.starts ??= []).push(Number(/^bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1] ?? 0));
      (d.startedAt ??= []).push(Date.now());
      (d.sent ??= []).push(0);
    }
    const slot = d ? d.sent.length - 1 : -1;
    const downloadId = downloadOf ? decodeURIComponent(downloadOf[1]) : null;
    // Drops both connections once `key`'s armed byte count is reached: returns true if so.
    const cutAt = (key, total) => {
      const at = cuts.get(key);
      if (at === undefined || total < at) return false;
      cuts.delete(key);
      req.socket.destroy();
      out.destroy();
      return true;
    };
    const length = Number(req.headers['content-length'] ?? NaN);
    let seen = 0;
    const up = ups[turn++ % ups.length];
    const out = http.request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      res.writeHead(upRes.statusCode, upRes.statusMessage, upRes.headers);
      if (!d || upRes.statusCode >= 300) {
        upRes.pipe(res);
        return;
      }
      d.bodies += 1;
      const want = Number(upRes.headers['content-length'] ?? NaN);
      let sent = 0;
      const began = Date.now();
      let cutDone = false;
      let draining = false;
      upRes.on('data', (chunk) => {
        if (downloadBytesPerSec > 0) {
          const due = began + ((sent + chunk.length) / downloadBytesPerSec) * 1000;
          if (due > Date.now()) { upRes.pause(); setTimeout(() => { if (!draining) upRes.resume(); }, due - Date.now()); }
        }
        // Pass on at most up to the cut, then drop the connection.
        if (cutDone) return;
        const at = cuts.get(`download:${downloadId}`);
        const room = at === undefined ? chunk.length : Math.max(0, at - d.bytes);
        const part = room < chunk.length ? chunk.subarray(0, room) : chunk;
        sent += part.length;
        d.bytes += part.length;
        d.sent[slot] += part.length;
        if (part.length < chunk.length) {
          // The cut: the bytes up to it reach the client (flushed, then FIN), the rest never
          // does; the body ends short of its Content-Length, which the client sees as a broken
          // connection. (A reset instead would also discard what sits in socket buffers, so
          // the client's loss could not be measured here.)
          const key = `download:${downloadId}`;
          cuts.delete(key);
          cutDone = true;
          upRes.destroy();
          out.destroy();
          if (holds.delete(key)) {
            res.write(part);
            d.held = true;
            held.set(key, () => { d.held = false; res.socket?.end(); });
          } else {
            res.write(part, () => res.socket?.end());
          }
          return;
        }
        if (part.length && !res.write(part) && !draining) {
          draining = true;
          upRes.pause();
          res.once('drain', () => { draining = false; upRes.resume(); });
        }
      });
      upRes.on('end', () => {
        if (cutDone) return;
        if (Number.isNaN(want) || sent === want) d.complete += 1;
        res.end();
      });
    });
    // One line per counted transfer on stdout (the proxy's log): what a failed test did.
    if (s || d) {
      const t0 = Date.now();
      res.on('close', () => console.log(`${new Date().toISOString()} ${req.method} ${url.pathname} ${req.headers['upload-offset'] ?? req.headers.range ?? ''} -> ${res.statusCode} in:${seen} ${d ? `out:${d.bytes}` : ''} ${res.writableFinished ? '' : 'CUT'} ${Date.now() - t0}ms`));
    }
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
      if (s) { s.bytes += chunk.length; s.firstAt ??= Date.now(); }
      if (s && cutAt(`upload:${uploadId}`, s.bytes)) return;
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
