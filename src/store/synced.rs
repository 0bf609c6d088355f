//! Library operations the sync service drives: records that arrive from the server, their
//! bytes downloaded and verified, remote deletes, and freeing local copies. None of these
//! queue sync work (they *are* sync work), unlike the app-facing import/update/delete.

use std::rc::Weak;

use futures_util::future::LocalBoxFuture;
use wasm_bindgen::JsValue;
use web_sys::Blob;

use super::{ChangeKind, Library};
use crate::asset::{MediaAsset, StorageKind, SyncStatus};
use crate::error::LibraryError;
use crate::platform::error_parts;

/// Fetches an asset's bytes from the server: what `getAssetFile` calls for a remote-only
/// asset when a sync service runs in this context.
pub trait Downloader {
    /// Downloads and stores the bytes of `id` (verified) into `lib`.
    fn download(self: std::rc::Rc<Self>, id: String) -> LocalBoxFuture<'static, Result<(), LibraryError>>;
}

impl Library {
    /// Registers the service that downloads remote-only assets (held weakly: a disposed
    /// service stops serving downloads).
    pub fn set_downloader(&self, d: Option<Weak<dyn Downloader>>) {
        *self.downloader.borrow_mut() = d;
    }

    /// Unregisters `d` if it is the registered downloader (another service may have replaced it).
    pub fn unset_downloader(&self, d: &Weak<dyn Downloader>) {
        let mut cur = self.downloader.borrow_mut();
        if cur.as_ref().is_some_and(|c| Weak::ptr_eq(c, d)) {
            *cur = None;
        }
    }

    pub(super) async fn download_via_service(&self, id: &str) -> Result<(), LibraryError> {
        let d = self.downloader.borrow().as_ref().and_then(Weak::upgrade);
        match d {
            Some(d) => d.download(id.to_owned()).await,
            None => Err(LibraryError::NotDownloaded(id.to_owned())),
        }
    }

    /// Writes a record as the sync service decided it, with no outbox entry.
    pub async fn put_synced(&self, asset: &MediaAsset, kind: ChangeKind) -> Result<(), LibraryError> {
        self.catalog.put(asset, None, None).await?;
        self.emit_change(kind, &asset.id, true);
        Ok(())
    }

    /// Applies a batch of sync results in one transaction and emits `update` for changed records.
    /// Returns the ids of changed records and, per outbox swap, whether it happened.
    pub async fn apply_synced(
        &self,
        batch: super::catalog::Batch,
        strict: bool,
    ) -> Result<(Vec<String>, Vec<bool>), LibraryError> {
        if batch.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let (changed, swapped) = self.catalog.apply_batch(batch, strict).await?;
        self.emit_changes(ChangeKind::Update, &changed, true);
        Ok((changed, swapped))
    }

    /// Removes an asset deleted on the server (record, bytes and any pending op).
    pub async fn remove_synced(&self, id: &str) -> Result<(), LibraryError> {
        let Some(asset) = self.catalog.get(id).await? else { return Ok(()) };
        let blob_key = (asset.storage == StorageKind::Indexeddb).then_some(asset.handle_name.as_str());
        self.catalog.delete(id, blob_key, None).await?;
        if asset.storage == StorageKind::Opfs {
            if let Some(dir) = &self.opfs {
                let _ = dir.remove(&asset.handle_name).await;
            }
        }
        self.emit_change(ChangeKind::Delete, id, true);
        Ok(())
    }

    /// Stores downloaded bytes for the remote-only record `id` after checking them against
    /// the record's SHA-256. A mismatch stores nothing and leaves the record as it was.
    ///
    /// With a budget set: the bytes are leased against eviction for a few seconds (the reader
    /// that asked for them gets them), the download counts as a read, a full disk frees synced
    /// copies and retries once, and the budget is enforced afterwards.
    pub async fn store_download(&self, id: &str, bytes: &Blob) -> Result<MediaAsset, LibraryError> {
        self.lease(id).await;
        let stored = self.retrying_after_quota(Some(bytes.size()), || self.store_download_once(id, bytes)).await?;
        self.note_access(id);
        let _ = self.after_growth(bytes.size()).await;
        Ok(stored)
    }

    async fn store_download_once(&self, id: &str, bytes: &Blob) -> Result<MediaAsset, LibraryError> {
        let asset = self.get(id).await?;
        if asset.storage != StorageKind::Remote {
            return Ok(asset);
        }
        let expected = asset.sha256.clone().unwrap_or_default();
        let kind = self.home_for(Some(bytes.size()));
        let stored = match &self.opfs {
            Some(dir) if kind == StorageKind::Opfs => {
                dir.write_new(&asset.handle_name, bytes.into(), None, Some(&expected)).await?;
                None
            }
            _ => {
                let got = super::checksum::sha256_of(bytes).await?;
                if got != expected {
                    return Err(LibraryError::ChecksumMismatch { id: id.to_owned(), expected, got });
                }
                Some(if self.idb_blobs {
                    JsValue::from(bytes)
                } else {
                    wasm_bindgen_futures::JsFuture::from(bytes.array_buffer()).await.map_err(|e| {
                        let (name, msg) = error_parts(&e);
                        LibraryError::from_dom("reading a download", &name, &msg)
                    })?
                })
            }
        };
        self.mark_downloaded(&asset, kind, stored.as_ref()).await
    }

    /// Frees the local copy of a synced asset (it stays listed, `storage: 'remote'`, and
    /// downloads again on demand). Assets not yet on the server are never freed.
    pub async fn free_local_copy(&self, id: &str) -> Result<bool, LibraryError> {
        let asset = self.get(id).await?;
        if asset.storage == StorageKind::Remote || asset.sync_status != SyncStatus::Synced {
            return Ok(false);
        }
        let freed = self
            .catalog
            .update_record(id, |a| {
                let ok = a.sync_status == SyncStatus::Synced && a.storage == asset.storage;
                if ok {
                    a.storage = StorageKind::Remote;
                }
                ok
            })
            .await?
            .is_some_and(|a| a.storage == StorageKind::Remote);
        if freed {
            match asset.storage {
                StorageKind::Opfs => {
                    if let Some(dir) = &self.opfs {
                        let _ = dir.remove(&asset.handle_name).await;
                    }
                }
                StorageKind::Indexeddb => self.catalog.delete_blob(&asset.handle_name).await?,
                StorageKind::Remote => {}
            }
            self.emit_change(ChangeKind::Update, id, true);
        }
        Ok(freed)
    }
}
