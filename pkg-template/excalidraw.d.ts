// Types for opfs-media/excalidraw. Structural: no dependency on @excalidraw/excalidraw.
import type { MediaLibrary } from './web/opfs_media.js';

/** Excalidraw's `BinaryFileData`, the fields this recipe reads and writes. */
export interface ExcalidrawFile {
  id: string;
  mimeType: string;
  dataURL: string;
  created: number;
}

export type LibraryLike = Pick<MediaLibrary, 'importFile' | 'getFile' | 'list' | 'addEventListener'>;

/**
 * Imports the files not stored yet (each once, even when calls overlap, as Excalidraw's
 * `onChange` does) and resolves with `{ fileId: assetId }`.
 */
export function saveExcalidrawFiles(library: LibraryLike, files: Record<string, ExcalidrawFile> | null | undefined): Promise<Record<string, string>>;
export function loadExcalidrawFiles(library: LibraryLike, fileIds: Iterable<string>): Promise<ExcalidrawFile[]>;
export function fileIdsOf(elements: ReadonlyArray<{ type: string; fileId?: string | null; isDeleted?: boolean }> | null | undefined): string[];
