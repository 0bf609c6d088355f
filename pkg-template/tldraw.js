// opfs-media/tldraw: a tldraw `TLAssetStore` backed by an opfs-media library, so images and
// videos dropped on a tldraw canvas live in OPFS (offline, no data URLs in the document).
//
//   import { MediaLibrary } from 'opfs-media';
//   import { createTldrawAssetStore } from 'opfs-media/tldraw';
//   const assets = createTldrawAssetStore(await MediaLibrary.open());
//   <Tldraw persistenceKey="doc" assets={assets} />
//
// `upload` imports the file and stores `https://opfs-media.invalid/<asset id>` as the asset's
// `src` (tldraw requires an http(s)/data URL there; `.invalid` never resolves, RFC 2606);
// `resolve` answers with an object URL of the local bytes, downloading them first through
// `sync` (a MediaSyncService from 'opfs-media/sync') when only the server has them, or the
// server URL when there is no service; `remove` deletes the library assets of removed
// tldraw assets (found by the tag `tldraw:<tldraw asset id>`).
const PREFIX = 'https://opfs-media.invalid/';

export function createTldrawAssetStore(library, { sync } = {}) {
  const urls = new Map();
  const idOf = (asset) => {
    const src = asset?.props?.src;
    return typeof src === 'string' && src.startsWith(PREFIX) ? src.slice(PREFIX.length) : null;
  };
  return {
    async upload(asset, file) {
      const record = await library.importFile(file, { tags: [`tldraw:${asset.id}`] });
      return { src: PREFIX + record.id };
    },
    async resolve(asset) {
      const id = idOf(asset);
      if (!id) return asset?.props?.src ?? null; // not ours: a pasted URL or data URL
      if (urls.has(id)) return urls.get(id);
      let record;
      try {
        record = await library.get(id);
      } catch {
        return null; // deleted: tldraw shows its missing-asset state
      }
      if (record.storage === 'remote') {
        if (!sync) return record.cloudUrl ?? null;
        await sync.downloadAsset(id);
      }
      const url = URL.createObjectURL(await library.getFile(id));
      urls.set(id, url);
      return url;
    },
    async remove(assetIds) {
      for (const tldrawId of assetIds) {
        for (const record of await library.list({ tag: `tldraw:${tldrawId}` })) {
          const url = urls.get(record.id);
          if (url) URL.revokeObjectURL(url);
          urls.delete(record.id);
          await library.delete(record.id).catch(() => {}); // already gone is fine
        }
      }
    },
  };
}
