//! The IndexedDB catalog: asset records (+ indexes) and, where OPFS is missing, the bytes.
//! Writes use `durability: "strict"` so a resolved import survives a crash or power loss.

use idb::{Database, IndexParams, KeyPath, KeyRange, ObjectStore, ObjectStoreParams, Query, Transaction};
use serde::Serialize;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Blob, IdbDatabase, IdbTransaction};

use std::collections::HashMap;

use crate::asset::{MediaAsset, StorageKind};
use crate::budget::{Entry, LocalState};
use crate::error::LibraryError;
use crate::platform::error_parts;
use crate::store::connection::Connection;
use crate::store::outbox::{coalesce, OutboxEntry, OutboxOp, UploadProgress};
use crate::store::pieces;

pub use super::schema::{ACCESS, ASSETS, BLOBS, LOCAL, OUTBOX, SYNC};
/// Schema version; bump with a new step in `upgrade`.
const VERSION: u32 = 3;

/// An edit of one record; returns whether it changed it.
pub type RecordEdit = Box<dyn FnOnce(&mut MediaAsset) -> bool>;

/// Record edits and outbox swaps to apply in one transaction (`Catalog::apply_batch`).
#[derive(Default)]
pub struct Batch {
    /// `(id, edit)`: `edit` returns whether it changed the record.
    pub edits: Vec<(String, RecordEdit)>,
    /// `(id, expected tag, new entry)`: the entry of `id` is replaced by `new` (or removed)
    /// only if it still carries the expected tag (`None`: no entry). A local change re-tags its
    /// entry, so the sync service can never overwrite or drop one it has not seen yet.
    pub swaps: Vec<(String, Option<String>, Option<OutboxEntry>)>,
}

impl Batch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty() && self.swaps.is_empty()
    }
}

/// A record read back from the catalog: parsed, or the raw key and why it did not parse.
pub type Loaded = Result<MediaAsset, LibraryError>;

/// An open catalog database for one library.
pub struct Catalog {
    conn: Connection,
}

fn idb_err(op: &'static str) -> impl Fn(idb::Error) -> LibraryError {
    move |e| match &e {
        idb::Error::DomException(d) => LibraryError::from_dom(op, &d.name(), &d.message()),
        idb::Error::IndexedDbNotFound(_) => LibraryError::StorageUnavailable(format!("IndexedDB is missing: {e}")),
        other => {
            let text = other.to_string();
            // idb wraps most failures as JsValues; classify by the DOMException name in them.
            let name = ["QuotaExceededError", "InvalidStateError", "AbortError"]
                .into_iter()
                .find(|n| text.contains(n))
                .unwrap_or("");
            LibraryError::from_dom(op, name, &text)
        }
    }
}

fn js_err(op: &'static str) -> impl Fn(JsValue) -> LibraryError {
    move |e| {
        let (name, msg) = error_parts(&e);
        LibraryError::from_dom(op, &name, &msg)
    }
}

impl Catalog {
    /// Opens (creating or upgrading) the database `opfs-media:<library>`. If the browser
    /// closes it under the library (site data cleared), it is opened again (`connection`).
    pub async fn open(library: &str) -> Result<Self, LibraryError> {
        let conn = Connection::open(&format!("opfs-media:{library}"), VERSION, upgrade).await?;
        Ok(Self { conn })
    }

    /// The raw connection, for writers that need `'static` promises (streamed pieces).
    pub(crate) fn db(&self) -> IdbDatabase {
        self.conn.db()
    }

    /// A second handle on the same connection (for batched writes that outlive a borrow).
    pub(crate) fn share(&self) -> Catalog {
        Catalog { conn: self.conn.clone() }
    }

    /// Changes when the database was opened again after the browser closed it (its contents
    /// may be gone): whoever holds state read from it reads it again.
    pub fn epoch(&self) -> u64 {
        self.conn.epoch()
    }

    /// Closes the connection (lets tests delete the database).
    pub fn close(&self) {
        self.conn.close();
    }

    fn tx(&self, stores: &[&str], write: bool) -> Result<Transaction, LibraryError> {
        self.tx_with(stores, write, true)
    }

    /// A transaction; writes are `strict` (flushed to disk before completing) unless
    /// `strict` is false, for state that is safe to lose in a crash (it is recomputed).
    fn tx_with(&self, stores: &[&str], write: bool, strict: bool) -> Result<Transaction, LibraryError> {
        let names: js_sys::Array = stores.iter().map(|s| JsValue::from_str(s)).collect();
        // `durability` is passed as a plain dictionary (web-sys gates it as unstable);
        // engines that predate it ignore the member.
        let opts = js_sys::Object::new();
        let mode = if write {
            let durability = if strict { "strict" } else { "relaxed" };
            let _ = js_sys::Reflect::set(&opts, &"durability".into(), &durability.into());
            "readwrite"
        } else {
            "readonly"
        };
        let tx = crate::platform::call(&self.db(), "transaction", &[&names, &mode.into(), &opts])
            .map(|t| t.unchecked_into::<IdbTransaction>());
        if tx.as_ref().is_err_and(|e| error_parts(e).0 == "InvalidStateError") {
            // The connection is closed (site data cleared under us): this call fails, and
            // the database is opened again for the next ones.
            self.conn.refused_as_closed();
        }
        tx.map(Transaction::from).map_err(js_err("starting a catalog transaction"))
    }

    /// Whether this engine can store `Blob` values in IndexedDB. WebKit refuses them in
    /// ephemeral sessions ("Error preparing Blob/File data"), so we probe once, with a
    /// transaction that is aborted and leaves nothing behind. Plain JS handlers, not the
    /// `idb` crate's request future: WebKit fires the refused request's `error` event again
    /// when the transaction aborts, and the crate's one-shot closure throws on that call.
    pub async fn can_store_blobs(&self) -> bool {
        let probe = js_sys::Function::new_with_args(
            "db, store",
            "return new Promise((resolve) => {
                let ok = false;
                try {
                    const tx = db.transaction([store], 'readwrite');
                    tx.oncomplete = tx.onabort = () => resolve(ok);
                    const req = tx.objectStore(store).put(new Blob([new Uint8Array([0])]), 'probe');
                    req.onsuccess = () => { ok = true; tx.abort(); };
                    req.onerror = (e) => e.preventDefault();
                } catch { resolve(false); }
            })",
        );
        match probe.call2(&JsValue::NULL, &self.db(), &JsValue::from_str(BLOBS)) {
            Ok(p) => wasm_bindgen_futures::JsFuture::from(js_sys::Promise::from(p)).await.is_ok_and(|v| v.is_truthy()),
            Err(_) => false,
        }
    }

    /// Writes `asset` (and, for IndexedDB storage, its bytes: a `Blob`, or an `ArrayBuffer`
    /// where the engine cannot store Blobs) in one transaction and waits until it is committed.
    /// With `change`, the sync outbox records it in the same transaction (coalesced with an
    /// op already pending), so a local change and its pending sync can never be separated.
    pub async fn put(
        &self,
        asset: &MediaAsset,
        blob: Option<&JsValue>,
        change: Option<OutboxOp>,
    ) -> Result<(), LibraryError> {
        let err = idb_err("saving to the catalog");
        let tx = self.tx(&[ASSETS, BLOBS, OUTBOX], true)?;
        let value = to_js(asset)?;
        tx.object_store(ASSETS).map_err(&err)?.put(&value, None).map_err(&err)?.await.map_err(&err)?;
        if let Some(blob) = blob {
            let key = JsValue::from_str(&asset.handle_name);
            tx.object_store(BLOBS).map_err(&err)?.put(blob, Some(&key)).map_err(&err)?.await.map_err(&err)?;
        }
        if let Some(op) = change {
            record_change(&tx, &asset.id, op, asset.user_id.clone()).await?;
        }
        finish(tx, "saving to the catalog").await
    }

    /// Writes the records of new assets (with, for IndexedDB storage, their bytes) and their
    /// upload entries in one strict transaction (group commit): all of them are durable when
    /// it returns, or, if it fails, none is written.
    pub async fn put_new(&self, items: &[(MediaAsset, Option<JsValue>)]) -> Result<(), LibraryError> {
        let err = idb_err("saving to the catalog");
        // Encoded before the transaction opens, so no early return can leave it half filled.
        let mut encoded = Vec::with_capacity(items.len());
        for (asset, blob) in items {
            let entry = OutboxEntry {
                id: asset.id.clone(),
                op: OutboxOp::Upload,
                tag: crate::platform::new_asset_id(),
                user_id: asset.user_id.clone(),
                upload: None,
            };
            encoded.push((to_js(asset)?, entry_to_js(&entry)?, blob.as_ref(), JsValue::from_str(&asset.handle_name)));
        }
        let tx = self.tx(&[ASSETS, BLOBS, OUTBOX], true)?;
        let queued = (|| {
            let (assets, blobs, outbox) = (tx.object_store(ASSETS)?, tx.object_store(BLOBS)?, tx.object_store(OUTBOX)?);
            // Requests are queued, not awaited one by one (a round trip each): a failing one
            // aborts the transaction, which `finish` reports.
            for (record, entry, blob, key) in &encoded {
                drop(assets.put(record, None)?);
                if let Some(blob) = blob {
                    drop(blobs.put(blob, Some(key))?);
                }
                drop(outbox.put(entry, None)?);
            }
            Ok::<_, idb::Error>(())
        })();
        if let Err(e) = queued {
            // A request refused at once (e.g. a value that cannot be cloned): nothing commits.
            let _ = tx.abort();
            return Err(err(e));
        }
        finish(tx, "saving to the catalog").await
    }

    /// Reads the record `id`, lets `edit` change it, and writes it back, all in one
    /// transaction (so a concurrent edit from another tab is never overwritten with stale
    /// fields). `edit` returns `false` to leave the record as it is. `None` if there is no record.
    pub async fn update_record(
        &self,
        id: &str,
        edit: impl FnOnce(&mut MediaAsset) -> bool,
    ) -> Result<Option<MediaAsset>, LibraryError> {
        let err = idb_err("saving to the catalog");
        let tx = self.tx(&[ASSETS], true)?;
        let store = tx.object_store(ASSETS).map_err(&err)?;
        let Some(v) = store.get(JsValue::from_str(id)).map_err(&err)?.await.map_err(&err)? else {
            return Ok(None);
        };
        let mut asset = from_js(id, v)?;
        if edit(&mut asset) {
            store.put(&to_js(&asset)?, None).map_err(&err)?.await.map_err(&err)?;
        }
        finish(tx, "saving to the catalog").await?;
        Ok(Some(asset))
    }

    /// Applies record edits (as in `update_record`) and outbox swaps (see `Batch::swaps`) in one
    /// transaction, `strict` or relaxed. Returns the ids of records that changed and, per
    /// swap, whether it happened. Edits and swaps apply in order, as if one after the other.
    ///
    /// Pipelined: every read is issued before the first is awaited, and writes are awaited
    /// only at the end (the transaction runs its requests in order), so a batch of N costs a
    /// few round trips to the database instead of 4N; the sync service's write-back of 1,000
    /// uploads was a chain of ~4,000.
    pub async fn apply_batch(&self, batch: Batch, strict: bool) -> Result<(Vec<String>, Vec<bool>), LibraryError> {
        let err = idb_err("saving sync results");
        let tx = self.tx_with(&[ASSETS, OUTBOX], true, strict)?;
        let assets = tx.object_store(ASSETS).map_err(&err)?;
        let outbox = tx.object_store(OUTBOX).map_err(&err)?;
        let mut record_ids: Vec<&str> = batch.edits.iter().map(|(id, _)| id.as_str()).collect();
        record_ids.sort_unstable();
        record_ids.dedup();
        let mut entry_ids: Vec<&str> = batch.swaps.iter().map(|(id, _, _)| id.as_str()).collect();
        entry_ids.sort_unstable();
        entry_ids.dedup();
        let mut record_reads = Vec::with_capacity(record_ids.len());
        for id in &record_ids {
            record_reads.push(assets.get(JsValue::from_str(id)).map_err(&err)?);
        }
        let mut entry_reads = Vec::with_capacity(entry_ids.len());
        for id in &entry_ids {
            entry_reads.push(outbox.get(JsValue::from_str(id)).map_err(&err)?);
        }
        let mut records: HashMap<String, Option<MediaAsset>> = HashMap::with_capacity(record_ids.len());
        for (id, read) in record_ids.iter().zip(record_reads) {
            let record = match read.await.map_err(&err)? {
                Some(v) => Some(from_js(id, v)?),
                None => None,
            };
            records.insert((*id).to_owned(), record);
        }
        let mut entries: HashMap<String, Option<OutboxEntry>> = HashMap::with_capacity(entry_ids.len());
        for (id, read) in entry_ids.iter().zip(entry_reads) {
            let entry = read.await.map_err(&err)?.and_then(|v| serde_wasm_bindgen::from_value(v).ok());
            entries.insert((*id).to_owned(), entry);
        }
        // Awaited at the end; the transaction runs them in the order they were made.
        let (mut puts, mut deletes) = (Vec::new(), Vec::new());
        let mut changed = Vec::new();
        for (id, edit) in batch.edits {
            let Some(Some(asset)) = records.get_mut(&id) else { continue };
            if edit(asset) {
                puts.push(assets.put(&to_js(asset)?, None).map_err(&err)?);
                changed.push(id);
            }
        }
        let mut swapped = Vec::with_capacity(batch.swaps.len());
        for (id, expect, new) in batch.swaps {
            let Some(current) = entries.get_mut(&id) else { continue };
            let matches = current.as_ref().map(|e| e.tag.as_str()) == expect.as_deref();
            if matches {
                match &new {
                    Some(entry) => puts.push(outbox.put(&entry_to_js(entry)?, None).map_err(&err)?),
                    None => deletes.push(outbox.delete(Query::from(JsValue::from_str(&id))).map_err(&err)?),
                }
                *current = new;
            }
            swapped.push(matches);
        }
        for put in puts {
            put.await.map_err(&err)?;
        }
        for delete in deletes {
            delete.await.map_err(&err)?;
        }
        finish(tx, "saving sync results").await?;
        Ok((changed, swapped))
    }

    /// Every pending sync operation.
    pub async fn outbox(&self) -> Result<Vec<OutboxEntry>, LibraryError> {
        let err = idb_err("reading the outbox");
        let tx = self.tx(&[OUTBOX], false)?;
        let values = tx.object_store(OUTBOX).map_err(&err)?.get_all(None, None).map_err(&err)?.await.map_err(&err)?;
        // An entry that does not parse is skipped: the asset record itself is intact and a
        // later edit re-queues it; failing all sync for one bad entry would be worse.
        Ok(values.into_iter().filter_map(|v| serde_wasm_bindgen::from_value(v).ok()).collect())
    }

    /// The pending operation of `id`, if any.
    pub async fn outbox_entry(&self, id: &str) -> Result<Option<OutboxEntry>, LibraryError> {
        let err = idb_err("reading the outbox");
        let tx = self.tx(&[OUTBOX], false)?;
        let v = tx.object_store(OUTBOX).map_err(&err)?.get(JsValue::from_str(id)).map_err(&err)?.await.map_err(&err)?;
        Ok(v.and_then(|v| serde_wasm_bindgen::from_value(v).ok()))
    }

    /// Records the progress of `id`'s resumable upload on its outbox entry, if that is still
    /// an upload (an upload that finished or became a delete has nothing to resume). Returns
    /// whether it was written.
    pub async fn set_upload_progress(&self, id: &str, progress: &UploadProgress) -> Result<bool, LibraryError> {
        let err = idb_err("saving upload progress");
        let tx = self.tx(&[OUTBOX], true)?;
        let store = tx.object_store(OUTBOX).map_err(&err)?;
        let v = store.get(JsValue::from_str(id)).map_err(&err)?.await.map_err(&err)?;
        let entry: Option<OutboxEntry> = v.and_then(|v| serde_wasm_bindgen::from_value(v).ok());
        let written = match entry {
            Some(mut e) if e.op == OutboxOp::Upload => {
                e.upload = Some(progress.clone());
                store.put(&entry_to_js(&e)?, None).map_err(&err)?.await.map_err(&err)?;
                true
            }
            _ => false,
        };
        finish(tx, "saving upload progress").await?;
        Ok(written)
    }

    /// The JSON sync state stored for `user`.
    pub async fn sync_state(&self, user: &str) -> Result<Option<String>, LibraryError> {
        let err = idb_err("reading the sync state");
        let tx = self.tx(&[SYNC], false)?;
        let v = tx.object_store(SYNC).map_err(&err)?.get(JsValue::from_str(user)).map_err(&err)?.await.map_err(&err)?;
        Ok(v.and_then(|v| v.as_string()))
    }

    /// Stores the JSON sync state for `user`.
    pub async fn put_sync_state(&self, user: &str, json: &str) -> Result<(), LibraryError> {
        let err = idb_err("saving the sync state");
        let tx = self.tx(&[SYNC], true)?;
        let (k, v) = (JsValue::from_str(user), JsValue::from_str(json));
        tx.object_store(SYNC).map_err(&err)?.put(&v, Some(&k)).map_err(&err)?.await.map_err(&err)?;
        finish(tx, "saving the sync state").await
    }

    /// The record with this id, if any.
    pub async fn get(&self, id: &str) -> Result<Option<MediaAsset>, LibraryError> {
        let err = idb_err("reading the catalog");
        let tx = self.tx(&[ASSETS], false)?;
        let v = tx.object_store(ASSETS).map_err(&err)?.get(JsValue::from_str(id)).map_err(&err)?.await.map_err(&err)?;
        v.map(|v| from_js(id, v)).transpose()
    }

    /// The record `id` and, where it says its bytes are in IndexedDB, those bytes (as `blob`
    /// reads them), in one transaction: a read of a small asset is one transaction, not two.
    /// `None` for the bytes otherwise (OPFS, remote): read them apart.
    pub async fn get_with_blob(&self, id: &str) -> Result<(Option<MediaAsset>, Option<Blob>), LibraryError> {
        let err = idb_err("reading the catalog");
        let tx = self.tx(&[ASSETS, BLOBS], false)?;
        let v = tx.object_store(ASSETS).map_err(&err)?.get(JsValue::from_str(id)).map_err(&err)?.await.map_err(&err)?;
        let Some(asset) = v.map(|v| from_js(id, v)).transpose()? else { return Ok((None, None)) };
        if asset.storage != StorageKind::Indexeddb {
            return Ok((Some(asset), None));
        }
        let blob = stored_in(&tx.object_store(BLOBS).map_err(&err)?, &asset.handle_name).await?;
        Ok((Some(asset), blob))
    }

    /// Every record, each parsed or reported as corrupt (never silently skipped).
    pub async fn all(&self) -> Result<Vec<Loaded>, LibraryError> {
        let err = idb_err("reading the catalog");
        let tx = self.tx(&[ASSETS], false)?;
        let store = tx.object_store(ASSETS).map_err(&err)?;
        let keys = store.get_all_keys(None, None).map_err(&err)?.await.map_err(&err)?;
        let values = store.get_all(None, None).map_err(&err)?.await.map_err(&err)?;
        Ok(keys
            .into_iter()
            .zip(values)
            .map(|(k, v)| from_js(&k.as_string().unwrap_or_else(|| format!("{k:?}")), v))
            .collect())
    }

    /// Every key in `store`, as strings.
    pub async fn keys(&self, store: &str) -> Result<Vec<String>, LibraryError> {
        let err = idb_err("reading the catalog");
        let tx = self.tx(&[store], false)?;
        let keys = tx.object_store(store).map_err(&err)?.get_all_keys(None, None).map_err(&err)?.await.map_err(&err)?;
        Ok(keys.into_iter().filter_map(|k| k.as_string()).collect())
    }

    /// The stored bytes of an IndexedDB-backed asset.
    pub async fn blob(&self, key: &str) -> Result<Option<Blob>, LibraryError> {
        let tx = self.tx(&[BLOBS], false)?;
        stored_in(&tx.object_store(BLOBS).map_err(idb_err("reading stored bytes"))?, key).await
    }

    /// Deletes the record `id` and the blob `blob_key` (if given) in one transaction; with
    /// `sync_as` (the owner of an asset the server may know), queues the server delete too.
    /// Without it any pending op for `id` is dropped (nothing to tell a server).
    pub async fn delete(
        &self,
        id: &str,
        blob_key: Option<&str>,
        sync_as: Option<Option<String>>,
    ) -> Result<(), LibraryError> {
        let err = idb_err("deleting from the catalog");
        let tx = self.tx(&[ASSETS, BLOBS, OUTBOX, LOCAL], true)?;
        tx.object_store(LOCAL)
            .map_err(&err)?
            .delete(Query::from(JsValue::from_str(id)))
            .map_err(&err)?
            .await
            .map_err(&err)?;
        match sync_as {
            Some(user) => record_change(&tx, id, OutboxOp::Delete, user).await?,
            None => {
                let store = tx.object_store(OUTBOX).map_err(&err)?;
                store.delete(Query::from(JsValue::from_str(id))).map_err(&err)?.await.map_err(&err)?;
            }
        }
        tx.object_store(ASSETS)
            .map_err(&err)?
            .delete(Query::from(JsValue::from_str(id)))
            .map_err(&err)?
            .await
            .map_err(&err)?;
        if let Some(k) = blob_key {
            delete_bytes(&tx.object_store(BLOBS).map_err(&err)?, k, &err).await?;
        }
        finish(tx, "deleting from the catalog").await
    }

    /// Deletes stored bytes with no record (sweep).
    pub async fn delete_blob(&self, key: &str) -> Result<(), LibraryError> {
        let err = idb_err("deleting stored bytes");
        let tx = self.tx(&[BLOBS], true)?;
        delete_bytes(&tx.object_store(BLOBS).map_err(&err)?, key, &err).await?;
        finish(tx, "deleting stored bytes").await
    }

    /// Writes bytes (a `Blob` or `ArrayBuffer`) with no record (tests use it to plant orphans).
    #[doc(hidden)]
    pub async fn put_raw_bytes(&self, key: &str, blob: &JsValue) -> Result<(), LibraryError> {
        let err = idb_err("saving stored bytes");
        let tx = self.tx(&[BLOBS], true)?;
        tx.object_store(BLOBS)
            .map_err(&err)?
            .put(blob, Some(&JsValue::from_str(key)))
            .map_err(&err)?
            .await
            .map_err(&err)?;
        finish(tx, "saving stored bytes").await
    }

    /// Writes a raw value into the assets store (tests use it to plant old or corrupt records).
    #[doc(hidden)]
    pub async fn put_raw(&self, value: &JsValue) -> Result<(), LibraryError> {
        let err = idb_err("saving to the catalog");
        let tx = self.tx(&[ASSETS], true)?;
        tx.object_store(ASSETS).map_err(&err)?.put(value, None).map_err(&err)?.await.map_err(&err)?;
        finish(tx, "saving to the catalog").await
    }
}

impl Catalog {
    /// Every parsable record with its local state (corrupt records are left out: eviction
    /// and the budget only concern assets that load).
    pub async fn entries(&self) -> Result<Vec<Entry>, LibraryError> {
        let err = idb_err("reading the catalog");
        let tx = self.tx(&[ASSETS, LOCAL, ACCESS], false)?;
        let assets = tx.object_store(ASSETS).map_err(&err)?.get_all(None, None).map_err(&err)?.await.map_err(&err)?;
        let mut states: HashMap<String, LocalState> = HashMap::new();
        for store in [LOCAL, ACCESS] {
            let store_ = tx.object_store(store).map_err(&err)?;
            let keys = store_.get_all_keys(None, None).map_err(&err)?.await.map_err(&err)?;
            let values = store_.get_all(None, None).map_err(&err)?.await.map_err(&err)?;
            for (k, v) in keys.into_iter().zip(values) {
                let Some(k) = k.as_string() else { continue };
                let state = states.entry(k).or_default();
                if store == ACCESS {
                    state.last_access = v.as_f64();
                } else if let Ok(local) = serde_wasm_bindgen::from_value::<LocalState>(v) {
                    state.pinned = local.pinned;
                }
            }
        }
        Ok(assets
            .into_iter()
            .filter_map(|v| serde_wasm_bindgen::from_value::<MediaAsset>(v).ok())
            .map(|asset| Entry { local: states.get(&asset.id).copied().unwrap_or_default(), asset })
            .collect())
    }

    /// The local state of `id` (default if none).
    pub async fn local_state(&self, id: &str) -> Result<LocalState, LibraryError> {
        let err = idb_err("reading the catalog");
        let tx = self.tx(&[LOCAL], false)?;
        let v = tx.object_store(LOCAL).map_err(&err)?.get(JsValue::from_str(id)).map_err(&err)?.await.map_err(&err)?;
        Ok(v.and_then(|v| serde_wasm_bindgen::from_value(v).ok()).unwrap_or_default())
    }

    /// Pins or unpins `id`; `false` if there is no such asset.
    pub async fn set_pinned(&self, id: &str, pinned: bool) -> Result<bool, LibraryError> {
        let err = idb_err("saving a pin");
        let tx = self.tx(&[ASSETS, LOCAL], true)?;
        let key = JsValue::from_str(id);
        if tx.object_store(ASSETS).map_err(&err)?.get(key.clone()).map_err(&err)?.await.map_err(&err)?.is_none() {
            return Ok(false);
        }
        let local = tx.object_store(LOCAL).map_err(&err)?;
        let v = local.get(key.clone()).map_err(&err)?.await.map_err(&err)?;
        let mut state: LocalState = v.and_then(|v| serde_wasm_bindgen::from_value(v).ok()).unwrap_or_default();
        state.pinned = pinned;
        local.put(&state_to_js(&state)?, Some(&key)).map_err(&err)?.await.map_err(&err)?;
        finish(tx, "saving a pin").await?;
        Ok(true)
    }

    /// Records reads (`(id, ms)`) in one relaxed transaction on the `access` store alone (one
    /// put per asset, no read): losing them in a crash only makes the LRU order a little older.
    /// A read recorded just after a delete leaves a stray time, which nothing reads.
    pub async fn touch(&self, reads: &[(String, f64)]) -> Result<(), LibraryError> {
        let err = idb_err("recording reads");
        let tx = self.tx_with(&[ACCESS], true, false)?;
        let access = tx.object_store(ACCESS).map_err(&err)?;
        for (id, at) in reads {
            access.put(&JsValue::from_f64(*at), Some(&JsValue::from_str(id))).map_err(&err)?.await.map_err(&err)?;
        }
        finish(tx, "recording reads").await
    }

    /// Drops the local copy of `id` if it is still evictable and unused since `seen` (its
    /// `last_used` when the eviction was planned): the record becomes `remote` and, for
    /// IndexedDB storage, the bytes go in the same transaction. Returns the record as it
    /// was, or `None` if it changed meanwhile (read, pinned, edited, deleted).
    pub async fn evict_one(&self, id: &str, seen: f64) -> Result<Option<MediaAsset>, LibraryError> {
        let err = idb_err("evicting a local copy");
        let tx = self.tx(&[ASSETS, LOCAL, ACCESS, BLOBS], true)?;
        let key = JsValue::from_str(id);
        let assets = tx.object_store(ASSETS).map_err(&err)?;
        let Some(v) = assets.get(key.clone()).map_err(&err)?.await.map_err(&err)? else { return Ok(None) };
        let asset = from_js(id, v)?;
        let v = tx.object_store(LOCAL).map_err(&err)?.get(key.clone()).map_err(&err)?.await.map_err(&err)?;
        let mut local: LocalState = v.and_then(|v| serde_wasm_bindgen::from_value(v).ok()).unwrap_or_default();
        local.last_access = tx
            .object_store(ACCESS)
            .map_err(&err)?
            .get(key)
            .map_err(&err)?
            .await
            .map_err(&err)?
            .and_then(|v| v.as_f64());
        let entry = Entry { asset, local };
        if !entry.evictable() || entry.last_used() != seen {
            return Ok(None);
        }
        let mut remote = entry.asset.clone();
        remote.storage = StorageKind::Remote;
        assets.put(&to_js(&remote)?, None).map_err(&err)?.await.map_err(&err)?;
        if entry.asset.storage == StorageKind::Indexeddb {
            delete_bytes(&tx.object_store(BLOBS).map_err(&err)?, &entry.asset.handle_name, &err).await?;
        }
        finish(tx, "evicting a local copy").await?;
        Ok(Some(entry.asset))
    }
}

fn state_to_js(state: &LocalState) -> Result<JsValue, LibraryError> {
    state
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| LibraryError::Storage { op: "encoding local state", detail: e.to_string() })
}

/// The key range of the pieces of `key`.
fn piece_query(key: &str) -> Result<Query, LibraryError> {
    let (lower, upper) = pieces::piece_range(key);
    KeyRange::bound(&lower.into(), &upper.into(), None, None)
        .map(Query::from)
        .map_err(|e| LibraryError::Storage { op: "reading stored bytes", detail: e.to_string() })
}

/// Deletes the bytes stored under `key`: the value and any pieces of it.
async fn delete_bytes(
    store: &ObjectStore,
    key: &str,
    err: &impl Fn(idb::Error) -> LibraryError,
) -> Result<(), LibraryError> {
    store.delete(Query::from(JsValue::from_str(key))).map_err(err)?.await.map_err(err)?;
    store.delete(piece_query(key)?).map_err(err)?.await.map_err(err)
}

/// Coalesces `op` with the entry pending for `id` and writes it with a fresh tag.
async fn record_change(tx: &Transaction, id: &str, op: OutboxOp, user: Option<String>) -> Result<(), LibraryError> {
    let err = idb_err("saving to the outbox");
    let store = tx.object_store(OUTBOX).map_err(&err)?;
    // An upload is queued only by an import, of a fresh id: nothing to coalesce with, so the
    // import pays one write here, not a read and a write.
    let existing: Option<OutboxEntry> = if op == OutboxOp::Upload {
        None
    } else {
        let v = store.get(JsValue::from_str(id)).map_err(&err)?.await.map_err(&err)?;
        v.and_then(|v| serde_wasm_bindgen::from_value(v).ok())
    };
    let op = coalesce(existing.as_ref().map(|e| e.op), op);
    let (owner, upload) = existing.map_or((None, None), |e| (e.user_id, e.upload));
    let entry = OutboxEntry {
        id: id.to_owned(),
        op,
        tag: crate::platform::new_asset_id(),
        user_id: user.or(owner),
        // An edit during a resumable upload keeps what the server confirmed.
        upload: upload.filter(|_| op == OutboxOp::Upload),
    };
    store.put(&entry_to_js(&entry)?, None).map_err(&err)?.await.map_err(&err)?;
    Ok(())
}

fn entry_to_js(entry: &OutboxEntry) -> Result<JsValue, LibraryError> {
    entry
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| LibraryError::Storage { op: "encoding an outbox entry", detail: e.to_string() })
}

fn upgrade(db: &Database, old: u32) -> Result<(), idb::Error> {
    if old < 1 {
        let mut params = ObjectStoreParams::new();
        params.key_path(Some(KeyPath::new_single("id")));
        let assets = db.create_object_store(ASSETS, params)?;
        for (name, path) in [("syncStatus", "syncStatus"), ("updatedAt", "updatedAt"), ("sha256", "sha256")] {
            assets.create_index(name, KeyPath::new_single(path), Some(IndexParams::new()))?;
        }
        db.create_object_store(BLOBS, ObjectStoreParams::new())?;
    }
    if old < 2 {
        let mut params = ObjectStoreParams::new();
        params.key_path(Some(KeyPath::new_single("id")));
        db.create_object_store(OUTBOX, params)?;
        db.create_object_store(SYNC, ObjectStoreParams::new())?;
    }
    if old < 3 {
        db.create_object_store(LOCAL, ObjectStoreParams::new())?;
        db.create_object_store(ACCESS, ObjectStoreParams::new())?;
    }
    Ok(())
}

async fn finish(tx: Transaction, op: &'static str) -> Result<(), LibraryError> {
    // Keep the raw transaction: when it aborts, its `error` says why (a quota abort is
    // `QuotaExceededError`, reported only there, not by any request).
    let raw = web_sys::IdbTransaction::from(tx);
    let result = Transaction::from(raw.clone()).await.map_err(idb_err(op))?;
    if result.is_committed() {
        return Ok(());
    }
    Err(match raw.error() {
        Some(why) => LibraryError::from_dom(op, &why.name(), &why.message()),
        None => LibraryError::Storage { op, detail: "the transaction was aborted".into() },
    })
}

fn to_js(asset: &MediaAsset) -> Result<JsValue, LibraryError> {
    // JSON-compatible: plain objects (never `Map`), numbers not BigInts, so key paths
    // and indexes can read the fields.
    asset
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| LibraryError::Storage { op: "encoding a record", detail: e.to_string() })
}

fn from_js(id: &str, v: JsValue) -> Result<MediaAsset, LibraryError> {
    serde_wasm_bindgen::from_value(v)
        .map_err(|e| LibraryError::CorruptRecord { id: id.to_owned(), detail: e.to_string() })
}

/// The bytes stored under `key` in `store` (the `blobs` store of a transaction): a `Blob`, a
/// streamed import's pieces as one `Blob` in key order, or an `ArrayBuffer` (engines that
/// refuse Blob values) wrapped, with no copy in WASM.
async fn stored_in(store: &ObjectStore, key: &str) -> Result<Option<Blob>, LibraryError> {
    let err = idb_err("reading stored bytes");
    let v = store.get(JsValue::from_str(key)).map_err(&err)?.await.map_err(&err)?;
    let Some(v) = v else { return Ok(None) };
    if let Some(b) = v.dyn_ref::<Blob>() {
        return Ok(Some(b.clone()));
    }
    // Stored in pieces (a streamed import): one Blob over all of them, in key order.
    let parts: js_sys::Array = match pieces::parts_of(&v) {
        Some(n) => {
            let got = store.get_all(Some(piece_query(key)?), None).map_err(&err)?.await.map_err(&err)?;
            if got.len() != n as usize {
                return Ok(None);
            }
            got.into_iter().collect()
        }
        None => js_sys::Array::of1(&v),
    };
    // Stored as ArrayBuffers (engines that cannot store Blobs): wrap them, no copy in WASM.
    Blob::new_with_blob_sequence(&parts)
        .map(Some)
        .map_err(|e| LibraryError::Storage { op: "reading stored bytes", detail: error_parts(&e).1 })
}
