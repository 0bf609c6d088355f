import { roundtrip } from './roundtrip.js';
import initSync, { MediaSyncService, MediaLibrary } from 'opfs-media/sync';

// The `opfs-media/sync` entry: its own .wasm, the same libraries on disk.
async function syncEntry(libraryName) {
  await initSync();
  let badOptions = null;
  try { new MediaSyncService({ apiBaseUrl: 'ftp://nope', getUserId: () => null }); } catch (e) { badOptions = `${e.name}/${e.code}`; }
  const lib = await MediaLibrary.open({ name: libraryName });
  return { exported: typeof MediaSyncService === 'function', badOptions, sameLibrary: (await lib.list()).length };
}

roundtrip('worker')
  .then(async (r) => postMessage({ ...r, sync: await syncEntry(r.library) }))
  .catch((e) => postMessage({ error: String(e?.stack ?? e) }));
