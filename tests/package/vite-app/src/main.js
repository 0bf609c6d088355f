import { roundtrip } from './roundtrip.js';
import { excalidrawCheck } from './excalidraw-check.js';

const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
const fromWorker = new Promise((resolve) => { worker.onmessage = (e) => resolve(e.data); worker.onerror = (e) => resolve({ error: String(e.message) }); });
Promise.all([roundtrip('page'), fromWorker])
  .then(async ([page, worker]) => { window.__result = { page, worker, excalidraw: await excalidrawCheck() }; })
  .catch((e) => { window.__result = { error: String(e?.stack ?? e) }; })
  .finally(() => { document.getElementById('out').textContent = JSON.stringify(window.__result, null, 1); });
