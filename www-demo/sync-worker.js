// The demo's sync worker: MediaSyncService runs here, off the main thread. The page imports
// into the same library; this worker hears of it (BroadcastChannel) and uploads, pulls what
// other devices added, and downloads on request. Messages in: init, offline, syncNow,
// download, free, budget. Messages out: status, progress, error, downloaded.
import init, { MediaLibrary, MediaSyncService } from '../pkg/sync/opfs_media.js';

let sync = null;
let lib = null;
const post = (m) => self.postMessage(m);

self.onmessage = async (e) => {
  const m = e.data;
  try {
    if (m.type === 'init') {
      await init();
      // The same library instance the service uses (one per name in this realm), with the budget.
      lib = await MediaLibrary.open({ name: m.library, ...(m.budget ? { budget: m.budget } : {}) });
      sync = new MediaSyncService({
        apiBaseUrl: m.api,
        library: m.library,
        getUserId: () => m.user,
        getAuthToken: () => `dev:${m.user}`, // the reference server's demo auth (dev-insecure)
        autoSync: true,
        pollIntervalMs: 2000,
        retry: { baseDelayMs: 500, maxDelayMs: 4000 },
      });
      sync.addEventListener('progress', (ev) => post({ type: 'progress', ...ev.detail }));
      sync.addEventListener('error', (ev) => post({ type: 'error', ...ev.detail }));
      post({ type: 'ready' });
    } else if (m.type === 'offline') {
      if (m.on) sync.stop(); else sync.start();
    } else if (m.type === 'syncNow') {
      await sync.syncNow();
    } else if (m.type === 'download') {
      await sync.downloadAsset(m.id);
      post({ type: 'downloaded', id: m.id });
    } else if (m.type === 'budget') {
      await lib.setBudget(m.budget);
    } else if (m.type === 'free') {
      post({ type: 'freed', count: await sync.freeLocalCopies() });
    }
  } catch (err) {
    post({ type: 'error', id: m.id, name: err.name, code: err.code, message: err.message });
  }
};
