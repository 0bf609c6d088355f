// Installs the packed tarball into a fresh Vite app and a TypeScript project (copies of
// tests/package/*-app under target/package/), builds them, and runs the Vite build in
// headless Chromium: the page and a module worker each import a file and read it back.
//   node tests/package/run.mjs <path to opfs-media-x.y.z.tgz>
import { execFileSync, spawn } from 'node:child_process';
import net from 'node:net';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serve } from '../../scripts/serve.mjs';
import { launchChromium } from '../../scripts/chromium.mjs';
import { SERVER_BIN, startReferenceServer } from '../lib/reference-server.mjs';

const tgz = resolve(process.argv[2] ?? '');
const work = resolve('target/package');
const npm = (cwd, ...args) => execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, stdio: 'inherit' });

function fresh(name) {
  const dir = `${work}/${name}`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  cpSync(resolve(`tests/package/${name}`), dir, { recursive: true });
  return dir;
}

test('the tarball type-checks in a TypeScript project', () => {
  const dir = fresh('ts-app');
  npm(dir, 'install', tgz, 'typescript@5.9.3');
  execFileSync(`${dir}/node_modules/.bin/tsc`, ['-p', dir], { stdio: 'inherit' });
});

async function check(url) {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(url);
    await page.waitForFunction(() => window.__result, null, { timeout: 60_000 });
    const result = await page.evaluate(() => window.__result);
    assert.equal(result.error, undefined, result.error);
    for (const where of ['page', 'worker']) {
      const r = result[where];
      assert.equal(r.error, undefined, `${where}: ${r.error}`);
      assert.deepEqual({ where: r.where, size: r.size, same: r.same, listed: r.listed, typedError: r.typedError, status: r.status },
        { where, size: 200000, same: true, listed: 1, typedError: 'InvalidInputError/MALFORMED_ID', status: 'pending' });
      assert.equal(r.storage, 'opfs');
    }
    // The Excalidraw recipe: saved once, loaded back identical, scene references found.
    assert.deepEqual(result.excalidraw, { stored: 1, sameAsset: true, resaved: true, ids: ['f1'], loaded: { id: 'f1', mimeType: 'image/png', identical: true } });
    // The worker also loads the `opfs-media/sync` entry (its own .wasm) and gets typed errors.
    assert.deepEqual(result.worker.sync, { exported: true, badOptions: 'InvalidInputError/INVALID_OPTIONS', sameLibrary: 1 });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
}

let viteDir;

test('the tarball works in a Vite production build, page and module worker, with no configuration', async () => {
  viteDir = fresh('vite-app');
  npm(viteDir, 'install', tgz, `vite@${process.env.VITE_VERSION ?? '7.3.8'}`);
  execFileSync(`${viteDir}/node_modules/.bin/vite`, ['build', '--logLevel', 'warn'], { cwd: viteDir, stdio: 'inherit' });
  const server = await serve({ root: `${viteDir}/dist` });
  try {
    await check(`http://127.0.0.1:${server.address().port}/`);
  } finally {
    server.close();
  }
});

test('the Vite dev server works with the one documented line (optimizeDeps.exclude)', async () => {
  // Vite's dependency pre-bundling moves the JS away from its .wasm, so `new URL(..., import.meta.url)`
  // misses; excluding the package from pre-bundling is the documented fix (pkg README).
  writeFileSync(`${viteDir}/vite.config.js`, "export default { optimizeDeps: { exclude: ['opfs-media', 'opfs-media/sync'] } };\n");
  const port = 5173 + Math.floor(Math.random() * 500);
  const dev = spawn(`${viteDir}/node_modules/.bin/vite`, ['--port', String(port), '--strictPort', '--host', '127.0.0.1'], { cwd: viteDir, stdio: 'ignore' });
  try {
    for (let i = 0; i < 100; i++) {
      if (await fetch(`http://127.0.0.1:${port}/`).then((r) => r.ok, () => false)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await check(`http://127.0.0.1:${port}/`);
  } finally {
    dev.kill();
  }
});

// The reference server (built by `cargo build -p opfs-media-server`, as scripts/test.sh does
// before this runs) with HMAC tokens, on a free loopback port; `token` is alice's session.
async function referenceServer() {
  assert.ok(existsSync(SERVER_BIN), `${SERVER_BIN} is missing: run cargo build -p opfs-media-server`);
  const secret = 'seed-example-secret-0123456789';
  const server = await startReferenceServer(['--auth', 'hmac', '--secret', secret], { cwd: mkdtempSync(`${tmpdir()}/opfs-seed-`) });
  const token = execFileSync(SERVER_BIN, ['--auth', 'hmac', '--secret', secret, 'mint-token', 'alice']).toString().trim();
  return { origin: server.url, token, close: () => server.proc.kill() };
}

async function waitHttp(url) {
  for (let i = 0; i < 200; i++) {
    if (await fetch(url).then((r) => r.ok, () => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no answer from ${url}`);
}

// Opens the seed app at `appOrigin` (which forwards /api to `api`) with alice's session cookie
// and checks what the example did, in the page and on the server.
async function checkSeed(appOrigin, api) {
  const browser = await launchChromium();
  try {
    const context = await browser.newContext();
    await context.addCookies([{ name: 'opfs_media_session', value: api.token, url: appOrigin }]);
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const direct = [];
    page.on('request', (r) => { if (!r.url().startsWith(appOrigin)) direct.push(r.url()); });
    await page.goto(`${appOrigin}/?user=alice`);
    await page.waitForFunction(() => window.__result, null, { timeout: 60_000 });
    const r = await page.evaluate(() => window.__result);
    assert.equal(r.error, undefined, r.error);
    assert.deepEqual(
      { syncStatus: r.syncStatus, cloudId: r.cloudId, cloudUrl: r.cloudUrl, userId: r.userId, identical: r.identical, laterStatus: r.laterStatus },
      { syncStatus: 'synced', cloudId: r.id, cloudUrl: `${appOrigin}/api/media/assets/${r.id}`, userId: 'alice', identical: true, laterStatus: 'synced' });
    assert.deepEqual(direct, [], 'every request stayed on the app origin');
    // The server has both, as alice (it knows her only from the cookie).
    const listed = await (await fetch(`${api.origin}/api/media/assets?limit=1000`, { headers: { authorization: `Bearer ${api.token}` } })).json();
    const ids = listed.assets.map((a) => a.id);
    assert.ok(ids.includes(r.id) && ids.includes(r.later), `server lists ${ids}`);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
}

test("the seed's example runs as written: apiBaseUrl '/api' behind the app's own origin, a session cookie, async getUserId, uploadAsset(asset)", async () => {
  const api = await referenceServer();
  const dir = fresh('seed-app');
  const env = { ...process.env, OPFS_MEDIA_API: api.origin };
  const vite = (...args) => spawn(`${dir}/node_modules/.bin/vite`, [...args, '--strictPort', '--host', '127.0.0.1'], { cwd: dir, env, stdio: 'ignore' });
  // A free ephemeral port from the system: a random pick in 5800-7800 hit 6000 once (X11, a
  // port the Fetch standard blocks, so node's fetch never reached vite: 'no answer').
  const port = () => new Promise((ok) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => ok(p)); });
  });
  try {
    npm(dir, 'install', tgz, `vite@${process.env.VITE_VERSION ?? '7.3.8'}`);
    execFileSync(`${dir}/node_modules/.bin/vite`, ['build', '--logLevel', 'warn'], { cwd: dir, env, stdio: 'inherit' });
    for (const [label, args] of [['production build (vite preview, preview.proxy)', ['preview']], ['dev server (server.proxy)', []]]) {
      const p = await port();
      const proc = vite(...args, '--port', String(p));
      try {
        await waitHttp(`http://127.0.0.1:${p}/`);
        await checkSeed(`http://127.0.0.1:${p}`, api).catch((e) => { e.message = `${label}: ${e.message}`; throw e; });
      } finally {
        proc.kill();
      }
    }
  } finally {
    api.close();
  }
});

// Builds tests/package/<name> against the tarball with `packages`, serves its production
// build and runs `fn` with a 1000x700 page; any uncaught page error fails the test except
// failed fetches: tldraw and Excalidraw load fonts (tldraw also translations) from their
// CDNs, which this machine cannot reach by design.
async function withCanvasApp(name, packages, fn) {
  const dir = fresh(name);
  npm(dir, 'install', tgz, ...packages, 'react@19.2.1', 'react-dom@19.2.1', `vite@${process.env.VITE_VERSION ?? '7.3.8'}`);
  execFileSync(`${dir}/node_modules/.bin/vite`, ['build', '--logLevel', 'warn'], { cwd: dir, stdio: 'inherit' });
  const server = await serve({ root: `${dir}/dist` });
  const origin = `http://127.0.0.1:${server.address().port}`;
  const browser = await launchChromium();
  try {
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => String(e).includes('Failed to fetch') || errors.push(String(e)));
    await fn({ origin, context, page });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    server.close();
  }
}

test('tldraw with opfs-media/tldraw as its asset store: drop an image, reload offline, it still renders', () =>
  withCanvasApp('tldraw-app', ['tldraw@5.4.2'], async ({ origin, context, page }) => {
    await page.goto(`${origin}/`);
    await page.waitForFunction(() => window.editor, null, { timeout: 60_000 });
    // "Drop" an image the way tldraw handles a drop: as external file content.
    const src = await page.evaluate(async () => {
      const c = new OffscreenCanvas(120, 80);
      const g = c.getContext('2d');
      g.fillStyle = '#d22'; g.fillRect(0, 0, 60, 80); g.fillStyle = '#22d'; g.fillRect(60, 0, 60, 80);
      const file = new File([await c.convertToBlob({ type: 'image/png' })], 'dropped.png', { type: 'image/png' });
      await window.editor.putExternalContent({ type: 'files', files: [file], point: { x: 300, y: 250 } });
      for (let i = 0; i < 100; i++) {
        const asset = window.editor.getAssets().find((a) => a.type === 'image');
        if (asset?.props.src) return asset.props.src;
        await new Promise((r) => setTimeout(r, 50));
      }
      return null;
    });
    assert.match(src ?? '', /^https:\/\/opfs-media\.invalid\/[0-9a-f-]{36}$/, 'the document keeps a reference, not a data URL');
    const id = src.slice('https://opfs-media.invalid/'.length);
    assert.equal(await page.evaluate(async (i) => (await window.library.get(i)).name, id), 'dropped.png');
    const rendered = () => page.waitForFunction(() => [...document.querySelectorAll('img')].some((img) => img.src.startsWith('blob:') && img.complete && img.naturalWidth === 120), null, { timeout: 30_000 });
    await rendered();
    mkdirSync('target/e2e', { recursive: true });
    await page.screenshot({ path: 'target/e2e/tldraw-dropped.png' });

    // Reload with every request but the app's own refused: the image comes from OPFS.
    // (tldraw saves the document to IndexedDB shortly after a change; give it that moment.)
    await page.waitForTimeout(1500);
    await context.route('**/*', (route) => (route.request().url().startsWith(origin) ? route.continue() : route.abort()));
    await page.reload();
    await page.waitForFunction(() => window.editor, null, { timeout: 60_000 });
    await page.waitForFunction(() => window.editor.getCurrentPageShapes().some((s) => s.type === 'image'), null, { timeout: 10_000 });
    await rendered();
    await page.screenshot({ path: 'target/e2e/tldraw-after-reload.png' });

    // Deleting the shape and its asset removes the media from the library.
    await page.evaluate(() => {
      const editor = window.editor;
      editor.deleteShapes(editor.getCurrentPageShapes().map((s) => s.id));
      editor.deleteAssets(editor.getAssets().map((a) => a.id));
    });
    const gone = await page.evaluate(async (i) => {
      for (let n = 0; n < 100; n++) {
        try { await window.library.get(i); } catch (e) { return e.name; }
        await new Promise((r) => setTimeout(r, 50));
      }
      return 'still there';
    }, id);
    assert.equal(gone, 'NotFoundError', 'tldraw removing the asset deleted it from the library');
  }));

test('Excalidraw with opfs-media/excalidraw keeping its files: drop an image, reload offline, it still renders', () =>
  withCanvasApp('excalidraw-app', ['@excalidraw/excalidraw@0.18.1'], async ({ origin, context, page }) => {
    const ready = () => page.waitForFunction(() => window.excalidrawAPI && window.filesLoaded, null, { timeout: 60_000 });
    await page.goto(`${origin}/`);
    await ready();

    // Drop a 120x80 red|blue PNG on the canvas, as a user dragging a file in would.
    await page.evaluate(async () => {
      const c = new OffscreenCanvas(120, 80);
      const g = c.getContext('2d');
      g.fillStyle = '#d22'; g.fillRect(0, 0, 60, 80); g.fillStyle = '#22d'; g.fillRect(60, 0, 60, 80);
      const file = new File([await c.convertToBlob({ type: 'image/png' })], 'dropped.png', { type: 'image/png' });
      const dataTransfer = new DataTransfer();
      dataTransfer.items.add(file);
      const target = document.querySelector('canvas.excalidraw__canvas.interactive') ?? document.querySelector('.excalidraw');
      target.dispatchEvent(new DragEvent('drop', { dataTransfer, clientX: 400, clientY: 300, bubbles: true, cancelable: true }));
    });
    // Reads the rendered canvas at an image element's left and right quarter (scene -> viewport).
    const colours = () => page.waitForFunction(() => {
      const api = window.excalidrawAPI;
      const el = api.getSceneElements().find((e) => e.type === 'image' && !e.isDeleted);
      if (!el) return false;
      const { scrollX, scrollY, zoom, offsetLeft, offsetTop } = api.getAppState();
      const canvas = document.querySelector('canvas.excalidraw__canvas.static');
      const dpr = canvas.width / canvas.clientWidth;
      const at = (fx) => {
        const x = ((el.x + el.width * fx + scrollX) * zoom.value) * dpr;
        const y = ((el.y + el.height / 2 + scrollY) * zoom.value) * dpr;
        return [...canvas.getContext('2d').getImageData(Math.round(x), Math.round(y), 1, 1).data.slice(0, 3)];
      };
      const [left, right] = [at(0.25), at(0.75)];
      const red = left[0] > 180 && left[2] < 80;
      const blue = right[2] > 180 && right[0] < 80;
      return red && blue ? { fileId: el.fileId, left, right, offsetLeft, offsetTop } : false;
    }, null, { timeout: 30_000 }).then((h) => h.jsonValue());
    const first = await colours();
    await page.waitForFunction((f) => window.savedFiles?.[f], first.fileId, { timeout: 30_000 });
    const assetId = await page.evaluate((f) => window.savedFiles[f], first.fileId);
    mkdirSync('target/e2e', { recursive: true });
    await page.screenshot({ path: 'target/e2e/excalidraw-dropped.png' });
    const stored = await page.evaluate(async () => (await window.library.list()).map((a) => ({ id: a.id, tags: a.tags, type: a.type })));
    assert.deepEqual(stored, [{ id: assetId, tags: [`excalidraw:${first.fileId}`], type: 'image/png' }], 'the file is stored once, tagged with its fileId');
    const scene = await page.evaluate(() => localStorage.getItem('opfs-media-check-scene'));
    assert.ok(!scene.includes('data:image'), 'the saved scene holds no file bytes');

    // Reload with every request but the app's own refused: the file comes back from OPFS.
    await context.route('**/*', (route) => (route.request().url().startsWith(origin) ? route.continue() : route.abort()));
    await page.reload();
    await ready();
    const after = await colours();
    assert.equal(after.fileId, first.fileId);
    await page.screenshot({ path: 'target/e2e/excalidraw-after-reload.png' });
    assert.equal(await page.evaluate(async () => (await window.library.list()).length), 1, 'reloading stored nothing again');
  }));
