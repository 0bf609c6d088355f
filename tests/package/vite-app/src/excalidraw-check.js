// The Excalidraw recipe (opfs-media/excalidraw) on Excalidraw-shaped data: files saved once,
// loaded back byte-identical, referenced ids found in a scene's elements.
import { MediaLibrary } from 'opfs-media';
import { saveExcalidrawFiles, loadExcalidrawFiles, fileIdsOf } from 'opfs-media/excalidraw';

const PNG_1X1 = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQAY3Y2wAAAAAElFTkSuQmCC';

export async function excalidrawCheck() {
  const library = await MediaLibrary.open({ name: `excalidraw-${Date.now()}` });
  const files = { f1: { id: 'f1', mimeType: 'image/png', dataURL: PNG_1X1, created: 1 } };
  // Overlapping saves (Excalidraw's onChange fires on every pointer move) store the file once.
  const [first, racing] = await Promise.all([saveExcalidrawFiles(library, files), saveExcalidrawFiles(library, files)]);
  const again = await saveExcalidrawFiles(library, files);
  const elements = [
    { type: 'image', fileId: 'f1' }, { type: 'image', fileId: 'f1' },
    { type: 'image', fileId: 'gone', isDeleted: true }, { type: 'rectangle' },
  ];
  const ids = fileIdsOf(elements);
  const [loaded] = await loadExcalidrawFiles(library, [...ids, 'never-saved']);
  const stored = (await library.list()).length;
  // Deleting the asset forgets it: the next save stores the file again.
  await library.delete(first.f1);
  const resaved = await saveExcalidrawFiles(library, files);
  return {
    stored,
    sameAsset: first.f1 === again.f1 && first.f1 === racing.f1,
    resaved: resaved.f1 !== first.f1 && (await library.list()).length === 1,
    ids,
    loaded: { id: loaded.id, mimeType: loaded.mimeType, identical: loaded.dataURL === PNG_1X1 },
  };
}
