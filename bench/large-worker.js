// The large-file bench's dedicated worker (bench/large-run.mjs drives it through
// bench/large.html): the sync service uploading one big file as deployed, in a worker,
// against a plain `fetch` of the same file in one request from the same worker.
import init, { MediaLibrary, MediaSyncService } from '../pkg/sync/opfs_media.js';

const ready = init();
const LIB = 'largebench';

// Writes `mb` MiB of non-repeating bytes to an OPFS scratch file in 4 MiB steps (memory stays
// flat) and returns it as a disk-backed File: the source of the import.
async function source(mb) {
  const root = await navigator.storage.getDirectory();
  const handle = await root.getFileHandle('largebench-source.bin', { create: true });
  const sync = await handle.createSyncAccessHandle();
  try {
    sync.truncate(0);
    const step = new Uint8Array(4 * 1024 * 1024);
    const words = new Uint32Array(step.buffer);
    let x = 2463534242;
    for (let at = 0; at < mb * 1024 * 1024; at += step.length) {
      for (let i = 0; i < words.length; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; words[i] = x; }
      sync.write(step, { at });
    }
    sync.flush();
  } finally {
    sync.close();
  }
  return new File([await handle.getFile()], 'film.mp4', { type: 'video/mp4' });
}

async function clear(lib) {
  for (const a of await lib.list()) await lib.delete(a.id);
}

const ops = {
  async prepare({ mb }) {
    await ready;
    const lib = await MediaLibrary.open({ name: LIB, storage: 'opfs' });
    await clear(lib);
    const file = await source(mb);
    return { size: file.size };
  },
  // Imports the source and syncs it with the service; reports timings and byte progress.
  async library({ api, user }) {
    await ready;
    const lib = await MediaLibrary.open({ name: LIB, storage: 'opfs' });
    await clear(lib);
    const root = await navigator.storage.getDirectory();
    const src = await (await root.getFileHandle('largebench-source.bin')).getFile();
    const t0 = performance.now();
    const rec = await lib.importFile(new File([src], 'film.mp4', { type: 'video/mp4' }));
    const importMs = performance.now() - t0;
    const sync = new MediaSyncService({
      apiBaseUrl: api, getUserId: () => user, getAuthToken: () => `dev:${user}`,
      autoSync: false, library: LIB, timeoutMs: 600000,
    });
    const progress = [];
    sync.addEventListener('progress', (e) => {
      const t = e.detail.transfers.find((x) => x.id === rec.id);
      if (t) progress.push([performance.now(), t.loaded]);
    });
    const startedAt = Date.now();
    const t1 = performance.now();
    try { await sync.syncNow(); } finally { sync.dispose(); }
    const syncMs = performance.now() - t1;
    const after = await lib.get(rec.id);
    if (after.syncStatus !== 'synced') throw new Error(`not synced: ${after.syncStatus} ${JSON.stringify(after.syncError)}`);
    // Byte progress: the longest gap between events while bytes moved, and monotonicity.
    let maxGapMs = 0, monotonic = true;
    for (let i = 1; i < progress.length; i++) {
      maxGapMs = Math.max(maxGapMs, progress[i][0] - progress[i - 1][0]);
      if (progress[i][1] < progress[i - 1][1]) monotonic = false;
    }
    const gapFromStart = progress.length ? progress[0][0] - t1 : Infinity;
    return { id: rec.id, sha256: after.sha256, importMs, syncMs, startedAt, events: progress.length, maxGapMs: Math.max(maxGapMs, gapFromStart), monotonic };
  },
  // The baseline: one POST of the stored file (the digest the server needs is computed
  // before the clock starts: the plain way has no faster one to offer).
  async baseline({ api, user, id, sha256 }) {
    await ready;
    const lib = await MediaLibrary.open({ name: LIB, storage: 'opfs' });
    const file = await lib.getFile(id);
    const t = performance.now();
    const baselineId = crypto.randomUUID();
    const r = await fetch(`${api}/api/media/assets`, {
      method: 'POST', body: file,
      headers: { Authorization: `Bearer dev:${user}`, 'Content-Type': file.type, 'X-Asset-Id': baselineId,
        'X-Asset-Name': 'film.mp4', 'X-Content-SHA256': sha256 },
    });
    if (!r.ok) throw new Error(`baseline upload: HTTP ${r.status} ${await r.text()}`);
    await r.json();
    return { ms: performance.now() - t, id: baselineId };
  },
  // The profile of the library's time: the whole-file SHA-256 alone (the WASM hasher reading
  // the stored file), which a resumable upload computes as its chunks go.
  async hashOnly() {
    await ready;
    const lib = await MediaLibrary.open({ name: LIB, storage: 'opfs' });
    await clear(lib);
    const src = await (await (await navigator.storage.getDirectory()).getFileHandle('largebench-source.bin')).getFile();
    const rec = await lib.importFile(new File([src], 'film.mp4', { type: 'video/mp4' }));
    const t = performance.now();
    await lib.checksum(rec.id);
    const ms = performance.now() - t;
    await clear(lib);
    return { ms };
  },
  async cleanup() {
    await ready;
    const lib = await MediaLibrary.open({ name: LIB, storage: 'opfs' });
    await clear(lib);
    await (await navigator.storage.getDirectory()).removeEntry('largebench-source.bin').catch(() => {});
    return true;
  },
};

onmessage = async ({ data: { seq, op, args } }) => {
  try {
    postMessage({ seq, ok: await ops[op](args) });
  } catch (e) {
    postMessage({ seq, err: String(e?.stack ?? e) });
  }
};
