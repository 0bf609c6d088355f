// The usage example of the design document opfs-media comes from, as written, in an app
// that serves the API under its own origin at /api with a cookie session. Added around it:
// the imports, a session object (the app's signed-in user), a File to import, and getAsset
// to turn the id into the `asset` the example uploads. The checks after it report to the test.
import init, { importFileToLibrary, getAsset, MediaSyncService } from 'opfs-media/sync';

const session = { user: { id: new URLSearchParams(location.search).get('user') } };
const bytes = new Uint8Array(300_000);
for (let i = 0; i < bytes.length; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
const file = new File([bytes], 'seed photo.bin', { type: 'application/octet-stream' });

async function run() {
  await init();

  // ---- the seed's example ----
  const id = await importFileToLibrary(file);
  const syncService = new MediaSyncService({
    apiBaseUrl: '/api',
    getUserId: async () => session?.user?.id || null,
    autoSync: true,
  });
  const asset = await getAsset(id);
  const syncedAsset = await syncService.uploadAsset(asset);
  // ---- end of the example ----

  // The bytes at cloudUrl (same origin: the cookie authenticates) are the file's.
  const served = new Uint8Array(await (await fetch(syncedAsset.cloudUrl)).arrayBuffer());
  const identical = served.length === bytes.length && served.every((b, i) => b === bytes[i]);

  // autoSync: a later import reaches the server with no call.
  const later = await importFileToLibrary(new File([bytes.subarray(0, 1000)], 'later.bin'));
  let laterStatus = null;
  for (let i = 0; i < 300 && laterStatus !== 'synced'; i++) {
    laterStatus = (await getAsset(later)).syncStatus;
    if (laterStatus !== 'synced') await new Promise((r) => setTimeout(r, 100));
  }
  const { syncStatus, cloudId, cloudUrl, userId } = syncedAsset;
  syncService.dispose();
  return { id, syncStatus, cloudId, cloudUrl, userId, identical, later, laterStatus };
}

run().then(
  (r) => { window.__result = r; document.getElementById('out').textContent = JSON.stringify(r, null, 2); },
  (e) => { window.__result = { error: `${e?.name}/${e?.code}: ${e?.message ?? e}` }; },
);
