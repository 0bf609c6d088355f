// The Excalidraw recipe (opfs-media/excalidraw) on Excalidraw-shaped data: files saved once,
// loaded back byte-identical, referenced ids found in a scene's elements.
import { MediaLibrary } from 'opfs-media';
import { saveExcalidrawFiles, loadExcalidrawFiles, fileIdsOf } from 'opfs-media/excalidraw';

const PNG_1X1 = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQAY3Y2wAAAAAElFTkSuQmCC';

export async function excalidrawCheck() {
  const library = await MediaLibrary.open({ name: `excalidraw-${Date.now()}` });
  const files = { f1: { id: 'f1', mimeType: 'image/png', dataURL: PNG_1X1, created: 1 } };
  const first = await saveExcalidrawFiles(library, files);
  const again = await saveExcalidrawFiles(library, files);
  const elements = [
    { type: 'image', fileId: 'f1' }, { type: 'image', fileId: 'f1' },
    { type: 'image', fileId: 'gone', isDeleted: true }, { type: 'rectangle' },
  ];
  const ids = fileIdsOf(elements);
  const [loaded] = await loadExcalidrawFiles(library, [...ids, 'never-saved']);
  return {
    stored: (await library.list()).length,
    sameAsset: first.f1 === again.f1,
    ids,
    loaded: { id: loaded.id, mimeType: loaded.mimeType, identical: loaded.dataURL === PNG_1X1 },
  };
}
