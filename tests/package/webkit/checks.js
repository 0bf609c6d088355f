// What an app does with the built package (pkg/sync, the entry point with MediaSyncService),
// on WebKit's real OPFS: import, read back, sync to the reference server, delete. Each check
// reports `test <context>/<name> ... ok` or `... FAIL: <why>`; run() resolves with a boolean each.
import init, * as opfs from '/pkg/sync/opfs_media.js';

const bytes = (n, seed) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);
const same = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);

export async function run(where, api, say) {
  const results = [];
  const check = async (name, fn) => {
    try {
      await fn();
      say(`test ${where}/${name} ... ok`);
      results.push(true);
    } catch (e) {
      say(`test ${where}/${name} ... FAIL: ${e && e.name}: ${e && e.message}`);
      results.push(false);
    }
  };
  const assert = (ok, why) => { if (!ok) throw new Error(why); };
  await init();
  const name = `pkg-${where}-${Date.now()}`;
  let lib;
  let id;
  const data = bytes(300_001, where === 'page' ? 1 : 2);
  await check('opens_on_opfs', async () => {
    lib = await opfs.MediaLibrary.open({ name, storage: 'opfs' });
    assert(lib.storage === 'opfs', `storage is ${lib.storage}`);
  });
  await check('imports_and_reads_back', async () => {
    id = (await lib.importFile(new File([data], 'photo.png', { type: 'image/png' }))).id;
    const back = new Uint8Array(await (await lib.getFile(id)).arrayBuffer());
    assert(same(back, data), 'the bytes read back differ');
  });
  await check('imports_a_stream_of_views', async () => {
    const shared = new Uint8Array(data.length + 64).fill(0xee);
    shared.set(data, 7);
    const stream = new ReadableStream({
      start(c) {
        for (let at = 0; at < data.length; at += 65_537) c.enqueue(shared.subarray(7 + at, 7 + Math.min(at + 65_537, data.length)));
        c.close();
      },
    });
    const sid = (await lib.importFile(stream, { name: 'views.bin' })).id;
    const back = new Uint8Array(await (await lib.getFile(sid)).arrayBuffer());
    assert(same(back, data), `a stream of views stored ${back.length} bytes, not the ${data.length} given`);
    await lib.delete(sid);
  });
  await check('syncs_to_the_server', async () => {
    const user = `pkg-${where}-${Date.now()}`;
    const sync = new opfs.MediaSyncService({ apiBaseUrl: api, getUserId: () => user, getAuthToken: () => `dev:${user}`, autoSync: false, library: name });
    try {
      const rec = await sync.uploadAsset(id);
      assert(rec.syncStatus === 'synced', `syncStatus ${rec.syncStatus}`);
      const res = await fetch(`${api}/api/media/assets/${id}`, { headers: { authorization: `Bearer dev:${user}` } });
      assert(res.ok && same(new Uint8Array(await res.arrayBuffer()), data), 'the server does not hold the same bytes');
    } finally {
      sync.dispose();
    }
  });
  await check('deletes', async () => {
    await lib.delete(id);
    const left = await lib.list();
    assert(left.length === 0, `${left.length} assets left`);
    let code;
    try { await lib.getFile(id); } catch (e) { code = e.code; }
    assert(code === 'ASSET_NOT_FOUND', `getFile after delete: ${code}`);
  });
  return results;
}
