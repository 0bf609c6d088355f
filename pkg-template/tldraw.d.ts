// Types for opfs-media/tldraw. Structural, so this package does not depend on tldraw: the
// returned object is assignable to tldraw's `TLAssetStore`.
import type { MediaLibrary } from './web/opfs_media.js';

/** The part of tldraw's asset record this store reads. */
export interface TldrawAssetLike {
  id: string;
  props: { src?: string | null };
}

/** What `createTldrawAssetStore` needs of a library (a `MediaLibrary` from either entry point). */
export type LibraryLike = Pick<MediaLibrary, 'importFile' | 'get' | 'getFile' | 'list' | 'delete'>;

/** What it needs of a sync service, to download assets only the server has. */
export interface DownloaderLike {
  downloadAsset(id: string): Promise<unknown>;
}

export interface TldrawAssetStore {
  upload(asset: TldrawAssetLike, file: File): Promise<{ src: string }>;
  resolve(asset: TldrawAssetLike): Promise<string | null>;
  remove(assetIds: string[]): Promise<void>;
}

export function createTldrawAssetStore(library: LibraryLike, options?: { sync?: DownloaderLike }): TldrawAssetStore;
