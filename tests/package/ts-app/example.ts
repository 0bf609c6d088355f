// Compiled with tsc --noEmit against the installed tarball: the types a user gets.
import init, { importFileToLibrary, getAsset, MediaLibrary, type MediaAsset, type SyncStatus } from 'opfs-media';
import { MediaSyncService, type MediaSyncOptions } from 'opfs-media/sync';

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
