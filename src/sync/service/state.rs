//! The leader's working state, shared by the leader's loop (`leader.rs`) and the parts it
//! hands work to (`transfer.rs`, `writeback.rs`): defined here so they all depend on it, not
//! on one another.

use std::collections::{BTreeSet, HashMap};

use crate::asset::{MediaAsset, SyncStatus};
use crate::sync::bridge::UserSyncState;
use crate::sync::engine::{Engine, Outcome};
use crate::sync::protocol::WireAsset;

use super::upload::OpenFile;

/// A request's outcome, as its sender hands it back to the leader.
pub(super) struct Completion {
    pub(super) generation: u64,
    pub(super) req: u64,
    pub(super) outcome: Outcome,
    pub(super) live: Vec<WireAsset>,
}

/// The leader's working state.
pub(super) struct Leader {
    pub(super) user: String,
    pub(super) engine: Engine,
    /// The outbox tag of each op the engine has taken in (see `OutboxEntry::tag`).
    pub(super) tags: HashMap<String, String>,
    /// Full server records of assets seen in pulls (for new local records).
    pub(super) wires: HashMap<String, WireAsset>,
    /// Local records of assets the engine may upload: where their bytes are, so an upload
    /// opens them without a catalog read (which would queue behind our own writes).
    pub(super) records: HashMap<String, MediaAsset>,
    /// Files of queued uploads, opened ahead of their request (see `prefetch`).
    pub(super) opening: HashMap<String, OpenFile>,
    pub(super) saved: UserSyncState,
    /// Records whose engine state is not written yet, and status changes not reported yet
    /// (both wait for the next `flush`).
    pub(super) unsaved: BTreeSet<String>,
    pub(super) unreported: Vec<(String, SyncStatus)>,
    pub(super) last_flush: f64,
    /// The catalog's epoch this state was read at (`Catalog::epoch`).
    pub(super) epoch: u64,
}
