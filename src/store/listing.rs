//! `list()` for JS without a per-record round trip through serde: records in the exact shape
//! this version writes go back as IndexedDB returned them; only others are parsed in Rust.
//!
//! Why: parsing 10,000 records into `MediaAsset`s and serialising them back cost 2.2-2.7x a
//! raw `getAll()` (bench/, Chromium 156), almost all in per-field crossings of the WASM
//! boundary. A shape check in JS costs well under a microsecond per record.

use js_sys::{Array, Function};
use wasm_bindgen::{JsCast, JsValue};

use super::Library;
use crate::asset::{ListFilter, MediaAsset};
use crate::error::LibraryError;
use crate::platform::error_parts;

/// `(db, syncStatus, tag, typePrefix)` -> `Promise<[kept, others]>`: one `getAll()` of the
/// assets, split into records of the canonical shape that pass the filter (`kept`) and records
/// of any other shape (`others`: older versions' records, stray fields, corrupt ones), which
/// Rust parses, normalises, filters or reports. "Canonical" is exactly what `MediaAsset`
/// serialises to: every required field with its type, optional ones absent or typed, no other
/// key. `ListFilter::matches` is mirrored here for the kept ones (a browser test compares both).
const SCAN: &str = r#"
const STORAGE = ['opfs', 'indexeddb', 'remote'], STATUS = ['pending', 'syncing', 'synced', 'error'];
const str = (v) => typeof v === 'string';
const opt = (v, f) => v === undefined || f(v);
const syncError = (e) => e !== null && typeof e === 'object' && !Array.isArray(e) && Object.keys(e).length === 2
  && Number.isInteger(e.status) && e.status >= 0 && e.status <= 65535 && str(e.code);
const canonical = (r) => {
  if (r === null || typeof r !== 'object' || Array.isArray(r)) return false;
  // No other key: the own keys are the 10 required ones plus the optional ones present.
  const optional = (r.sha256 !== undefined) + (r.cloudId !== undefined) + (r.cloudUrl !== undefined)
    + (r.userId !== undefined) + (r.cloudVersion !== undefined) + (r.syncError !== undefined);
  return Object.keys(r).length === 10 + optional && str(r.id) && str(r.handleName) && str(r.name) && str(r.type) && typeof r.size === 'number'
    && Number.isFinite(r.createdAt) && Number.isFinite(r.updatedAt) && opt(r.sha256, str)
    && Array.isArray(r.tags) && r.tags.every(str) && STORAGE.includes(r.storage) && STATUS.includes(r.syncStatus)
    && opt(r.cloudId, str) && opt(r.cloudUrl, str) && opt(r.userId, str)
    && opt(r.cloudVersion, Number.isSafeInteger) && opt(r.syncError, syncError);
};
return new Promise((resolve, reject) => {
  const req = db.transaction(['assets'], 'readonly').objectStore('assets').getAll();
  req.onerror = () => reject(req.error);
  req.onsuccess = () => {
    const kept = [], others = [];
    for (const r of req.result) {
      if (!canonical(r)) others.push(r);
      else if ((status === undefined || r.syncStatus === status) && (tag === undefined || r.tags.includes(tag))
        && (prefix === undefined || r.type.startsWith(prefix))) kept.push(r);
    }
    resolve([kept, others]);
  };
});
"#;

/// Sorts records oldest first, then by id (as `Library::list`).
const SORT: &str =
    "return records.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));";

thread_local! {
    static SCAN_FN: Function = Function::new_with_args("db, status, tag, prefix", SCAN);
    static SORT_FN: Function = Function::new_with_args("records", SORT);
}

impl Library {
    /// Every asset matching `filter`, oldest first, as a JS array of `MediaAsset` objects (the
    /// same as serialising `list`'s result). A corrupt record fails the call with
    /// `CorruptRecordError` naming it.
    pub async fn list_js(&self, filter: &ListFilter) -> Result<JsValue, LibraryError> {
        let opt = |v: Option<&str>| v.map_or(JsValue::UNDEFINED, JsValue::from_str);
        let status = filter.sync_status.map(serde_plain_status);
        let args = Array::of4(
            &self.catalog.db(),
            &opt(status),
            &opt(filter.tag.as_deref()),
            &opt(filter.type_prefix.as_deref()),
        );
        let read = |e: JsValue| {
            let (name, msg) = error_parts(&e);
            LibraryError::from_dom("reading the catalog", &name, &msg)
        };
        let promise = SCAN_FN.with(|f| f.apply(&JsValue::NULL, &args)).map_err(read)?;
        let pair: Array =
            wasm_bindgen_futures::JsFuture::from(js_sys::Promise::from(promise)).await.map_err(read)?.unchecked_into();
        let kept: Array = pair.get(0).unchecked_into();
        for raw in Array::from(&pair.get(1)).iter() {
            let key = crate::platform::get(&raw, "id");
            let key = key.as_string().unwrap_or_else(|| format!("{key:?}"));
            let asset: MediaAsset = serde_wasm_bindgen::from_value(raw)
                .map_err(|e| LibraryError::CorruptRecord { id: key, detail: e.to_string() })?;
            if filter.matches(&asset) {
                kept.push(
                    &crate::platform::to_value(&asset)
                        .map_err(|e| LibraryError::Storage { op: "encoding a record", detail: e.to_string() })?,
                );
            }
        }
        SORT_FN.with(|f| f.call1(&JsValue::NULL, &kept)).map_err(read)
    }
}

/// The `syncStatus` string of a status (as serde writes it).
fn serde_plain_status(s: crate::asset::SyncStatus) -> &'static str {
    use crate::asset::SyncStatus::*;
    match s {
        Pending => "pending",
        Syncing => "syncing",
        Synced => "synced",
        Error => "error",
    }
}
