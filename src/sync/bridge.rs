//! Maps between the catalog's `MediaAsset` records and the engine's view of them. Plain Rust:
//! the rules for what a sync result may change on a record are tested natively here.

use serde::{Deserialize, Serialize};

use super::engine::{LocalAsset, Meta, SyncState};
use super::protocol::WireAsset;
use crate::asset::{MediaAsset, StorageKind, SyncStatus};

/// The small part of the engine state kept per user besides the records and the outbox.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSyncState {
    /// The changes-feed cursor.
    pub cursor: Option<String>,
    /// Confirmed deletes with their pull generation (see `SyncState::deleted`).
    pub deleted: std::collections::BTreeMap<String, u64>,
    /// Pull cycles started.
    pub pull_gen: u64,
}

impl UserSyncState {
    /// The part of `state` to persist.
    pub fn of(state: &SyncState) -> Self {
        Self { cursor: state.cursor.clone(), deleted: state.deleted.clone(), pull_gen: state.pull_gen }
    }
}

/// Whether a record belongs to `user`'s sync: claimed by them, or not claimed by anyone yet
/// (imported while signed out). Another user's records are never touched.
pub fn belongs_to(rec: &MediaAsset, user: &str) -> bool {
    rec.user_id.as_deref().is_none_or(|u| u == user)
}

/// The engine's view of a record. Imports carry no checksum yet (`sha256` empty): the
/// service computes it when it sends the upload.
pub fn local_asset(rec: &MediaAsset) -> LocalAsset {
    LocalAsset {
        id: rec.id.clone(),
        sha256: rec.sha256.clone().unwrap_or_default(),
        meta: Meta { name: rec.name.clone(), tags: rec.tags.clone() },
        updated_at: rec.updated_at as i64,
        remote_version: rec.cloud_version,
        // Nothing is in flight after a load: an interrupted `syncing` is pending again.
        status: match rec.sync_status {
            SyncStatus::Syncing => SyncStatus::Pending,
            s => s,
        },
        error: rec.sync_error.clone(),
        has_bytes: rec.storage != StorageKind::Remote,
    }
}

/// A record that never reached a server and has no outbox entry: written before the outbox
/// existed (catalog v1), so it still needs an upload.
pub fn needs_legacy_upload(rec: &MediaAsset) -> bool {
    rec.cloud_version.is_none() && rec.sync_status != SyncStatus::Error && rec.storage != StorageKind::Remote
}

/// Copies what the engine decided onto the record. Metadata is taken only when the engine's
/// is at least as new as the record's: a newer local edit (not yet seen by the engine) is
/// kept, and the record stays `pending` for it. Returns whether anything changed.
pub fn apply(rec: &mut MediaAsset, a: &LocalAsset, user: &str, base_url: &str) -> bool {
    let before = rec.clone();
    let local_newer = rec.updated_at as i64 > a.updated_at;
    if !local_newer {
        rec.name.clone_from(&a.meta.name);
        rec.tags.clone_from(&a.meta.tags);
        rec.updated_at = a.updated_at as f64;
    }
    rec.sync_status = if local_newer && a.status == SyncStatus::Synced { SyncStatus::Pending } else { a.status };
    rec.sync_error = a.error.clone();
    rec.user_id = Some(user.to_owned());
    if rec.sha256.is_none() && !a.sha256.is_empty() {
        rec.sha256 = Some(a.sha256.clone());
    }
    rec.cloud_version = a.remote_version;
    if a.remote_version.is_some() {
        rec.cloud_id = Some(a.id.clone());
        rec.cloud_url = Some(asset_url(base_url, &a.id));
    }
    *rec != before
}

/// The download URL of an asset: `<API root>/media/assets/<id>` (`api_root` as resolved by
/// [`protocol::api_root`](super::protocol::api_root)).
pub fn asset_url(api_root: &str, id: &str) -> String {
    format!("{}/media/assets/{id}", api_root.trim_end_matches('/'))
}

/// A new record for an asset that exists only on the server (bytes download on demand).
pub fn remote_record(w: &WireAsset, user: &str, base_url: &str) -> MediaAsset {
    MediaAsset {
        id: w.id.clone(),
        handle_name: w.id.clone(),
        name: w.name.clone(),
        mime_type: w.mime_type.clone(),
        size: w.size as f64,
        created_at: w.created_at as f64,
        updated_at: w.updated_at as f64,
        sha256: Some(w.sha256.clone()),
        tags: w.tags.clone(),
        storage: StorageKind::Remote,
        sync_status: SyncStatus::Synced,
        cloud_id: Some(w.id.clone()),
        cloud_url: Some(asset_url(base_url, &w.id)),
        user_id: Some(user.to_owned()),
        cloud_version: Some(w.version),
        sync_error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> MediaAsset {
        serde_json::from_str(
            r#"{"id":"a","handleName":"a","name":"n","type":"t","size":1,"createdAt":1,"updatedAt":10,"sha256":"s"}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_remote_win_updates_metadata_and_cloud_fields() {
        let mut r = rec();
        let mut a = local_asset(&r);
        a.meta.name = "remote".into();
        a.updated_at = 20;
        a.remote_version = Some(3);
        a.status = SyncStatus::Synced;
        assert!(apply(&mut r, &a, "u", "http://h/api"));
        assert_eq!((r.name.as_str(), r.updated_at, r.cloud_version), ("remote", 20.0, Some(3)));
        assert_eq!(r.cloud_url.as_deref(), Some("http://h/api/media/assets/a"));
        assert_eq!((r.sync_status, r.user_id.as_deref()), (SyncStatus::Synced, Some("u")));
        assert!(!apply(&mut r, &a, "u", "http://h/api"), "applying twice changes nothing");
    }

    #[test]
    fn a_newer_local_edit_is_kept_and_stays_pending() {
        let mut r = rec();
        let mut a = local_asset(&r);
        a.status = SyncStatus::Synced;
        a.remote_version = Some(1);
        r.name = "edited meanwhile".into();
        r.updated_at = 11.0;
        apply(&mut r, &a, "u", "b");
        assert_eq!((r.name.as_str(), r.sync_status), ("edited meanwhile", SyncStatus::Pending));
    }

    #[test]
    fn ownership_and_legacy_records() {
        let mut r = rec();
        assert!(belongs_to(&r, "u") && needs_legacy_upload(&r));
        r.user_id = Some("other".into());
        assert!(!belongs_to(&r, "u"));
        r.cloud_version = Some(1);
        assert!(!needs_legacy_upload(&r));
        r.sha256 = None;
        assert_eq!(local_asset(&r).sha256, "", "imports carry no checksum until the upload");
        let mut a = local_asset(&r);
        a.sha256 = "ab".into();
        apply(&mut r, &a, "u", "b");
        assert_eq!(r.sha256.as_deref(), Some("ab"), "the checksum the upload computed is kept");
    }
}
