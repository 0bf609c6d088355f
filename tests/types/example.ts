// Compiled by `tsc --noEmit` in `npm test` against the built pkg/ types: if the .d.ts
// drifts from how the API is used here, the test fails.
import init, {
  importFileToLibrary, importFilesToLibrary, listAssets, getAsset, getAssetFile, deleteAsset, updateAsset,
  estimate, requestPersistence, defaultLibrary, MediaLibrary,
  type SyncErrorInfo, type ImportResult, type ImportError, type EvictReport, type MediaAsset, type SyncStatus, type StorageKind, type SweepReport, type StorageInfo,
} from 'opfs-media';
import { MediaSyncService, type MediaSyncOptions, type SyncProgress, type TransferProgress, type SyncErrorDetail, type ConflictVersion } from 'opfs-media/sync';

export async function example(file: File): Promise<void> {
  await init();
  const id: string = await importFileToLibrary(file);
  await importFileToLibrary(new Blob(['x']), { name: 'x.txt', type: 'text/plain', tags: ['a'] });
  // A stream of bytes: a fetch body, or recorded chunks (Blobs) piped through a stream.
  const body: ReadableStream<Uint8Array> | null = (await fetch('/clip.webm')).body;
  if (body) await importFileToLibrary(body, { name: 'clip.webm', type: 'video/webm' });
  const recorded = new ReadableStream<Blob>({ start(c) { c.enqueue(new Blob(['chunk'])); c.close(); } });
  const clip: MediaAsset = await (await defaultLibrary()).importFile(recorded, { name: 'rec.webm' });
  console.log(clip.size);
  const asset: MediaAsset = await getAsset(id);
  const status: SyncStatus = asset.syncStatus;
  const where: StorageKind = asset.storage;
  const tags: string[] = asset.tags;
  const cloud: string | undefined = asset.cloudId;
  const sha: string | undefined = asset.sha256;
  const all: MediaAsset[] = await listAssets({ syncStatus: 'pending', typePrefix: 'image/' });
  const blob: File = await getAssetFile(id);
  const bitmap = await createImageBitmap(blob);
  const renamed: MediaAsset = await updateAsset(id, { name: 'new.png', tags: [] });
  const info: StorageInfo = await estimate();
  const persisted: boolean = await requestPersistence();
  await deleteAsset(id);

  const lib: MediaLibrary = await MediaLibrary.open({ name: 'drafts', storage: 'auto', budget: { maxBytes: 500e6 } });
  const budgetReport: EvictReport = await lib.setBudget({ quotaFraction: 0.5 });
  const dropped: string[] = budgetReport.evicted;
  await lib.setBudget(null);
  await lib.pin(id);
  await lib.unpin(id);
  const pins: string[] = await lib.pinnedIds();
  const evicted: EvictReport = await lib.evict();
  const budgetInfo = await lib.estimate();
  const budgetBytes: number | undefined | null = budgetInfo.budget;
  const localNumbers: number[] = [budgetInfo.localBytes, budgetInfo.evictableBytes, budgetInfo.pinnedBytes];
  // Small files in IndexedDB below the threshold (`0`: always OPFS); estimate() reports it.
  const smallLib: MediaLibrary = await MediaLibrary.open({ name: 'small', smallFileBytes: 256 * 1024 });
  const threshold: number = (await smallLib.estimate()).smallFileBytes;
  // @ts-expect-error smallFileBytes is a number of bytes
  await MediaLibrary.open({ name: 'small', smallFileBytes: '1 MiB' });
  console.log(threshold);
  console.log(dropped, pins, evicted.bytes, evicted.reason, budgetBytes, localNumbers);
  const imported: MediaAsset = await lib.importFile(file);
  // Many files at once: one outcome per file, in input order.
  const batch: ImportResult[] = await lib.importFiles([file, new Blob(['y'])], { tags: ['drop'] });
  for (const r of batch) {
    if (r.error) { const e: ImportError = r.error; console.log(e.name, e.code, e.message); }
    else { const a: MediaAsset = r.asset; const same: boolean = r.id === a.id; console.log(same); }
  }
  const perFile: ImportResult[] = await lib.importFiles([file, file], [{ name: 'one.png' }, { tags: ['two'] }]);
  const fromList = await importFilesToLibrary(new Set([file]));
  console.log(perFile.length, fromList[0].id);
  const checksum: string = await lib.checksum(imported.id);
  lib.addEventListener('change', (e: Event) => console.log((e as CustomEvent).detail));
  const report: SweepReport = await lib.sweep({ graceMs: 0 });
  const kind: StorageKind = lib.storage;
  const def: MediaLibrary = await defaultLibrary();
  console.log(status, where, tags, cloud, sha, all.length, bitmap.width, renamed, info.quota, persisted,
    imported.id, report.missingBytes, kind, def.name);

  try {
    await getAsset('not-an-id');
  } catch (e) {
    if (e instanceof Error && e.name === 'InvalidInputError') console.log((e as Error & { code: string }).code);
  }

  const options: MediaSyncOptions = {
    apiBaseUrl: 'https://media.example.com',
    getUserId: () => 'alice',
    getAuthToken: async () => 'token',
    autoSync: false,
    fetchOptions: { credentials: 'include', headers: { 'X-App': '1' } },
    downloadPolicy: 'lazy',
    concurrency: 2,
    retry: { baseDelayMs: 500 },
  };
  const sync = new MediaSyncService(options);
  const ctl = new AbortController();
  await sync.syncNow({ signal: ctl.signal });
  const up: MediaAsset = await sync.uploadAsset(id);
  const again: MediaAsset = await sync.uploadAsset(up);
  const down: MediaAsset = await sync.downloadAsset(id);
  const version: number | undefined = up.cloudVersion;
  const why: SyncErrorInfo | undefined = again.syncError;
  const freed: number = await sync.freeLocalCopies();
  sync.addEventListener('statuschange', (e: Event) => console.log((e as CustomEvent).detail));
  sync.addEventListener('progress', (e: Event) => {
    const p = (e as CustomEvent<SyncProgress>).detail;
    const t: TransferProgress | undefined = p.transfers[0];
    const dir: 'upload' | 'download' | undefined = t?.direction;
    console.log(p.bytesLoaded / p.bytesTotal, p.queued, t?.loaded, dir);
  });
  // A shared space: its own root and library; a refusal is a typed error.
  const board = new MediaSyncService({
    apiBaseUrl: '/api/spaces/board-1', library: 'space-board-1', getUserId: () => 'alice',
    conflictResolver: (local: ConflictVersion, remote: ConflictVersion) => (remote.updatedBy === 'bob' ? 'remote' : 'local'),
  });
  board.addEventListener('error', (e: Event) => {
    const d: SyncErrorDetail = (e as CustomEvent<SyncErrorDetail>).detail;
    if (d.name === 'NotAMemberError' && d.code === 'NOT_A_MEMBER') board.stop();
  });
  const leader: boolean = sync.isLeader;
  sync.start();
  sync.stop();
  sync.dispose();
  console.log(down.storage === 'remote', version, why?.code, freed, leader);
}

// Misuse must not compile.
// @ts-expect-error: syncStatus is a closed union
const bad: SyncStatus = 'done';
// @ts-expect-error: unknown option
MediaLibrary.open({ nmae: 'typo' });
void bad;
// @ts-expect-error: downloadPolicy is a closed union
new MediaSyncService({ apiBaseUrl: 'x', getUserId: () => null, downloadPolicy: 'sometimes' });
