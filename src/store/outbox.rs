//! The persistent sync outbox: one pending operation per asset, written in the same
//! IndexedDB transaction as the local change it stands for (`catalog::Catalog::put`), so a
//! reload or crash can delay a sync but never lose one. Plain Rust, tested natively.

use serde::{Deserialize, Serialize};

/// A pending operation on one asset (coalesced: at most one per asset).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutboxOp {
    /// Send the bytes and metadata.
    Upload,
    /// Send a metadata edit.
    UpdateMeta,
    /// Delete on the server.
    Delete,
}

/// One pending operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEntry {
    /// The asset id (the store's key).
    pub id: String,
    /// What to tell the server.
    pub op: OutboxOp,
    /// Changes with every local change: the sync service removes an entry only if it is
    /// still the one it sent, so an edit made during an upload is never dropped.
    pub tag: String,
    /// The owner, for deletes (the record is gone) and claimed assets; `None` for imports
    /// made while signed out, claimed by the first user who syncs them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// A resumable upload in progress (large files): what the server confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<UploadProgress>,
}

/// What the outbox keeps of a resumable upload in progress: the offset the server confirmed
/// and the SHA-256 state of the bytes before it (`digest::Sha256State::checkpoint`), written
/// after every confirmed chunk so a reload or a restarted browser resumes there. The
/// session's URL is not kept: it is `<API root>/media/uploads/<asset id>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadProgress {
    /// The file's size (a different size means another file: start over).
    pub size: u64,
    /// Bytes the server confirmed.
    pub offset: u64,
    /// The hash state at `offset`.
    pub checkpoint: String,
}

/// The op to keep when `new` happens while `existing` is pending: an upload carries the
/// latest metadata, so an edit before it is sent stays an upload; a delete replaces anything.
pub fn coalesce(existing: Option<OutboxOp>, new: OutboxOp) -> OutboxOp {
    match (existing, new) {
        (_, OutboxOp::Delete) => OutboxOp::Delete,
        (Some(OutboxOp::Upload), _) => OutboxOp::Upload,
        (_, op) => op,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OutboxOp::*;

    #[test]
    fn coalescing_keeps_what_the_server_must_hear() {
        assert_eq!(coalesce(None, Upload), Upload);
        assert_eq!(coalesce(Some(Upload), UpdateMeta), Upload);
        assert_eq!(coalesce(Some(UpdateMeta), UpdateMeta), UpdateMeta);
        assert_eq!(coalesce(Some(Upload), Delete), Delete);
        assert_eq!(coalesce(Some(UpdateMeta), Delete), Delete);
    }

    #[test]
    fn entries_round_trip_as_json() {
        let e = OutboxEntry { id: "a".into(), op: Delete, tag: "t".into(), user_id: Some("u".into()), upload: None };
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(text, r#"{"id":"a","op":"Delete","tag":"t","userId":"u"}"#);
        assert_eq!(serde_json::from_str::<OutboxEntry>(&text).unwrap(), e);
        let p = UploadProgress { size: 9, offset: 64, checkpoint: "c".into() };
        let up = OutboxEntry { op: Upload, upload: Some(p), ..e };
        let text = serde_json::to_string(&up).unwrap();
        assert!(text.ends_with(r#""upload":{"size":9,"offset":64,"checkpoint":"c"}}"#), "{text}");
        assert_eq!(serde_json::from_str::<OutboxEntry>(&text).unwrap(), up);
    }
}
