//! The sans-IO sync engine: given local changes and the outcomes of HTTP requests, decides
//! which requests to send next and how local state changes. No clocks, no I/O, no browser
//! types: the caller passes `now`, sends the requests and feeds back the outcomes.
//!
//! Rules (docs/sync.md): every local change goes through a persistent outbox (one coalesced
//! op per asset); uploads are idempotent on the client id; metadata conflicts resolve
//! last-writer-wins on `updatedAt` with a deterministic tie-break; deletes win over edits;
//! network errors, 408, 429 and 5xx retry with exponential backoff + jitter and honour
//! `Retry-After`; other 4xx put the asset in `error` with the server's code kept. A refusal
//! of the whole API root (a space the user is not a member of) stops the engine instead
//! (`Engine::refused`): nothing local changes, nothing more is sent.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

pub use crate::asset::SyncError;
use crate::asset::SyncStatus;
pub use crate::store::outbox::OutboxOp as Op;

/// User metadata that syncs (bytes never change after import).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Meta {
    /// Display name.
    pub name: String,
    /// Tags.
    pub tags: Vec<String>,
}

/// What the engine knows of one local asset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LocalAsset {
    /// Client-chosen id.
    pub id: String,
    /// Hex SHA-256 of the bytes; empty until computed (the service hashes the file when it
    /// sends the upload, and the upload's reply fills it in).
    pub sha256: String,
    /// Metadata as the user sees it.
    pub meta: Meta,
    /// When the metadata last changed (ms), for last-writer-wins.
    pub updated_at: i64,
    /// The server's version this metadata is based on (`None`: not known to be uploaded).
    pub remote_version: Option<i64>,
    /// Sync state shown to the user.
    pub status: SyncStatus,
    /// Set when `status` is `Error`.
    pub error: Option<SyncError>,
    /// Whether the bytes are on this device (remote assets arrive as metadata only).
    pub has_bytes: bool,
}

/// Everything the engine needs to survive a reload or crash. The caller persists it after
/// every call that changed it (`Engine::take_dirty`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncState {
    /// Local assets by id.
    pub assets: BTreeMap<String, LocalAsset>,
    /// The outbox: the pending op per asset id.
    pub outbox: BTreeMap<String, Op>,
    /// The changes-feed cursor.
    pub cursor: Option<String>,
    /// Ids deleted here and confirmed by the server, with the pull generation at that time:
    /// a live change for them from an older pull is stale and must not resurrect them.
    pub deleted: BTreeMap<String, u64>,
    /// Pull cycles started so far.
    pub pull_gen: u64,
}

/// An asset as the server describes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemoteAsset {
    /// Id.
    pub id: String,
    /// Hex SHA-256.
    pub sha256: String,
    /// Metadata.
    pub meta: Meta,
    /// Metadata version.
    pub version: i64,
    /// Last metadata change (ms).
    pub updated_at: i64,
    /// Who made the last change, where the server says (assets in a space).
    pub updated_by: Option<String>,
}

/// One entry of the changes feed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Change {
    /// The asset's current state.
    Live(RemoteAsset),
    /// The asset was deleted.
    Tombstone {
        /// Id.
        id: String,
    },
}

/// A request for the caller to send (the protocol's endpoints).
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// `POST /api/media/assets` with the bytes of `id`.
    Upload {
        /// Asset id.
        id: String,
        /// Checksum header.
        sha256: String,
        /// Metadata headers.
        meta: Meta,
    },
    /// `PATCH /api/media/assets/:id/metadata` with `If-Match`.
    Patch {
        /// Asset id.
        id: String,
        /// The version the edit is based on.
        if_match: i64,
        /// New metadata.
        meta: Meta,
    },
    /// `DELETE /api/media/assets/:id` (no `If-Match`: deletes win).
    Delete {
        /// Asset id.
        id: String,
    },
    /// `GET /api/media/changes?cursor=`.
    Changes {
        /// Where to continue.
        cursor: Option<String>,
    },
}

impl Request {
    /// The asset a request is about (`None` for the changes feed).
    pub fn asset_id(&self) -> Option<&str> {
        match self {
            Request::Upload { id, .. } | Request::Patch { id, .. } | Request::Delete { id } => Some(id),
            Request::Changes { .. } => None,
        }
    }
}

/// A successful response, decoded.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// 200/201 with an asset (upload, patch).
    Asset(RemoteAsset),
    /// 204 (delete).
    Deleted,
    /// A page of the changes feed.
    Changes {
        /// Entries, oldest first.
        changes: Vec<Change>,
        /// The cursor to store.
        next_cursor: String,
        /// Whether to fetch another page now.
        has_more: bool,
    },
}

/// How a request ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// 2xx.
    Ok(Reply),
    /// An error response.
    Failed {
        /// HTTP status.
        status: u16,
        /// The protocol error code.
        code: String,
        /// The current record, for 409 ID_CONFLICT and 412.
        current: Option<RemoteAsset>,
        /// `Retry-After` in seconds.
        retry_after: Option<u64>,
    },
    /// No response: network error, timeout, aborted.
    Network,
}

/// Tuning.
#[derive(Clone, Debug)]
pub struct Config {
    /// Most asset requests in flight at once.
    pub concurrency: usize,
    /// First retry delay (ms).
    pub base_delay_ms: i64,
    /// Longest retry delay (ms).
    pub max_delay_ms: i64,
}

impl Default for Config {
    fn default() -> Self {
        Self { concurrency: 4, base_delay_ms: 1000, max_delay_ms: 60_000 }
    }
}

/// How an app's conflict resolver settles a metadata conflict.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolution {
    /// Keep this device's metadata (it is re-sent with the server's current version).
    Local,
    /// Take the server's.
    Remote,
    /// Use this metadata instead (sent like a local edit).
    Merged(Meta),
}

/// An app-supplied conflict policy: `(local, remote) -> Resolution`. It should decide the same
/// way on every device (the default, last-writer-wins with a tie-break, does).
pub type Resolver = Box<dyn Fn(&LocalAsset, &RemoteAsset) -> Resolution>;

/// Something the app may want to show.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// An asset's status changed.
    Status(String, SyncStatus),
    /// A metadata conflict was resolved; `local_won` says which side was kept.
    Conflict {
        /// Asset id.
        id: String,
        /// Whether the local edit won.
        local_won: bool,
    },
    /// A remote asset appeared locally (metadata only).
    RemoteAdded(String),
    /// An asset was removed locally because it was deleted elsewhere.
    RemoteDeleted(String),
}

#[derive(Clone, Debug)]
enum InFlight {
    Asset { id: String, sent: Request },
    Pull,
}

#[derive(Clone, Debug, Default)]
struct Backoff {
    attempts: u32,
    not_before: i64,
}

/// The engine. Not persisted itself: rebuild it from the persisted `SyncState` after a crash.
pub struct Engine {
    state: SyncState,
    cfg: Config,
    /// Requests in flight by id, in the order sent (ids only grow). A `Vec`: there are only
    /// ever the configured concurrency's few, and it is one B-tree instance less in the package.
    inflight: Vec<(u64, InFlight)>,
    busy: BTreeSet<String>,
    /// Looked up by id and scanned for the earliest expiry only, never in order: a hash map
    /// (smaller code in the package than one more B-tree instance).
    backoff: HashMap<String, Backoff>,
    pull_backoff: Backoff,
    pull_wanted: bool,
    pull_started_gen: u64,
    next_req: u64,
    rng: u64,
    dirty: bool,
    events: Vec<Event>,
    resolver: Option<Resolver>,
    refused: Option<SyncError>,
}

/// Whether an error answer refuses the whole API root rather than one request: `403
/// NOT_A_MEMBER` (not, or no longer, a member of the space) and `400 INVALID_SPACE_ID` (no
/// such space can exist). Retrying cannot help, and no asset is at fault.
pub fn root_refusal(o: &Outcome) -> Option<SyncError> {
    match o {
        Outcome::Failed { status: 403, code, .. } if code == "NOT_A_MEMBER" => {
            Some(SyncError { status: 403, code: code.clone() })
        }
        Outcome::Failed { status: 400, code, .. } if code == "INVALID_SPACE_ID" => {
            Some(SyncError { status: 400, code: code.clone() })
        }
        _ => None,
    }
}

impl Engine {
    /// An engine over persisted state; `seed` drives retry jitter (deterministic in tests).
    pub fn new(state: SyncState, cfg: Config, seed: u64) -> Self {
        Self {
            state,
            cfg,
            inflight: Vec::new(),
            busy: BTreeSet::new(),
            backoff: HashMap::new(),
            pull_backoff: Backoff::default(),
            pull_wanted: false,
            pull_started_gen: 0,
            next_req: 1,
            rng: seed | 1,
            dirty: false,
            events: Vec::new(),
            resolver: None,
            refused: None,
        }
    }

    /// Replaces last-writer-wins with the app's policy for metadata conflicts.
    pub fn set_resolver(&mut self, resolver: Option<Resolver>) {
        self.resolver = resolver;
    }

    /// The state to persist.
    pub fn state(&self) -> &SyncState {
        &self.state
    }

    /// Whether the state changed since the last call (then persist `state()`).
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Events since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// A new local asset (after import): it will be uploaded.
    pub fn local_import(&mut self, mut asset: LocalAsset) {
        asset.remote_version = None;
        asset.has_bytes = true;
        let id = asset.id.clone();
        self.state.assets.insert(id.clone(), asset);
        self.enqueue(&id, Op::Upload);
    }

    /// Tracks an asset the server already has, with nothing to send (after a reload).
    pub fn adopt(&mut self, asset: LocalAsset) {
        if !self.state.assets.contains_key(&asset.id) {
            self.state.assets.insert(asset.id.clone(), asset);
            self.dirty = true;
        }
    }

    /// A local metadata edit at `now`.
    pub fn local_edit(&mut self, id: &str, meta: Meta, now: i64) {
        let Some(a) = self.state.assets.get_mut(id) else { return };
        a.updated_at = now.max(a.updated_at + 1);
        a.meta = meta;
        let op = match self.state.outbox.get(id) {
            Some(Op::Upload) => Op::Upload,
            Some(Op::Delete) => return,
            _ => Op::UpdateMeta,
        };
        self.enqueue(id, op);
    }

    /// A local delete: the asset disappears here now, and on the server when sync runs.
    /// Queued even for an asset this engine never saw (deleted in another tab before this
    /// engine loaded it): the server may have it, and a delete of an unknown id is a no-op there.
    pub fn local_delete(&mut self, id: &str) {
        self.state.assets.remove(id);
        self.backoff.remove(id);
        self.state.outbox.insert(id.to_owned(), Op::Delete);
        self.dirty = true;
    }

    /// Set once the server refused the whole API root (`root_refusal`): the engine sends
    /// nothing more, and has left every local asset and queued op as it was. A new engine
    /// (the next leadership, after the app calls `start()` or `syncNow()`) tries again.
    pub fn refused(&self) -> Option<&SyncError> {
        self.refused.as_ref()
    }

    /// Asks for a pull of the changes feed (start, online, visibility, timer).
    pub fn request_pull(&mut self) {
        self.pull_wanted = true;
    }

    /// Nothing queued, nothing in flight, no pull wanted.
    pub fn is_idle(&self) -> bool {
        self.inflight.is_empty() && self.state.outbox.is_empty() && !self.pull_wanted
    }

    /// When `poll` may have something new to send (the earliest backoff expiry).
    pub fn next_wakeup(&self) -> Option<i64> {
        if self.refused.is_some() {
            return None;
        }
        // Over the backoffs (few), not the outbox (all queued ops): this runs on every turn.
        let assets = self
            .backoff
            .iter()
            .filter(|(id, _)| self.state.outbox.contains_key(*id) && !self.busy.contains(*id))
            .map(|(_, b)| b.not_before);
        let pull = (self.pull_wanted && !self.pulling()).then_some(self.pull_backoff.not_before);
        assets.chain(pull).min()
    }

    fn pulling(&self) -> bool {
        self.inflight.iter().any(|(_, f)| matches!(f, InFlight::Pull))
    }

    fn enqueue(&mut self, id: &str, op: Op) {
        self.state.outbox.insert(id.to_owned(), op);
        self.set_status(id, SyncStatus::Pending, None);
        self.dirty = true;
    }

    fn set_status(&mut self, id: &str, status: SyncStatus, error: Option<SyncError>) {
        if let Some(a) = self.state.assets.get_mut(id) {
            if a.status != status || a.error != error {
                a.status = status;
                a.error = error;
                self.dirty = true;
                self.events.push(Event::Status(id.to_owned(), status));
            }
        }
    }

    /// The requests to send now, each with the id to report its outcome under.
    pub fn poll(&mut self, now: i64) -> Vec<(u64, Request)> {
        let mut out = Vec::new();
        if self.refused.is_some() {
            return out;
        }
        if self.pull_wanted && !self.pulling() && self.pull_backoff.not_before <= now {
            self.state.pull_gen += 1;
            self.pull_started_gen = self.state.pull_gen;
            self.dirty = true;
            out.push(self.send(InFlight::Pull, Request::Changes { cursor: self.state.cursor.clone() }));
        }
        // Only as many as there are free slots: this runs on every completion, so it must not
        // copy the whole outbox each time (1,000 queued uploads made that quadratic).
        let free = self.cfg.concurrency.saturating_sub(self.busy.len());
        let ready: Vec<(String, Op)> = self
            .state
            .outbox
            .iter()
            .filter(|(id, _)| !self.busy.contains(*id))
            .filter(|(id, _)| self.backoff.get(*id).is_none_or(|b| b.not_before <= now))
            .filter(|(id, op)| **op == Op::Delete || self.state.assets.contains_key(*id))
            .take(free)
            .map(|(id, op)| (id.clone(), *op))
            .collect();
        for (id, op) in ready {
            let req = match op {
                Op::Delete => Request::Delete { id: id.clone() },
                Op::Upload => {
                    let Some(a) = self.state.assets.get(&id) else { continue };
                    Request::Upload { id: id.clone(), sha256: a.sha256.clone(), meta: a.meta.clone() }
                }
                Op::UpdateMeta => {
                    let Some(a) = self.state.assets.get(&id) else { continue };
                    match a.remote_version {
                        Some(v) => Request::Patch { id: id.clone(), if_match: v, meta: a.meta.clone() },
                        // Never confirmed uploaded: upload instead (carries the metadata).
                        None => Request::Upload { id: id.clone(), sha256: a.sha256.clone(), meta: a.meta.clone() },
                    }
                }
            };
            self.busy.insert(id.clone());
            self.set_status(&id, SyncStatus::Syncing, None);
            out.push(self.send(InFlight::Asset { id, sent: req.clone() }, req));
        }
        out
    }

    fn send(&mut self, f: InFlight, req: Request) -> (u64, Request) {
        let n = self.next_req;
        self.next_req += 1;
        self.inflight.push((n, f));
        (n, req)
    }

    /// Feeds back the outcome of request `req`. Unknown ids (duplicated responses, or
    /// responses to a previous incarnation) are ignored.
    pub fn handle(&mut self, req: u64, outcome: Outcome, now: i64) {
        let Some(at) = self.inflight.iter().position(|(n, _)| *n == req) else { return };
        if let Some(e) = root_refusal(&outcome) {
            self.refuse(e);
            return;
        }
        let (_, f) = self.inflight.remove(at);
        match f {
            InFlight::Pull => self.on_pull(outcome, now),
            InFlight::Asset { id, sent } => {
                self.busy.remove(&id);
                match sent {
                    Request::Upload { meta, .. } => self.on_upload(&id, meta, outcome, now),
                    Request::Patch { meta, .. } => self.on_patch(&id, meta, outcome, now),
                    Request::Delete { .. } => self.on_delete(&id, outcome, now),
                    Request::Changes { .. } => {}
                }
            }
        }
    }

    /// Stops: requests in flight are forgotten (their answers are ignored), their assets go
    /// back to `pending` with their ops still queued; nothing is deleted or marked failed.
    fn refuse(&mut self, e: SyncError) {
        for (_, f) in std::mem::take(&mut self.inflight) {
            if let InFlight::Asset { id, .. } = f {
                self.busy.remove(&id);
                self.set_status(&id, SyncStatus::Pending, None);
            }
        }
        self.pull_wanted = false;
        self.refused = Some(e);
    }

    fn retryable(o: &Outcome) -> Option<Option<u64>> {
        match o {
            Outcome::Network => Some(None),
            Outcome::Failed { status, retry_after, .. } if matches!(status, 401 | 408 | 429) || *status >= 500 => {
                Some(*retry_after)
            }
            _ => None,
        }
    }

    fn delay(&mut self, attempts: u32, retry_after: Option<u64>) -> i64 {
        // Full jitter in [d/2, d]; splitmix64 keeps tests deterministic.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let d = (self.cfg.base_delay_ms << attempts.min(20)).min(self.cfg.max_delay_ms);
        let jittered = d / 2 + (z % (d as u64 / 2 + 1)) as i64;
        jittered.max(retry_after.map_or(0, |s| s as i64 * 1000))
    }

    fn retry_later(&mut self, id: &str, retry_after: Option<u64>, now: i64) {
        let attempts = self.backoff.get(id).map_or(0, |b| b.attempts);
        let wait = self.delay(attempts, retry_after);
        self.backoff.insert(id.to_owned(), Backoff { attempts: attempts + 1, not_before: now + wait });
        self.set_status(id, SyncStatus::Pending, None);
    }

    fn finish(&mut self, id: &str) {
        self.state.outbox.remove(id);
        self.backoff.remove(id);
        self.set_status(id, SyncStatus::Synced, None);
        self.dirty = true;
    }

    fn fail(&mut self, id: &str, status: u16, code: &str) {
        self.state.outbox.remove(id);
        self.backoff.remove(id);
        self.set_status(id, SyncStatus::Error, Some(SyncError { status, code: code.to_owned() }));
        self.dirty = true;
    }

    fn remove_remote_deleted(&mut self, id: &str) {
        self.state.outbox.remove(id);
        self.backoff.remove(id);
        if self.state.assets.remove(id).is_some() {
            self.events.push(Event::RemoteDeleted(id.to_owned()));
        }
        self.dirty = true;
    }

    /// Last-writer-wins on (updatedAt, metadata) — deterministic on every device.
    fn local_wins(local: &LocalAsset, remote: &RemoteAsset) -> bool {
        (local.updated_at, &local.meta) > (remote.updated_at, &remote.meta)
    }

    /// Brings the local record in line with a remote one the server confirmed, resolving a
    /// metadata difference; returns whether a local edit still needs sending.
    fn reconcile(&mut self, id: &str, remote: &RemoteAsset, conflict: bool) -> bool {
        let Some(a) = self.state.assets.get_mut(id) else { return false };
        a.remote_version = Some(remote.version);
        self.dirty = true;
        if a.meta == remote.meta {
            return false;
        }
        let choice = match (&self.resolver, conflict) {
            (Some(resolve), true) => resolve(a, remote),
            _ if Self::local_wins(a, remote) => Resolution::Local,
            _ => Resolution::Remote,
        };
        let local_won = match choice {
            Resolution::Local => true,
            Resolution::Remote => {
                a.meta = remote.meta.clone();
                a.updated_at = remote.updated_at;
                false
            }
            Resolution::Merged(meta) => {
                // A new local edit, newer than both sides, sent with the current version.
                a.meta = meta;
                a.updated_at = a.updated_at.max(remote.updated_at) + 1;
                a.meta != remote.meta
            }
        };
        if conflict {
            self.events.push(Event::Conflict { id: id.to_owned(), local_won });
        }
        local_won
    }

    fn on_upload(&mut self, id: &str, sent: Meta, o: Outcome, now: i64) {
        if self.state.outbox.get(id) == Some(&Op::Delete) {
            // Deleted while uploading: the delete goes next, whatever happened here.
            return;
        }
        match o {
            Outcome::Ok(Reply::Asset(remote)) => {
                if let Some(a) = self.state.assets.get_mut(id).filter(|a| a.sha256.is_empty()) {
                    // Hashed by the service while sending; the server checked it against the bytes.
                    a.sha256.clone_from(&remote.sha256);
                }
                let local_meta = self.state.assets.get(id).map(|a| a.meta.clone());
                // The server may hold other metadata (edited elsewhere after a lost response).
                let conflict = local_meta.as_ref() != Some(&sent) || remote.meta != sent;
                if self.reconcile(id, &remote, conflict) {
                    self.backoff.remove(id);
                    self.enqueue(id, Op::UpdateMeta);
                } else {
                    self.finish(id);
                }
            }
            Outcome::Failed { status: 409, code, .. } if code == "ASSET_DELETED" => self.remove_remote_deleted(id),
            ref other => match Self::retryable(other) {
                Some(after) => self.retry_later(id, after, now),
                None => {
                    let (status, code) = failure(other);
                    self.fail(id, status, &code)
                }
            },
        }
    }

    fn on_patch(&mut self, id: &str, sent: Meta, o: Outcome, now: i64) {
        if self.state.outbox.get(id) == Some(&Op::Delete) {
            return;
        }
        match o {
            Outcome::Ok(Reply::Asset(remote)) => {
                let edited_since = self.state.assets.get(id).is_some_and(|a| a.meta != sent);
                if let Some(a) = self.state.assets.get_mut(id) {
                    a.remote_version = Some(remote.version);
                }
                if edited_since {
                    self.backoff.remove(id);
                    self.enqueue(id, Op::UpdateMeta);
                } else {
                    self.finish(id);
                }
            }
            Outcome::Failed { status: 412, current: Some(remote), .. } => {
                // Either our own earlier PATCH landed (lost response) or another device
                // edited: reconcile() tells them apart by comparing metadata.
                let applied_ours = remote.meta == sent;
                if self.reconcile(id, &remote, !applied_ours) {
                    self.backoff.remove(id);
                    self.enqueue(id, Op::UpdateMeta);
                } else {
                    self.finish(id);
                }
            }
            // Deleted elsewhere: deletes win over edits.
            Outcome::Failed { status: 404, .. } => self.remove_remote_deleted(id),
            ref other => match Self::retryable(other) {
                Some(after) => self.retry_later(id, after, now),
                None => {
                    let (status, code) = failure(other);
                    self.fail(id, status, &code)
                }
            },
        }
    }

    fn on_delete(&mut self, id: &str, o: Outcome, now: i64) {
        match o {
            Outcome::Ok(_) | Outcome::Failed { status: 404, .. } => {
                self.state.outbox.remove(id);
                self.backoff.remove(id);
                self.state.deleted.insert(id.to_owned(), self.state.pull_gen);
                self.dirty = true;
            }
            ref other => match Self::retryable(other) {
                Some(after) => {
                    let attempts = self.backoff.get(id).map_or(0, |b| b.attempts);
                    let wait = self.delay(attempts, after);
                    self.backoff.insert(id.to_owned(), Backoff { attempts: attempts + 1, not_before: now + wait });
                }
                // A delete the server refuses for good: nothing local is left to keep.
                None => {
                    self.state.outbox.remove(id);
                    self.dirty = true;
                }
            },
        }
    }

    fn on_pull(&mut self, o: Outcome, now: i64) {
        match o {
            Outcome::Ok(Reply::Changes { changes, next_cursor, has_more }) => {
                for c in changes {
                    self.apply_change(c);
                }
                self.state.cursor = Some(next_cursor);
                self.pull_backoff = Backoff::default();
                self.dirty = true;
                if !has_more {
                    self.pull_wanted = false;
                    // A whole pull that started after these deletes were confirmed cannot
                    // carry a stale live version of them any more.
                    let started = self.pull_started_gen;
                    self.state.deleted.retain(|_, g| *g >= started);
                }
            }
            // The cursor is gone (410), or the server no longer accepts it (400 INVALID_CURSOR:
            // issued before an upgrade, or by a server whose data was reset): page from the
            // start again. Without a cursor, an INVALID_CURSOR backs off like any failure.
            Outcome::Failed { status: 410, .. } => {
                self.state.cursor = None;
                self.dirty = true;
            }
            Outcome::Failed { status: 400, ref code, .. }
                if code == "INVALID_CURSOR" && self.state.cursor.is_some() =>
            {
                self.state.cursor = None;
                self.dirty = true;
            }
            ref other => {
                let after = Self::retryable(other).flatten();
                let attempts = self.pull_backoff.attempts;
                let wait = self.delay(attempts, after);
                self.pull_backoff = Backoff { attempts: attempts + 1, not_before: now + wait };
            }
        }
    }

    fn apply_change(&mut self, c: Change) {
        match c {
            Change::Tombstone { id } => {
                self.state.deleted.remove(&id);
                self.remove_remote_deleted(&id);
            }
            Change::Live(remote) => {
                if self.state.deleted.contains_key(&remote.id) {
                    // Deleted here, yet live there: a stale page, or an upload from a closed
                    // tab that reached the server after our delete (which then got 404).
                    // Deleting again is idempotent and settles both.
                    self.state.outbox.insert(remote.id.clone(), Op::Delete);
                    self.dirty = true;
                    return;
                }
                if self.state.outbox.contains_key(&remote.id) {
                    // A local op will settle it with the server's answer.
                    return;
                }
                let id = remote.id.clone();
                match self.state.assets.get_mut(&id) {
                    Some(a) if a.remote_version.is_none_or(|v| v < remote.version) => {
                        a.meta = remote.meta.clone();
                        a.updated_at = remote.updated_at;
                        a.remote_version = Some(remote.version);
                        self.dirty = true;
                        self.set_status(&id, SyncStatus::Synced, None);
                    }
                    Some(_) => {}
                    None => {
                        self.state.assets.insert(
                            id.clone(),
                            LocalAsset {
                                id: id.clone(),
                                sha256: remote.sha256,
                                meta: remote.meta,
                                updated_at: remote.updated_at,
                                remote_version: Some(remote.version),
                                status: SyncStatus::Synced,
                                error: None,
                                has_bytes: false,
                            },
                        );
                        self.dirty = true;
                        self.events.push(Event::RemoteAdded(id));
                    }
                }
            }
        }
    }
}

fn failure(o: &Outcome) -> (u16, String) {
    match o {
        Outcome::Failed { status, code, .. } => (*status, code.clone()),
        Outcome::Ok(_) => (0, "UNEXPECTED_REPLY".into()),
        Outcome::Network => (0, "NETWORK".into()),
    }
}
