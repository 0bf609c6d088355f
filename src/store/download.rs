//! Downloads that resume. The bytes of a remote asset arrive into pieces named
//! `<handle>.part.<first byte>` in OPFS, each closed (committed) when it holds `PIECE_BYTES`
//! or when the stream breaks, so a cut network, a reload or a killed browser keeps every
//! closed piece. The next attempt asks the server for the rest (`Range: bytes=<kept>-`).
//! The SHA-256 runs as bytes arrive (over the kept pieces again when resuming, a local read);
//! only a complete, matching download becomes the asset's file, and the record says so
//! afterwards. Without OPFS, and for small assets (`home`), downloads are stored whole
//! (`store_download`).

use wasm_bindgen::JsValue;
use web_sys::{Blob, ReadableStream};

use super::copy::{copy_stream, ChunkReader, HashOnly};
use super::opfs::copy_err;
use super::{ChangeKind, Library};
use crate::asset::{MediaAsset, StorageKind};
use crate::digest::Sha256State;
use crate::error::LibraryError;

/// Marks a piece of a download in progress: `<handle>.part.<first byte>`.
pub const PIECE_MARK: &str = ".part.";

/// A piece is closed (and so survives a crash) once it holds this much.
pub const PIECE_BYTES: f64 = 16.0 * 1024.0 * 1024.0;

/// What is already here of a download.
pub struct PartialDownload {
    /// Kept pieces, in order: (first byte, file name, length).
    pieces: Vec<(f64, String, f64)>,
    /// Bytes kept (the next byte to ask for).
    pub len: f64,
    hasher: Sha256State,
}

/// The first byte of a piece of `handle`, if `name` is one.
pub fn piece_offset(handle: &str, name: &str) -> Option<f64> {
    let rest = name.strip_prefix(handle)?.strip_prefix(PIECE_MARK)?;
    let n: u64 = rest.parse().ok().filter(|n: &u64| rest == n.to_string())?;
    Some(n as f64)
}

impl Library {
    /// Whether `asset`'s download here resumes (its bytes go to OPFS); otherwise it is stored
    /// whole, in IndexedDB (no OPFS, or a small asset).
    pub fn resumable_download(&self, asset: &MediaAsset) -> bool {
        self.home_for(Some(asset.size)) == StorageKind::Opfs
    }

    /// The pieces kept of `asset`'s download: contiguous from byte 0 (a piece that does not
    /// continue the ones before it, and everything after it, is removed) and hashed again.
    pub async fn partial_download(&self, asset: &MediaAsset) -> Result<PartialDownload, LibraryError> {
        let mut part = PartialDownload { pieces: Vec::new(), len: 0.0, hasher: Sha256State::new() };
        let Some(dir) = &self.opfs else { return Ok(part) };
        let mut found: Vec<(f64, String)> = dir
            .names()
            .await?
            .into_iter()
            .filter_map(|n| piece_offset(&asset.handle_name, &n).map(|at| (at, n)))
            .collect();
        found.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut broken = false;
        for (at, name) in found {
            let file = if broken || at != part.len { None } else { dir.file(&name).await? };
            match file.filter(|f| part.len + f.size() <= asset.size) {
                Some(f) if f.size() > 0.0 => {
                    copy_stream(&f.stream(), &mut HashOnly, Some(&mut part.hasher), &mut |_| {})
                        .await
                        .map_err(copy_err)?;
                    part.len += f.size();
                    part.pieces.push((at, name, f.size()));
                }
                _ => {
                    broken = true;
                    dir.remove(&name).await?;
                }
            }
        }
        Ok(part)
    }

    /// Appends `body` (the asset's bytes from `part.len` on) to the download, reporting the
    /// bytes kept so far to `progress`. On `Err` every closed piece stays for the next attempt.
    pub async fn continue_download(
        &self,
        asset: &MediaAsset,
        part: &mut PartialDownload,
        body: &ReadableStream,
        progress: &mut dyn FnMut(f64),
    ) -> Result<(), LibraryError> {
        let Some(dir) = &self.opfs else { return Err(LibraryError::NotDownloaded(asset.id.clone())) };
        let mut reader = ChunkReader::new(body);
        loop {
            let name = format!("{}{PIECE_MARK}{}", asset.handle_name, part.len as u64);
            let base = part.len;
            let mut handed = 0.0;
            let mut report = |n: f64| {
                handed = n;
                progress(base + n)
            };
            let written = dir.write_piece(&name, &mut reader, &mut part.hasher, &mut report, PIECE_BYTES).await;
            // What reached the file counts, also when the stream broke mid-piece.
            let kept = dir.settled_size(&name, handed).await?;
            if kept > 0.0 {
                part.pieces.push((base, name.clone(), kept));
                part.len += kept;
            } else {
                dir.remove(&name).await?;
            }
            let (_, ended) = written?;
            if part.len > asset.size {
                self.drop_partial_download(asset).await?;
                return Err(LibraryError::DownloadFailed {
                    id: asset.id.clone(),
                    reason: format!("the server sent more than the asset's {} bytes", asset.size),
                });
            }
            if ended {
                return Ok(());
            }
        }
    }

    /// Checks a complete download against the record's SHA-256 and makes it the asset's file.
    /// A mismatch removes the pieces (the next attempt starts over).
    pub async fn finish_download(&self, asset: &MediaAsset, part: PartialDownload) -> Result<MediaAsset, LibraryError> {
        let Some(dir) = &self.opfs else { return Err(LibraryError::NotDownloaded(asset.id.clone())) };
        let expected = asset.sha256.clone().unwrap_or_default();
        let got = part.hasher.clone().finish_hex();
        if part.len != asset.size || got != expected {
            self.drop_partial_download(asset).await?;
            if part.len != asset.size {
                return Err(LibraryError::DownloadFailed {
                    id: asset.id.clone(),
                    reason: format!("the server sent {} of {} bytes", part.len, asset.size),
                });
            }
            return Err(LibraryError::ChecksumMismatch { id: asset.id.clone(), expected, got });
        }
        match part.pieces.as_slice() {
            [(_, only, _)] => {
                dir.rename(only, &asset.handle_name).await?;
                // Leftovers, e.g. the swap file of a piece a killed browser was writing.
                self.drop_partial_download(asset).await?;
            }
            pieces => {
                // One file from the pieces: the browser copies them (no bytes through WASM).
                let parts = js_sys::Array::new();
                for (_, name, _) in pieces {
                    let f = dir.file(name).await?.ok_or_else(|| LibraryError::Storage {
                        op: "finishing a download",
                        detail: format!("{name} vanished"),
                    })?;
                    parts.push(&f);
                }
                let whole = Blob::new_with_blob_sequence(&parts).map_err(|e| LibraryError::Storage {
                    op: "finishing a download",
                    detail: crate::platform::error_parts(&e).1,
                })?;
                dir.write_new(&asset.handle_name, (&whole).into(), None, None).await?;
                self.drop_partial_download(asset).await?;
            }
        }
        self.mark_downloaded(asset, StorageKind::Opfs, None).await
    }

    /// Removes every piece of `asset`'s download, and what a killed browser left of one being
    /// written (`<piece>.crswap`). Call it only while no download of `asset` is writing.
    pub async fn drop_partial_download(&self, asset: &MediaAsset) -> Result<(), LibraryError> {
        let Some(dir) = &self.opfs else { return Ok(()) };
        let prefix = format!("{}{PIECE_MARK}", asset.handle_name);
        for name in dir.names().await? {
            if name.starts_with(&prefix) {
                dir.remove(&name).await?;
            }
        }
        Ok(())
    }

    /// Records that `asset`'s bytes are here (stored as `kind`; `idb_value` went to IndexedDB).
    /// If the record is gone meanwhile, the bytes are removed again.
    pub(super) async fn mark_downloaded(
        &self,
        asset: &MediaAsset,
        kind: StorageKind,
        idb_value: Option<&JsValue>,
    ) -> Result<MediaAsset, LibraryError> {
        if let Some(v) = idb_value {
            self.catalog.put_raw_bytes(&asset.handle_name, v).await?;
        }
        let updated = self
            .catalog
            .update_record(&asset.id, |a| {
                a.storage = kind;
                true
            })
            .await?;
        match updated {
            Some(a) => {
                self.emit_change(ChangeKind::Update, &asset.id, true);
                Ok(a)
            }
            None => {
                match (&self.opfs, kind) {
                    (Some(dir), StorageKind::Opfs) => drop(dir.remove(&asset.handle_name).await),
                    _ => drop(self.catalog.delete_blob(&asset.handle_name).await),
                }
                Err(LibraryError::NotFound(asset.id.clone()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::piece_offset;

    #[test]
    fn pieces_are_named_by_their_first_byte() {
        let h = "0192f3a4-5b6c-7d8e-9f01-23456789abcd";
        assert_eq!(piece_offset(h, &format!("{h}.part.0")), Some(0.0));
        assert_eq!(piece_offset(h, &format!("{h}.part.16777216")), Some(16777216.0));
        for not in [
            h.to_string(),
            format!("{h}.tmp"),
            format!("{h}.part."),
            format!("{h}.part.01"),
            format!("{h}.part.-1"),
            format!("x{h}.part.0"),
            format!("{h}.part.1x"),
        ] {
            assert_eq!(piece_offset(h, &not), None, "{not}");
        }
    }
}
