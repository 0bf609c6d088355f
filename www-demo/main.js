// The demo canvas app: imports files into the local library and draws them, with no network
// needed; a dedicated worker (sync-worker.js) syncs the library with the reference server.
// Uses the built package (pkg/, produced by `npm run build`) exactly as an app would.
//
// URL parameters: `device` names the local library (a "new device" is a fresh one),
// `api` the server (default: port 8787 on this host), `user` the demo user.
import init, { MediaLibrary } from '../pkg/web/opfs_media.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const DEVICE = params.get('device') ?? 'default';
const API = params.get('api') ?? `http://${location.hostname}:8787`;
const USER = params.get('user') ?? 'demo';
const urls = new Map();
let lib;

const worker = new Worker(new URL('./sync-worker.js', import.meta.url), { type: 'module' });
const pendingDownloads = new Map();
worker.onmessage = (e) => {
  const m = e.data;
  if (m.type === 'progress') {
    $('sync').textContent = `sync: ${m.synced} synced · ${m.pending + m.syncing} to go · ${m.error} failed`;
    // Bytes: a large upload moves chunk by chunk, and resumes where it stopped.
    const moving = m.transfers.filter((t) => t.loaded < t.total);
    $('transfer').hidden = moving.length === 0;
    if (moving.length) {
      const loaded = moving.reduce((n, t) => n + t.loaded, 0);
      const total = moving.reduce((n, t) => n + t.total, 0);
      $('bytes').value = loaded / total;
      const mb = (n) => (n / 1e6).toFixed(1);
      $('bytes-text').textContent = moving.map((t) => `${t.direction === 'upload' ? '↑' : '↓'} ${mb(t.loaded)} / ${mb(t.total)} MB`).join(' · ');
    }
  } else if (m.type === 'error') {
    $('sync').textContent = `sync: ${m.name} (${m.code}) ${m.message ?? ''}`;
    pendingDownloads.get(m.id)?.reject(new Error(m.message));
  } else if (m.type === 'downloaded') {
    pendingDownloads.get(m.id)?.resolve();
  } else if (m.type === 'freed') {
    $('sync').textContent = `freed the local copies of ${m.count} synced item(s)`;
  }
};

function download(id) {
  return new Promise((resolve, reject) => {
    pendingDownloads.set(id, { resolve, reject });
    worker.postMessage({ type: 'download', id });
  }).finally(() => pendingDownloads.delete(id));
}

let rendering = Promise.resolve();
const render = () => (rendering = rendering.then(renderNow, renderNow));

async function renderNow() {
  const assets = await lib.list();
  const pinned = new Set(await lib.pinnedIds());
  // A thumbnail's object URL points at the local file: drop it when that file goes (deleted,
  // or its local copy freed), or a later download would show the stale, unreadable one.
  const local = new Set(assets.filter((a) => a.storage !== 'remote').map((a) => a.id));
  for (const [id, url] of urls) if (!local.has(id)) { URL.revokeObjectURL(url); urls.delete(id); }
  const list = $('list');
  const rows = [];
  for (const a of assets) {
    const li = document.createElement('li');
    li.dataset.id = a.id;
    li.dataset.storage = a.storage;
    // A placeholder for items whose bytes are on the server only (an <img> without a source
    // renders as a broken image).
    const img = document.createElement(a.storage === 'remote' ? 'span' : 'img');
    img.className = 'thumb';
    if (a.storage === 'remote') {
      img.title = 'on the server: downloads when drawn';
      img.textContent = '☁';
      img.classList.add('remote');
    } else if (a.type.startsWith('image/')) {
      if (!urls.has(a.id)) urls.set(a.id, URL.createObjectURL(await lib.getFile(a.id)));
      img.src = urls.get(a.id);
    }
    const name = document.createElement('span');
    name.textContent = `${a.name} (${Math.ceil(a.size / 1024)} KB)${a.storage === 'remote' ? ' ☁' : ''}`;
    const badge = document.createElement('span');
    badge.className = `badge ${a.syncStatus}`;
    badge.textContent = a.syncStatus;
    badge.title = a.syncError ? `${a.syncError.status} ${a.syncError.code}` : '';
    const pin = document.createElement('button');
    pin.className = `pin${pinned.has(a.id) ? ' on' : ''}`;
    pin.textContent = '📌';
    pin.title = pinned.has(a.id) ? 'pinned: never evicted (click to unpin)' : 'pin: keep on this device';
    pin.onclick = async (e) => { e.stopPropagation(); await (pinned.has(a.id) ? lib.unpin(a.id) : lib.pin(a.id)); };
    const del = document.createElement('button');
    del.className = 'delete';
    del.textContent = '✕';
    del.title = 'delete (everywhere, once synced)';
    del.onclick = async (e) => { e.stopPropagation(); await lib.delete(a.id); };
    li.append(img, name, badge, pin, del);
    li.onclick = () => draw(a.id).catch((err) => { $('status').textContent = `${err.name}: ${err.message}`; });
    rows.push(li);
  }
  list.replaceChildren(...rows);
  const info = await lib.estimate().catch(() => null);
  $('status').textContent = `${assets.length} item(s), ${local.size} on this device` + (info ? ` · ${(info.usage / 1e6).toFixed(1)} MB used of ${(info.quota / 1e9).toFixed(1)} GB · ${info.storage}` : '');
  const mb = (b) => `${(b / 1e6).toFixed(1)} MB`;
  $('local').textContent = info
    ? `local: ${mb(info.localBytes)}${info.budget == null ? ' (no budget)' : ` of ${mb(info.budget)} budget`} · evictable ${mb(info.evictableBytes)} · pinned ${mb(info.pinnedBytes)}`
    : '';
}

async function draw(id) {
  let asset = await lib.get(id);
  if (asset.storage === 'remote') {
    $('status').textContent = `downloading ${asset.name}…`;
    await download(id);
    asset = await lib.get(id);
  }
  const bitmap = await createImageBitmap(await lib.getFile(id));
  const c = $('canvas'), ctx = c.getContext('2d');
  const scale = Math.min(c.width / bitmap.width, c.height / bitmap.height, 1);
  ctx.clearRect(0, 0, c.width, c.height);
  ctx.drawImage(bitmap, 0, 0, bitmap.width * scale, bitmap.height * scale);
  c.dataset.drawn = id;
}

async function importAll(files) {
  for (const f of files) {
    try {
      await lib.importFile(f);
    } catch (e) {
      $('status').textContent = `${e.name} (${e.code}): ${e.message}`;
    }
  }
}

await init();
// The local budget (MB), kept per device; set in the page and in the sync worker, which
// reads and downloads too (each context leases what it reads).
const BUDGET_KEY = `opfs-media-demo-budget:${DEVICE}`;
const budgetMb = () => { const v = localStorage.getItem(BUDGET_KEY); return v === null || v === '' ? null : Number(v); };
const budgetSpec = () => (budgetMb() == null ? null : { maxBytes: budgetMb() * 1e6 });
lib = await MediaLibrary.open({ name: DEVICE, ...(budgetSpec() ? { budget: budgetSpec() } : {}) });
$('budget').value = budgetMb() ?? '';
$('budget').onchange = async (e) => {
  localStorage.setItem(BUDGET_KEY, e.target.value);
  worker.postMessage({ type: 'budget', budget: budgetSpec() });
  await lib.setBudget(budgetSpec()).catch((err) => { $('status').textContent = `${err.name}: ${err.message}`; });
  render();
};
lib.addEventListener('evict', (e) => {
  const d = e.detail;
  $('sync').textContent = `evicted the local copies of ${d.evicted.length} synced item(s), ${(d.bytes / 1e6).toFixed(1)} MB (${d.reason})`;
  render();
});
$('device').textContent = `device "${DEVICE}" · user "${USER}"`;
// Fires for this page's imports and, over a BroadcastChannel, for the worker's sync writes.
lib.addEventListener('change', () => render());
$('pick').onchange = (e) => importAll([...e.target.files]);
const drop = $('drop');
drop.ondragover = (e) => { e.preventDefault(); drop.classList.add('over'); };
drop.ondragleave = () => drop.classList.remove('over');
drop.ondrop = (e) => { e.preventDefault(); drop.classList.remove('over'); importAll([...e.dataTransfer.files]); };
$('offline').onchange = (e) => {
  worker.postMessage({ type: 'offline', on: e.target.checked });
  $('sync').textContent = e.target.checked ? 'sync: paused (simulated offline)' : 'sync: resuming…';
};
$('free').onclick = () => worker.postMessage({ type: 'free' });
$('newdevice').onclick = () => {
  const url = new URL(location.href);
  url.searchParams.set('device', `device-${Math.random().toString(36).slice(2, 8)}`);
  window.open(url, '_blank');
};
await render();
worker.postMessage({ type: 'init', api: API, library: DEVICE, user: USER, budget: budgetSpec() });
document.body.dataset.ready = 'true';

fetch(`${API}/api/media/capabilities`).then((r) => r.json()).then((c) => {
  $('server').textContent = `server: ${c.protocol} v${c.versions.join(',')} at ${API}`;
}).catch(() => { $('server').textContent = `server: not reachable at ${API} (the library works offline)`; });
