// Compiled with tsc --noEmit against the installed tarball: the types a user gets.
import init, { importFileToLibrary, getAsset, MediaLibrary, type MediaAsset, type SyncStatus } from 'opfs-media';
import { MediaSyncService, type MediaSyncOptions } from 'opfs-media/sync';
import { createTldrawAssetStore } from 'opfs-media/tldraw';
import { saveExcalidrawFiles, loadExcalidrawFiles, fileIdsOf, type ExcalidrawFile } from 'opfs-media/excalidraw';

export async function canvasRecipes(lib: MediaLibrary, files: Record<string, ExcalidrawFile>): Promise<ExcalidrawFile[]> {
  const store = createTldrawAssetStore(lib);
  const { src } = await store.upload({ id: 'asset:1', props: {} }, new File(['x'], 'x.png'));
  await store.resolve({ id: 'asset:1', props: { src } });
  await saveExcalidrawFiles(lib, files);
  return loadExcalidrawFiles(lib, fileIdsOf([{ type: 'image', fileId: 'f1' }]));
}

export function syncer(options: MediaSyncOptions): MediaSyncService {
  return new MediaSyncService({ ...options, autoSync: false });
}

export async function run(file: File): Promise<SyncStatus> {
  await init();
  const id: string = await importFileToLibrary(file, { tags: ['x'] });
  const a: MediaAsset = await getAsset(id);
  const lib = await MediaLibrary.open({ name: 'typed' });
  const b: MediaAsset = await lib.importFile(file);
  return b.syncStatus ?? a.syncStatus;
}
