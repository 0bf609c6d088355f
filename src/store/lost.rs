//! Local bytes that vanished under their record (Safari's seven-day rule, site data cleared,
//! an evicted origin): a lost local copy is never a deletion. What the server holds downloads
//! again; what existed only here is marked `LOCAL_BYTES_LOST`, reported, and never uploaded.

use super::{ChangeKind, Library};
use crate::asset::{MediaAsset, StorageKind, SyncError, SyncStatus};
use crate::error::LibraryError;
use crate::platform;

/// The `syncError.code` of an asset whose bytes were lost before they reached a server.
pub const LOCAL_BYTES_LOST: &str = "LOCAL_BYTES_LOST";

/// What becomes of a record whose local bytes are gone. Plain Rust, tested natively.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// The server has the bytes (the asset was uploaded: it has a `cloudId`; content never
    /// changes after import): the record turns `remote` and downloads again on demand. Its
    /// sync status and any pending metadata edit stay as they are.
    Refetch,
    /// The bytes existed only on this device: the record stays (nothing disappears
    /// silently), in `error` with `LOCAL_BYTES_LOST`, and no upload is ever attempted.
    Lost,
}

/// The fate of `asset` if its local bytes are missing; `None` for a record that has none
/// to lose (`remote`).
pub fn fate(asset: &MediaAsset) -> Option<Fate> {
    match asset.storage {
        StorageKind::Remote => None,
        _ if asset.cloud_id.is_some() => Some(Fate::Refetch),
        _ => Some(Fate::Lost),
    }
}

/// Applies `fate` to a record (its bytes are gone); `false` if nothing changes.
pub fn settle(asset: &mut MediaAsset) -> bool {
    match fate(asset) {
        Some(Fate::Refetch) => {
            asset.storage = StorageKind::Remote;
            true
        }
        Some(Fate::Lost) if asset.sync_error.as_ref().is_none_or(|e| e.code != LOCAL_BYTES_LOST) => {
            asset.sync_status = SyncStatus::Error;
            asset.sync_error = Some(SyncError { status: 0, code: LOCAL_BYTES_LOST.to_owned() });
            true
        }
        _ => false,
    }
}

impl Library {
    /// Settles the record `id`, whose local bytes were found missing (see `Fate`), in one
    /// catalog transaction, and reports it: a `change` event (`sync: true`, like sync results)
    /// and, for bytes that are gone for good, a `lost` event with `{ id, code }`. Returns the
    /// record as it now stands.
    pub async fn settle_missing(&self, id: &str) -> Result<MediaAsset, LibraryError> {
        let mut changed = false;
        let asset = self
            .catalog
            .update_record(id, |r| {
                changed = settle(r);
                changed
            })
            .await?
            .ok_or_else(|| LibraryError::NotFound(id.to_owned()))?;
        if changed {
            self.emit_change(ChangeKind::Update, id, true);
            if fate(&asset) == Some(Fate::Lost) {
                let detail = js_sys::Object::new();
                let _ = js_sys::Reflect::set(&detail, &"id".into(), &id.into());
                let _ = js_sys::Reflect::set(&detail, &"code".into(), &LOCAL_BYTES_LOST.into());
                platform::dispatch(&self.events, "lost", &detail);
            }
        }
        Ok(asset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset(storage: StorageKind, cloud: bool, status: SyncStatus) -> MediaAsset {
        MediaAsset {
            id: "0190f0c2-7a0e-7cc0-8000-000000000001".into(),
            handle_name: "0190f0c2-7a0e-7cc0-8000-000000000001".into(),
            name: "a.png".into(),
            mime_type: "image/png".into(),
            size: 10.0,
            created_at: 1.0,
            updated_at: 2.0,
            sha256: None,
            tags: vec![],
            storage,
            sync_status: status,
            cloud_id: cloud.then(|| "0190f0c2-7a0e-7cc0-8000-000000000001".into()),
            cloud_url: None,
            user_id: None,
            cloud_version: cloud.then_some(3),
            sync_error: None,
        }
    }

    #[test]
    fn uploaded_copies_download_again_with_their_pending_edits() {
        for status in [SyncStatus::Synced, SyncStatus::Pending, SyncStatus::Syncing] {
            for storage in [StorageKind::Opfs, StorageKind::Indexeddb] {
                let mut a = asset(storage, true, status);
                assert_eq!(fate(&a), Some(Fate::Refetch));
                assert!(settle(&mut a));
                assert_eq!((a.storage, a.sync_status, a.sync_error.clone()), (StorageKind::Remote, status, None));
                assert!(!settle(&mut a), "a remote record has nothing left to lose");
            }
        }
    }

    #[test]
    fn bytes_only_here_are_lost_for_good_and_never_queued_again() {
        for status in [SyncStatus::Pending, SyncStatus::Syncing, SyncStatus::Error] {
            let mut a = asset(StorageKind::Opfs, false, status);
            assert_eq!(fate(&a), Some(Fate::Lost));
            assert!(settle(&mut a));
            assert_eq!(a.sync_status, SyncStatus::Error);
            assert_eq!(a.sync_error.as_ref().map(|e| e.code.as_str()), Some(LOCAL_BYTES_LOST));
            assert_eq!(a.storage, StorageKind::Opfs, "the record stays as it was found, listed");
            assert!(!settle(&mut a), "reported once");
        }
    }
}
