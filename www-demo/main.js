// The demo canvas app: imports files into the local library and draws them, offline.
// Uses the built package (pkg/, produced by `npm run build`) exactly as an app would.
import init, { importFileToLibrary, listAssets, getAssetFile, defaultLibrary, estimate } from '../pkg/web/opfs_media.js';

const $ = (id) => document.getElementById(id);
const urls = new Map();

async function render() {
  const assets = await listAssets();
  const list = $('list');
  list.replaceChildren();
  for (const a of assets) {
    const li = document.createElement('li');
    li.dataset.id = a.id;
    const img = document.createElement('img');
    if (a.type.startsWith('image/')) {
      if (!urls.has(a.id)) urls.set(a.id, URL.createObjectURL(await getAssetFile(a.id)));
      img.src = urls.get(a.id);
    }
    const name = document.createElement('span');
    name.textContent = `${a.name} (${Math.ceil(a.size / 1024)} KB)`;
    const badge = document.createElement('span');
    badge.className = `badge ${a.syncStatus}`;
    badge.textContent = a.syncStatus;
    li.append(img, name, badge);
    li.onclick = () => draw(a.id);
    list.append(li);
  }
  const info = await estimate().catch(() => null);
  $('status').textContent = `${assets.length} item(s)` + (info ? ` · ${(info.usage / 1e6).toFixed(1)} MB used of ${(info.quota / 1e9).toFixed(1)} GB · ${info.storage}` : '');
}

async function draw(id) {
  const bitmap = await createImageBitmap(await getAssetFile(id));
  const c = $('canvas'), ctx = c.getContext('2d');
  const scale = Math.min(c.width / bitmap.width, c.height / bitmap.height, 1);
  ctx.clearRect(0, 0, c.width, c.height);
  ctx.drawImage(bitmap, 0, 0, bitmap.width * scale, bitmap.height * scale);
  c.dataset.drawn = id;
}

async function importAll(files) {
  for (const f of files) {
    try {
      await importFileToLibrary(f);
    } catch (e) {
      $('status').textContent = `${e.name} (${e.code}): ${e.message}`;
    }
  }
}

await init();
const lib = await defaultLibrary();
lib.addEventListener('change', () => render());
$('pick').onchange = (e) => importAll([...e.target.files]);
const drop = $('drop');
drop.ondragover = (e) => { e.preventDefault(); drop.classList.add('over'); };
drop.ondragleave = () => drop.classList.remove('over');
drop.ondrop = (e) => { e.preventDefault(); drop.classList.remove('over'); importAll([...e.dataTransfer.files]); };
await render();
document.body.dataset.ready = 'true';

// The reference server (started by `npm run demo`). Sync arrives with MediaSyncService;
// until then the page only shows whether the server answers.
const API = new URLSearchParams(location.search).get('api') ?? `http://${location.hostname}:8787`;
fetch(`${API}/api/media/capabilities`).then((r) => r.json()).then((c) => {
  $('server').textContent = `server: ${c.protocol} v${c.versions.join(',')} at ${API}`;
}).catch(() => { $('server').textContent = `server: not reachable at ${API} (the library works offline)`; });
