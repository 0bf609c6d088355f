// opfs-media/excalidraw: keeps Excalidraw's image files in an opfs-media library instead
// of in the scene (Excalidraw holds them as data URLs in `BinaryFiles`), so scenes stay small
// and images are stored once, offline, and can sync.
//
//   <Excalidraw onChange={(elements, state, files) => saveExcalidrawFiles(library, files)} ... />
//   // on load, after restoring the elements (saved without `files`):
//   excalidrawAPI.addFiles(await loadExcalidrawFiles(library, fileIdsOf(elements)));
//
// Each file is imported once, tagged `excalidraw:<fileId>`; saving again is a no-op.
const TAG = (fileId) => `excalidraw:${fileId}`;

async function dataUrlToBlob(dataURL) {
  return (await fetch(dataURL)).blob();
}

function blobToDataUrl(blob) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result);
    r.onerror = () => reject(r.error);
    r.readAsDataURL(blob);
  });
}

// Excalidraw calls onChange on every pointer move, so saves overlap: one promise per
// (library, fileId) makes each file imported once even when calls race, and later calls cost
// a Map lookup. A deleted asset (here, in another tab or by sync) leaves the map, so saving
// the scene again stores the file again.
const saved = new WeakMap();

function savedIn(library) {
  let ids = saved.get(library);
  if (!ids) {
    ids = new Map();
    saved.set(library, ids);
    library.addEventListener?.('change', (e) => {
      if (e.detail?.kind !== 'delete') return;
      for (const [fileId, entry] of ids) if (entry.assetId === e.detail.id) ids.delete(fileId);
    });
  }
  return ids;
}

async function saveOne(library, file) {
  const [existing] = await library.list({ tag: TAG(file.id) });
  if (existing) return existing.id;
  const blob = await dataUrlToBlob(file.dataURL);
  return (await library.importFile(blob, { name: file.id, type: file.mimeType, tags: [TAG(file.id)] })).id;
}

/** Imports the files not stored yet; resolves with `{ fileId: assetId }` for all of them. */
export async function saveExcalidrawFiles(library, files) {
  const ids = savedIn(library);
  const pending = Object.values(files ?? {}).map((file) => {
    let entry = ids.get(file.id);
    if (!entry) {
      entry = { assetId: null };
      entry.promise = saveOne(library, file).then(
        (assetId) => (entry.assetId = assetId),
        (error) => {
          ids.delete(file.id); // a failed save (quota, bad data URL) is tried again next time
          throw error;
        },
      );
      ids.set(file.id, entry);
    }
    return entry.promise.then((assetId) => [file.id, assetId]);
  });
  return Object.fromEntries(await Promise.all(pending));
}

/** The `BinaryFileData` of the given file ids that are in the library (for `addFiles`). */
export async function loadExcalidrawFiles(library, fileIds) {
  const out = [];
  for (const fileId of fileIds) {
    const [asset] = await library.list({ tag: TAG(fileId) });
    if (!asset) continue;
    const blob = await library.getFile(asset.id);
    out.push({ id: fileId, mimeType: asset.type, dataURL: await blobToDataUrl(blob), created: asset.createdAt });
  }
  return out;
}

/** The file ids an Excalidraw scene's image elements use. */
export function fileIdsOf(elements) {
  return [...new Set((elements ?? []).filter((e) => e.type === 'image' && e.fileId && !e.isDeleted).map((e) => e.fileId))];
}
