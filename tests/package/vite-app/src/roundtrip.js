// The same check in the page and in the worker: import a file, read it back, list it.
import init, { MediaLibrary } from 'opfs-media';

export async function roundtrip(where) {
  await init();
  const library = `vite-${where}-${Date.now()}`;
  const lib = await MediaLibrary.open({ name: library });
  const bytes = new Uint8Array(200_000).map((_, i) => (i * 7) & 255);
  const asset = await lib.importFile(new File([bytes], `${where}.bin`, { type: 'application/octet-stream' }));
  const back = new Uint8Array(await (await lib.getFile(asset.id)).arrayBuffer());
  const same = back.length === bytes.length && back.every((b, i) => b === bytes[i]);
  let typedError = null;
  try { await lib.get('not-an-id'); } catch (e) { typedError = `${e.name}/${e.code}`; }
  return { where, library, storage: lib.storage, size: asset.size, same, listed: (await lib.list()).length, typedError, status: asset.syncStatus };
}
