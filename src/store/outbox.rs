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
        let e = OutboxEntry { id: "a".into(), op: Delete, tag: "t".into(), user_id: Some("u".into()) };
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(text, r#"{"id":"a","op":"Delete","tag":"t","userId":"u"}"#);
        assert_eq!(serde_json::from_str::<OutboxEntry>(&text).unwrap(), e);
    }
}
