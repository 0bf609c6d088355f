//! The local-storage budget and the eviction decision: given the records, what is evictable
//! and in which order. Plain Rust (no browser types), so every rule is tested natively.

use serde::{Deserialize, Serialize};
use tsify::Tsify;

use crate::asset::{MediaAsset, StorageKind, SyncStatus};
use crate::validate::ValidationError;

/// How many local bytes a library may keep: `{ maxBytes }` or `{ quotaFraction }` (of the
/// origin's quota from `navigator.storage.estimate()`), exactly one.
#[derive(Tsify, Deserialize, Default, Debug, Clone, Copy, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BudgetSpec {
    /// At most this many bytes of media on this device (0 keeps only what cannot be evicted).
    #[serde(default)]
    #[tsify(optional)]
    pub max_bytes: Option<f64>,
    /// At most this fraction (0..=1) of the origin's quota. `1` evicts only when the browser's
    /// quota is hit.
    #[serde(default)]
    #[tsify(optional)]
    pub quota_fraction: Option<f64>,
}

impl BudgetSpec {
    /// Checks the spec: exactly one of the two, finite and in range.
    pub fn validate(self) -> Result<Self, ValidationError> {
        let bad = |detail: &str| ValidationError::BadOptions { what: "budget", detail: detail.to_owned() };
        match (self.max_bytes, self.quota_fraction) {
            (Some(b), None) if b.is_finite() && b >= 0.0 => Ok(self),
            (None, Some(f)) if f.is_finite() && f > 0.0 && f <= 1.0 => Ok(self),
            (Some(_), None) => Err(bad("maxBytes must be a finite number >= 0")),
            (None, Some(_)) => Err(bad("quotaFraction must be a number in (0, 1]")),
            _ => Err(bad("give exactly one of maxBytes or quotaFraction")),
        }
    }

    /// The budget in bytes, given the origin's quota (`None` where it is unknown).
    pub fn bytes(self, quota: Option<f64>) -> Option<f64> {
        match (self.max_bytes, self.quota_fraction) {
            (Some(b), _) => Some(b),
            (None, Some(f)) => quota.map(|q| (q * f).floor()),
            (None, None) => None,
        }
    }
}

/// What the library keeps about an asset on this device only (IndexedDB stores `local` for
/// the pin and `access` for the last read): never synced, never part of the record.
#[derive(Serialize, Deserialize, Default, Debug, Clone, Copy, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LocalState {
    /// Pinned by the app (`pin(id)`): the local copy is never evicted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pinned: bool,
    /// When the bytes were last read here (ms), recorded in batches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_access: Option<f64>,
}

/// A record with its local state.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The catalog record.
    pub asset: MediaAsset,
    /// Pin and last read.
    pub local: LocalState,
}

impl Entry {
    /// Whether the local copy may be dropped: its bytes are here, the server has them
    /// (synced, with a checksum to verify the download that brings them back), and it is
    /// not pinned. Assets being read or downloaded are excluded by the caller (locks).
    pub fn evictable(&self) -> bool {
        let a = &self.asset;
        a.storage != StorageKind::Remote
            && a.sync_status == SyncStatus::Synced
            && a.cloud_id.is_some()
            && a.sha256.is_some()
            && !self.local.pinned
    }

    /// When the asset was last used: its last recorded read, else its import.
    pub fn last_used(&self) -> f64 {
        self.local.last_access.unwrap_or(self.asset.created_at)
    }
}

/// What the budget's state is.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Usage {
    /// Bytes of every asset whose bytes are on this device.
    pub local: f64,
    /// Of those, bytes that eviction may drop.
    pub evictable: f64,
    /// Of those, bytes of pinned assets.
    pub pinned: f64,
}

/// Sums what `entries` keep locally.
pub fn usage(entries: &[Entry]) -> Usage {
    let mut u = Usage::default();
    for e in entries.iter().filter(|e| e.asset.storage != StorageKind::Remote) {
        u.local += e.asset.size;
        if e.local.pinned {
            u.pinned += e.asset.size;
        }
        if e.evictable() {
            u.evictable += e.asset.size;
        }
    }
    u
}

/// The ids to evict, least recently used first, so that the local bytes fit `max_local`
/// (if given) and at least `free_at_least` bytes are freed; `skip` names assets in use
/// here. Stops as soon as both hold; takes everything evictable if they cannot.
pub fn plan(entries: &[Entry], max_local: Option<f64>, free_at_least: f64, skip: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut local = usage(entries).local;
    let mut candidates: Vec<&Entry> = entries.iter().filter(|e| e.evictable() && !skip(&e.asset.id)).collect();
    candidates.sort_by(|a, b| {
        a.last_used()
            .total_cmp(&b.last_used())
            .then(a.asset.created_at.total_cmp(&b.asset.created_at))
            .then(a.asset.id.cmp(&b.asset.id))
    });
    let mut freed = 0.0;
    let mut out = Vec::new();
    for e in candidates {
        let fits = max_local.is_none_or(|max| local <= max);
        if fits && freed >= free_at_least {
            break;
        }
        local -= e.asset.size;
        freed += e.asset.size;
        out.push(e.asset.id.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, size: f64, created: f64, access: Option<f64>) -> Entry {
        let asset: MediaAsset = serde_json::from_value(serde_json::json!({
            "id": id, "handleName": id, "name": id, "type": "image/png", "size": size,
            "createdAt": created, "updatedAt": created, "syncStatus": "synced", "storage": "opfs",
            "cloudId": id, "sha256": "00"
        }))
        .unwrap();
        Entry { asset, local: LocalState { pinned: false, last_access: access } }
    }

    const NONE: &dyn Fn(&str) -> bool = &|_| false;

    #[test]
    fn least_recently_used_go_first_until_the_budget_fits() {
        // Imported a, b, c, d in that order; a and c read since.
        let rs = vec![
            rec("a", 10.0, 1.0, Some(50.0)),
            rec("b", 10.0, 2.0, None),
            rec("c", 10.0, 3.0, Some(40.0)),
            rec("d", 10.0, 4.0, None),
        ];
        assert_eq!(plan(&rs, Some(40.0), 0.0, NONE), Vec::<String>::new(), "fits: nothing");
        assert_eq!(plan(&rs, Some(25.0), 0.0, NONE), vec!["b", "d"]);
        assert_eq!(plan(&rs, Some(15.0), 0.0, NONE), vec!["b", "d", "c"]);
        assert_eq!(plan(&rs, Some(0.0), 0.0, NONE), vec!["b", "d", "c", "a"]);
        // Quota recovery: free at least this much, budget or not.
        assert_eq!(plan(&rs, None, 15.0, NONE), vec!["b", "d"]);
        assert_eq!(plan(&rs, None, 0.0, NONE), Vec::<String>::new());
        // Ties on time break by creation, then id: a deterministic order.
        let tie = vec![rec("y", 1.0, 5.0, Some(9.0)), rec("x", 1.0, 5.0, Some(9.0)), rec("w", 1.0, 4.0, Some(9.0))];
        assert_eq!(plan(&tie, Some(0.0), 0.0, NONE), vec!["w", "x", "y"]);
    }

    #[test]
    fn unsynced_pinned_remote_unverifiable_and_busy_assets_are_never_chosen() {
        let mut rs = vec![rec("keep", 5.0, 1.0, None)];
        for (id, edit) in [
            ("pending", &(|e: &mut Entry| e.asset.sync_status = SyncStatus::Pending) as &dyn Fn(&mut Entry)),
            ("syncing", &|e| e.asset.sync_status = SyncStatus::Syncing),
            ("error", &|e| e.asset.sync_status = SyncStatus::Error),
            ("pinned", &|e| e.local.pinned = true),
            ("remote", &|e| e.asset.storage = StorageKind::Remote),
            ("nosha", &|e| e.asset.sha256 = None),
            ("nocloud", &|e| e.asset.cloud_id = None),
        ] {
            let mut e = rec(id, 100.0, 0.0, None);
            edit(&mut e);
            rs.push(e);
        }
        rs.push(rec("busy", 100.0, 0.0, None));
        let busy: &dyn Fn(&str) -> bool = &|id| id == "busy";
        assert_eq!(plan(&rs, Some(0.0), 1e9, busy), vec!["keep"]);
        // remote is not local; pending, syncing, error, pinned, nosha, nocloud, busy and keep are.
        assert_eq!(usage(&rs), Usage { local: 705.0, evictable: 105.0, pinned: 100.0 });
    }

    #[test]
    fn budget_specs_are_checked_and_resolved() {
        let spec = |b: Option<f64>, f: Option<f64>| BudgetSpec { max_bytes: b, quota_fraction: f };
        assert!(spec(Some(0.0), None).validate().is_ok());
        assert!(spec(None, Some(1.0)).validate().is_ok());
        for bad in [
            spec(None, None),
            spec(Some(1.0), Some(0.5)),
            spec(Some(-1.0), None),
            spec(Some(f64::NAN), None),
            spec(None, Some(0.0)),
            spec(None, Some(1.5)),
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert_eq!(spec(None, Some(0.5)).bytes(Some(1001.0)), Some(500.0));
        assert_eq!(spec(None, Some(0.5)).bytes(None), None);
        assert_eq!(spec(Some(7.0), None).bytes(None), Some(7.0));
    }
}
