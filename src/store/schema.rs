//! The names of the catalog's IndexedDB object stores: shared by the catalog, which owns the
//! schema (`catalog::upgrade`), and the modules that read or write a store of it directly.

/// Store of `MediaAsset` records, keyed by `id`.
pub const ASSETS: &str = "assets";
/// Store of asset bytes as `Blob`s, keyed by asset id (IndexedDB fallback only).
pub const BLOBS: &str = "blobs";
/// Store of pending sync operations (`OutboxEntry`), keyed by asset id (schema v2).
pub const OUTBOX: &str = "outbox";
/// Store of per-user sync state (cursor, confirmed deletes), keyed by user id (schema v2).
pub const SYNC: &str = "sync";
/// Store of what only this device keeps about an asset (`budget::LocalState`: the pin),
/// keyed by asset id (schema v3).
pub const LOCAL: &str = "local";
/// Store of when each asset was last read here (ms), keyed by asset id (schema v3). Apart
/// from `assets`, so writing a batch of reads never holds up the reads themselves.
pub const ACCESS: &str = "access";
