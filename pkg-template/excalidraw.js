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

/** Imports the files not stored yet; resolves with `{ fileId: assetId }` for all of them. */
export async function saveExcalidrawFiles(library, files) {
  const ids = {};
  for (const file of Object.values(files ?? {})) {
    const [existing] = await library.list({ tag: TAG(file.id) });
    if (existing) {
      ids[file.id] = existing.id;
      continue;
    }
    const blob = await dataUrlToBlob(file.dataURL);
    const asset = await library.importFile(blob, { name: file.id, type: file.mimeType, tags: [TAG(file.id)] });
    ids[file.id] = asset.id;
  }
  return ids;
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
