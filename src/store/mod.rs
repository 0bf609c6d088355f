//! The local library: imports bytes + record durably, reads, edits, deletes, sweeps.
//! Bytes go to OPFS, or to IndexedDB when small (`home`) or where OPFS is missing; records
//! go to the catalog.

pub mod batch;
pub mod catalog;
pub mod checksum;
pub mod connection;
pub mod copy;
pub mod download;
pub mod evict;
pub mod listing;
pub mod locks;
pub mod lost;
pub mod opfs;
pub mod outbox;
pub mod pieces;
pub mod schema;
pub mod synced;

use std::cell::{Cell, RefCell};
use std::rc::Weak;

use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Blob, File, FilePropertyBag};

use crate::asset::{
    AssetPatch, ImportOptions, ListFilter, MediaAsset, StorageInfo, StorageKind, SweepReport, SyncStatus,
};
use crate::error::LibraryError;
use crate::platform::{self, error_parts};
use crate::validate::{self, ValidationError};
use catalog::Catalog;
use copy::{copy, Budget, HashOnly, Source};
use opfs::{OpfsDir, TEMP_SUFFIX};
use outbox::OutboxOp;

/// Which backend a library should keep new bytes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum StoragePreference {
    /// OPFS when it works here, IndexedDB otherwise.
    #[default]
    Auto,
    /// OPFS or fail with `StorageUnavailableError`.
    Opfs,
    /// Always IndexedDB (what `Auto` falls back to).
    IndexedDb,
}

/// What a change event reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// A new asset was imported.
    Import,
    /// An asset's metadata changed.
    Update,
    /// An asset was deleted.
    Delete,
}

impl ChangeKind {
    /// The `detail.kind` string of the JS event.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Import => "import",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

/// One local media library (an IndexedDB database + an OPFS directory).
pub struct Library {
    name: String,
    catalog: Catalog,
    opfs: Option<OpfsDir>,
    events: web_sys::EventTarget,
    write_budget: Cell<Option<u64>>,
    /// Bytes below this go to IndexedDB with their record (`home::home`), in this context.
    small_file_bytes: Cell<f64>,
    /// Whether IndexedDB takes `Blob` values here (else bytes are stored as `ArrayBuffer`s).
    idb_blobs: bool,
    /// The sync service that downloads remote-only assets, if one runs in this context.
    downloader: RefCell<Option<Weak<dyn synced::Downloader>>>,
    /// Budget, pending reads, read leases (this context).
    book: evict::Book,
    /// Posts change events to other contexts and hears theirs (absent where BroadcastChannel is).
    channel: Option<web_sys::BroadcastChannel>,
    /// Re-dispatches `change` events from other contexts here (kept alive with the library).
    _on_message: Option<wasm_bindgen::closure::Closure<dyn FnMut(web_sys::MessageEvent)>>,
}

impl Library {
    /// Opens the library `name`, choosing the byte store per `pref` by feature detection.
    pub async fn open(name: &str, pref: StoragePreference) -> Result<Self, LibraryError> {
        let name = validate::library_name(name)?;
        let catalog = Catalog::open(&name).await?;
        let opfs = match pref {
            StoragePreference::IndexedDb => None,
            StoragePreference::Opfs => Some(OpfsDir::open(&name).await?),
            // OPFS missing or refusing (private mode, WebKitGTK, insecure context): fall back.
            StoragePreference::Auto => OpfsDir::open(&name).await.ok(),
        };
        let events = web_sys::EventTarget::new()
            .map_err(|e| LibraryError::StorageUnavailable(format!("EventTarget: {}", error_parts(&e).1)))?;
        // Probed with OPFS too: small files go to IndexedDB there (WebKitGTK's OPFS lane
        // has an IndexedDB that refuses Blobs).
        let idb_blobs = catalog.can_store_blobs().await;
        let channel = open_channel(&name);
        let on_message = channel.as_ref().map(|ch| relay_changes(ch, &events));
        Ok(Self {
            name,
            catalog,
            opfs,
            events,
            write_budget: Cell::new(None),
            small_file_bytes: Cell::new(crate::home::DEFAULT_SMALL_FILE_BYTES),
            idb_blobs,
            downloader: RefCell::new(None),
            book: evict::Book::default(),
            channel,
            _on_message: on_message,
        })
    }

    /// The library's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where new bytes go.
    pub fn storage_kind(&self) -> StorageKind {
        if self.opfs.is_some() {
            StorageKind::Opfs
        } else {
            StorageKind::Indexeddb
        }
    }

    /// Sets the small-file threshold (already checked by `home::small_file_bytes`) for the
    /// imports and downloads of this context; assets already stored stay where they are.
    pub fn set_small_file_bytes(&self, bytes: f64) {
        self.small_file_bytes.set(bytes);
    }

    /// The small-file threshold of this context.
    pub fn small_file_bytes(&self) -> f64 {
        self.small_file_bytes.get()
    }

    /// Where new bytes of `size` go here (`None`: a stream of unknown length).
    pub fn home_for(&self, size: Option<f64>) -> StorageKind {
        crate::home::home(size, self.small_file_bytes.get(), self.opfs.is_some())
    }

    /// Whether this context has sync access handles (dedicated worker): streams are written
    /// through them, and whole files where `createWritable` is missing.
    pub fn uses_sync_access_handle(&self) -> bool {
        self.opfs.as_ref().is_some_and(|o| o.mode() == opfs::WriteMode::SyncHandle)
    }

    /// The target for `addEventListener('change', ...)`.
    pub fn events(&self) -> &web_sys::EventTarget {
        &self.events
    }

    /// Test hook: makes writes fail with a real `QuotaExceededError` DOMException after
    /// `bytes` bytes, the way a full disk does part-way through an import.
    #[doc(hidden)]
    pub fn simulate_quota_after(&self, bytes: Option<u64>) {
        self.write_budget.set(bytes);
    }

    /// The catalog, for tests that plant raw records.
    #[doc(hidden)]
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Imports `source` (a `File`, a `Blob`, or a `ReadableStream` of bytes): bytes first, then
    /// the record. Durable when it returns; on failure nothing is left behind and nothing
    /// already stored is touched.
    pub async fn import(&self, source: &JsValue, opts: ImportOptions) -> Result<MediaAsset, LibraryError> {
        let (src, meta) = prepare(source, &opts)?;
        let id = platform::new_asset_id();
        // A full disk: with a budget set, drop synced copies (oldest first) and retry once.
        let asset = self.retrying_after_quota(src.repeatable_size(), || self.store_new(&id, &meta, src)).await?;
        self.emit(ChangeKind::Import, &asset.id);
        // The import is durable; a failed budget check must not fail it (the next one retries).
        let _ = self.after_growth(asset.size).await;
        Ok(asset)
    }

    /// Writes the bytes and then the record of a new asset; on failure nothing is left.
    async fn store_new(&self, id: &str, meta: &Meta, src: Source<'_>) -> Result<MediaAsset, LibraryError> {
        let written = self.write_bytes(id, src).await?;
        let asset = new_record(id, meta, &written, platform::now_ms());
        if let Err(e) = self.catalog.put(&asset, written.stored.as_ref(), Some(OutboxOp::Upload)).await {
            self.discard_bytes(id, written.storage).await;
            return Err(e);
        }
        Ok(asset)
    }

    /// Writes the bytes of a new asset `id` (no record yet); on failure nothing is left.
    pub(crate) async fn write_bytes(&self, id: &str, src: Source<'_>) -> Result<Written, LibraryError> {
        let budget = self.write_budget.get();
        // No checksum here: hashing in WASM would slow the import on the app's thread (see
        // `checksum`); the sync service computes it before the first upload.
        let home = self.home_for(src.repeatable_size());
        let (size, storage, stored) = match (&self.opfs, src) {
            (Some(dir), src) if home == StorageKind::Opfs => {
                (dir.write_new(id, src, budget, None).await?, StorageKind::Opfs, None)
            }
            (_, Source::Blob(blob)) => {
                // Read through once (no WASM copy) so an unreadable source fails here, typed,
                // before anything is stored; the simulated quota applies to the same stream.
                let read = match budget {
                    Some(left) => copy(src, &mut Budget { inner: HashOnly, left }, false).await,
                    None => copy(src, &mut HashOnly, false).await,
                };
                let size = read.map_err(opfs::copy_err)?.0;
                (size, StorageKind::Indexeddb, Some(self.idb_value(blob).await?))
            }
            (_, Source::Stream(_)) => {
                // In pieces, each committed as it fills; the manifest goes in with the record.
                let sink = pieces::PieceSink::new(self.catalog.db(), id, self.idb_blobs);
                let (read, parts) = match budget {
                    Some(left) => {
                        let mut sink = Budget { inner: sink, left };
                        (copy(src, &mut sink, false).await, sink.inner.parts)
                    }
                    None => {
                        let mut sink = sink;
                        (copy(src, &mut sink, false).await, sink.parts)
                    }
                };
                let size = read.map_err(opfs::copy_err)?.0;
                (size, StorageKind::Indexeddb, Some(pieces::manifest(parts)))
            }
        };
        Ok(Written { size, storage, stored })
    }

    /// Removes the bytes of a new asset whose record could not be written (`storage`: where
    /// `write_bytes` put them; a small Blob was not stored yet, it goes in with the record).
    pub(crate) async fn discard_bytes(&self, id: &str, storage: StorageKind) {
        match (&self.opfs, storage) {
            (Some(dir), StorageKind::Opfs) => drop(dir.remove(id).await),
            _ => drop(pieces::delete_pieces(&self.catalog.db(), id).await),
        }
    }

    /// The value that stores `blob` in IndexedDB: the Blob itself, or (only on engines that
    /// refuse Blobs there) its bytes as one `ArrayBuffer`, through JS memory, never WASM memory.
    async fn idb_value(&self, blob: &Blob) -> Result<JsValue, LibraryError> {
        if self.idb_blobs {
            return Ok(blob.into());
        }
        wasm_bindgen_futures::JsFuture::from(blob.array_buffer()).await.map_err(|e| {
            let (name, msg) = error_parts(&e);
            LibraryError::from_dom("reading the file", &name, &msg)
        })
    }

    /// Every asset matching `filter`, oldest first. A corrupt record fails the call with
    /// `CorruptRecordError` naming it, rather than vanishing from the list.
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<MediaAsset>, LibraryError> {
        let mut out = Vec::new();
        for loaded in self.catalog.all().await? {
            let asset = loaded?;
            if filter.matches(&asset) {
                out.push(asset);
            }
        }
        out.sort_by(|a, b| a.created_at.total_cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The asset `id`, or `NotFoundError`.
    pub async fn get(&self, id: &str) -> Result<MediaAsset, LibraryError> {
        let id = validate::asset_id(id)?;
        self.catalog.get(&id).await?.ok_or(LibraryError::NotFound(id))
    }

    /// The asset's bytes as a `File` carrying its name and type (no copy: it wraps the
    /// stored OPFS file or IndexedDB blob).
    /// With a budget set, the read counts for the LRU order and leases the bytes for a few
    /// seconds (`evict::READ_LEASE_MS`), in every context, so the `File` can still be read.
    pub async fn file(&self, id: &str) -> Result<File, LibraryError> {
        let id = validate::asset_id(id)?;
        // The lease and the record are fetched together (a lock request is an IPC round trip
        // on the first read of an asset); an eviction that slipped in between shows as missing
        // bytes under a record read before it, and the record is read again.
        let ((), first) = futures_util::future::join(self.lease(&id), self.catalog.get_with_blob(&id)).await;
        let (found, blob) = first?;
        let mut asset = found.ok_or_else(|| LibraryError::NotFound(id.clone()))?;
        // A small asset's bytes came with its record (one transaction).
        if let Some(b) = blob.filter(|b| b.size() == asset.size) {
            let file = wrap_file(&asset, &b)?;
            self.note_access(&id);
            return Ok(file);
        }
        for attempt in 0..3 {
            if asset.storage == StorageKind::Remote {
                self.download_via_service(&asset.id).await?;
                asset = self.get(&id).await?;
            }
            match self.file_of(&asset).await {
                Err(LibraryError::BytesMissing(_)) if attempt == 0 && self.budget().is_some() => {
                    asset = self.get(&id).await?;
                }
                // The local copy vanished under the record (cleared storage): what the server
                // has downloads again, what it never had is lost (`lost::Fate`).
                Err(LibraryError::BytesMissing(_)) if attempt < 2 => {
                    asset = self.settle_missing(&id).await?;
                    if asset.storage != StorageKind::Remote {
                        return Err(LibraryError::LocalBytesLost(id));
                    }
                }
                other => {
                    let file = other?;
                    self.note_access(&id);
                    return Ok(file);
                }
            }
        }
        Err(LibraryError::BytesMissing(id))
    }

    /// The bytes of a record already read, as a `File` carrying its name, type and import time.
    pub async fn file_of(&self, asset: &MediaAsset) -> Result<File, LibraryError> {
        wrap_file(asset, &self.stored_bytes(asset).await?)
    }

    /// The stored bytes of a record already read, unwrapped (the OPFS `File` or the IndexedDB
    /// `Blob`): no catalog lookup for OPFS storage, and no `File` constructed, which costs
    /// ~1 ms of the calling thread per call in Chromium (measured in the sync bench's profile).
    pub async fn stored_bytes(&self, asset: &MediaAsset) -> Result<Blob, LibraryError> {
        let stored: Option<Blob> = match asset.storage {
            StorageKind::Remote => return Err(LibraryError::NotDownloaded(asset.id.clone())),
            StorageKind::Opfs => match &self.opfs {
                Some(dir) => dir.file(&asset.handle_name).await?.map(Into::into),
                None => {
                    // Written by a context with OPFS; try opening it from here.
                    match OpfsDir::open(&self.name).await {
                        Ok(dir) => dir.file(&asset.handle_name).await?.map(Into::into),
                        Err(e) => return Err(e),
                    }
                }
            },
            StorageKind::Indexeddb => self.catalog.blob(&asset.handle_name).await?,
        };
        // Bytes of another length than the record's are not the asset's (a file recreated
        // empty, a store half cleared): treated as missing, never read, never uploaded.
        stored.filter(|b| b.size() == asset.size).ok_or_else(|| LibraryError::BytesMissing(asset.id.clone()))
    }

    /// The asset's SHA-256 (lowercase hex): the stored one, or computed from the local bytes
    /// and stored on the record (without changing `updatedAt`: the content is the same).
    pub async fn checksum(&self, id: &str) -> Result<String, LibraryError> {
        let asset = self.get(id).await?;
        if let Some(sha) = asset.sha256 {
            return Ok(sha);
        }
        let sha = checksum::sha256_of(&self.stored_bytes(&asset).await?).await?;
        let stored = self
            .catalog
            .update_record(&asset.id, |r| r.sha256.is_none() && r.sha256.replace(sha.clone()).is_none())
            .await?;
        if stored.is_some() {
            // Marked as the library's own write, like sync results: not a user edit to upload.
            self.emit_change(ChangeKind::Update, &asset.id, true);
        }
        Ok(sha)
    }

    /// Edits user metadata; bumps `updatedAt` and marks the asset for re-sync.
    pub async fn update(&self, id: &str, patch: AssetPatch) -> Result<MediaAsset, LibraryError> {
        let mut asset = self.get(id).await?;
        if let Some(n) = &patch.name {
            asset.name = validate::display_name(n)?;
        }
        if let Some(t) = &patch.tags {
            asset.tags = validate::tags(t)?;
        }
        asset.updated_at = platform::now_ms().max(asset.updated_at + 1.0);
        if asset.sync_status != SyncStatus::Syncing {
            asset.sync_status = SyncStatus::Pending;
            asset.sync_error = None;
        }
        self.catalog.put(&asset, None, Some(OutboxOp::UpdateMeta)).await?;
        self.emit(ChangeKind::Update, &asset.id);
        Ok(asset)
    }

    /// Deletes the asset: the record first (so no record ever points at missing bytes),
    /// then the OPFS file. `NotFoundError` if there is no such asset (a second delete).
    pub async fn delete(&self, id: &str) -> Result<(), LibraryError> {
        let asset = self.get(id).await?;
        let blob_key = (asset.storage == StorageKind::Indexeddb).then_some(asset.handle_name.as_str());
        // An asset no user has claimed was never sent to a server (the sync service claims
        // it in the catalog before uploading), so only claimed ones queue a server delete.
        let sync_as = asset.user_id.clone().map(Some);
        self.catalog.delete(&asset.id, blob_key, sync_as).await?;
        if asset.storage == StorageKind::Opfs {
            if let Some(dir) = &self.opfs {
                // A failure here leaves an orphan file, which the next sweep removes.
                let _ = dir.remove(&asset.handle_name).await;
            }
        }
        self.emit(ChangeKind::Delete, &asset.id);
        Ok(())
    }

    /// Removes stored bytes that no record points at, temp files of unfinished imports and
    /// pieces of downloads whose asset is no longer remote, when older than `grace_ms`
    /// (another tab may be importing right now); reports records
    /// whose bytes are missing without deleting them.
    pub async fn sweep(&self, grace_ms: f64) -> Result<SweepReport, LibraryError> {
        let records: Vec<MediaAsset> = self.catalog.all().await?.into_iter().filter_map(Result::ok).collect();
        let has_record = |handle: &str| records.iter().any(|a| a.handle_name == handle);
        let has_local_record =
            |handle: &str| records.iter().any(|a| a.handle_name == handle && a.storage != StorageKind::Remote);
        let cutoff = platform::now_ms() - grace_ms;
        let mut report = SweepReport::default();
        let mut opfs_names = Vec::new();
        if let Some(dir) = &self.opfs {
            for name in dir.names().await? {
                // A piece of a download is kept while its asset is still remote (it resumes).
                let piece_of = |a: &MediaAsset| download::piece_offset(&a.handle_name, &name).is_some();
                let stale_piece = name.contains(download::PIECE_MARK)
                    && !records.iter().any(|a| a.storage == StorageKind::Remote && piece_of(a));
                let is_temp = name.ends_with(TEMP_SUFFIX) || name.ends_with(".crswap") || stale_piece;
                // Also the file of a record whose copy was evicted or freed (`remote`) when the
                // removal after the commit failed or crashed.
                let is_orphan = !is_temp && validate::asset_id(&name).is_ok() && !has_local_record(&name);
                if !is_temp && !is_orphan {
                    opfs_names.push(name);
                    continue;
                }
                // Only leftovers pay for a `getFile` (to read their age), not every asset.
                let old_enough = dir.modified(&name).await?.is_some_and(|m| m <= cutoff);
                if old_enough && dir.remove(&name).await? {
                    if is_temp { &mut report.removed_temp } else { &mut report.removed_orphans }.push(name);
                }
            }
        }
        let blob_keys = self.catalog.keys(catalog::BLOBS).await?;
        for key in &blob_keys {
            match pieces::owner_of_piece(key) {
                // A piece of a streamed import: an orphan once its import is old (the id's
                // UUID v7 time) and left no record; another tab may be streaming it right now.
                Some(owner) => {
                    let old = validate::uuid_v7_ms(owner).is_none_or(|t| t <= cutoff);
                    if !has_record(owner) && old && !report.removed_temp.iter().any(|t| t == owner) {
                        self.catalog.delete_blob(owner).await?;
                        report.removed_temp.push(owner.to_owned());
                    }
                }
                None if !has_record(key) => {
                    self.catalog.delete_blob(key).await?;
                    report.removed_orphans.push(key.clone());
                }
                None => {}
            }
        }
        for a in &records {
            let present = match a.storage {
                StorageKind::Opfs => self.opfs.is_none() || opfs_names.contains(&a.handle_name),
                StorageKind::Indexeddb => blob_keys.contains(&a.handle_name),
                StorageKind::Remote => true,
            };
            if !present {
                // Settled at once (a lost copy is never a deletion, see `lost`), so a sync
                // never tries to upload bytes that are not there.
                self.settle_missing(&a.id).await?;
                report.missing_bytes.push(a.id.clone());
            }
        }
        Ok(report)
    }

    /// Usage and quota for the origin, and whether storage is persistent.
    pub async fn estimate(&self) -> Result<StorageInfo, LibraryError> {
        let storage = self.storage_kind();
        let Some(sm) = platform::storage_manager() else {
            return Err(LibraryError::StorageUnavailable(
                "navigator.storage is missing, so usage cannot be estimated here".into(),
            ));
        };
        let est = platform::call_async(&sm, "estimate", &[])
            .await
            .map_err(|e| LibraryError::Storage { op: "estimating storage", detail: error_parts(&e).1 })?;
        let num = |k| platform::get(&est, k).as_f64().unwrap_or(0.0);
        let persisted =
            platform::call_async(&sm, "persisted", &[]).await.ok().and_then(|v| v.as_bool()).unwrap_or(false);
        let (budget, local) = self.budget_state(num("quota")).await?;
        Ok(StorageInfo {
            usage: num("usage"),
            quota: num("quota"),
            persisted,
            storage,
            small_file_bytes: self.small_file_bytes.get(),
            budget,
            local_bytes: local.local,
            evictable_bytes: local.evictable,
            pinned_bytes: local.pinned,
        })
    }

    /// Asks the browser to keep this origin's data under storage pressure; `false` if refused
    /// or unsupported (the library works either way).
    pub async fn request_persistence(&self) -> bool {
        match platform::storage_manager() {
            Some(sm) => platform::call_async(&sm, "persist", &[]).await.ok().and_then(|v| v.as_bool()).unwrap_or(false),
            None => false,
        }
    }

    /// Closes the catalog connection.
    pub fn close(&self) {
        if let Some(ch) = &self.channel {
            ch.set_onmessage(None);
            ch.close();
        }
        self.catalog.close();
    }

    fn emit(&self, kind: ChangeKind, id: &str) {
        self.emit_change(kind, id, false);
    }

    /// Dispatches `change` here and posts it to the library's BroadcastChannel, so sync
    /// services and UIs in other tabs and workers see it. `sync` marks changes the sync
    /// service made itself (it skips those).
    pub(crate) fn emit_change(&self, kind: ChangeKind, id: &str, sync: bool) {
        self.emit_changes(kind, std::slice::from_ref(&id), sync);
    }

    /// `emit_change` for several records at once: a `change` event here for each, and one
    /// message on the channel for all of them (`{ t: "changes", kind, ids, sync }`), which
    /// other contexts turn back into one event each. The sync service's write-back changes
    /// hundreds of records at a time; a message each cost every context on the channel a
    /// task and a parse per record.
    pub(crate) fn emit_changes<S: AsRef<str>>(&self, kind: ChangeKind, ids: &[S], sync: bool) {
        for id in ids {
            platform::dispatch(&self.events, "change", &change_detail(kind.as_str(), id.as_ref(), sync));
        }
        let Some(ch) = &self.channel else { return };
        // As JSON text: every engine's BroadcastChannel carries strings; the sync service
        // parses these with serde (`service::Wire::Change`, `Wire::Changes`).
        let msg = match ids {
            [] => return,
            [id] => {
                let msg = change_detail(kind.as_str(), id.as_ref(), sync);
                let _ = js_sys::Reflect::set(&msg, &"t".into(), &"change".into());
                msg
            }
            _ => {
                let msg = js_sys::Object::new();
                let list: js_sys::Array = ids.iter().map(|id| JsValue::from_str(id.as_ref())).collect();
                let _ = js_sys::Reflect::set(&msg, &"t".into(), &"changes".into());
                let _ = js_sys::Reflect::set(&msg, &"kind".into(), &kind.as_str().into());
                let _ = js_sys::Reflect::set(&msg, &"ids".into(), &list);
                let _ = js_sys::Reflect::set(&msg, &"sync".into(), &sync.into());
                msg
            }
        };
        if let Ok(text) = js_sys::JSON::stringify(&msg) {
            let _ = ch.post_message(&text);
        }
    }
}

impl Drop for Library {
    /// The BroadcastChannel lives on in JS after this object: detach the listener (its closure
    /// is freed with us) and close it, or every later message on the channel would call a
    /// freed closure (a thrown error each time) and keep the channel open for good.
    fn drop(&mut self) {
        if let Some(ch) = &self.channel {
            ch.set_onmessage(None);
            ch.close();
        }
    }
}

/// Stored bytes as a `File` carrying the asset's name, type and import time (no copy).
fn wrap_file(asset: &MediaAsset, bytes: &Blob) -> Result<File, LibraryError> {
    let parts: js_sys::Array = std::iter::once(JsValue::from(bytes)).collect();
    let bag = FilePropertyBag::new();
    bag.set_type(&asset.mime_type);
    bag.set_last_modified(asset.created_at);
    File::new_with_blob_sequence_and_options(&parts, &asset.name, &bag)
        .map_err(|e| LibraryError::Storage { op: "wrapping stored bytes", detail: error_parts(&e).1 })
}

/// `{ kind, id, sync }`: the detail of a `change` event.
fn change_detail(kind: &str, id: &str, sync: bool) -> js_sys::Object {
    let detail = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&detail, &"kind".into(), &kind.into());
    let _ = js_sys::Reflect::set(&detail, &"id".into(), &id.into());
    let _ = js_sys::Reflect::set(&detail, &"sync".into(), &sync.into());
    detail
}

/// Dispatches `change` messages another context posted on `ch` as local `change` events
/// (`detail.remote: true`), so a UI re-renders when a worker imports or syncs.
fn relay_changes(
    ch: &web_sys::BroadcastChannel,
    events: &web_sys::EventTarget,
) -> wasm_bindgen::closure::Closure<dyn FnMut(web_sys::MessageEvent)> {
    let events = events.clone();
    let cb =
        wasm_bindgen::closure::Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
            let Some(text) = ev.data().as_string() else { return };
            // Sync status messages share the channel; only `change` ones are relayed.
            let Ok(msg) = js_sys::JSON::parse(&text) else { return };
            if let Some(detail) = evict::relayed_evict(&msg) {
                platform::dispatch(&events, "evict", &detail);
                return;
            }
            let text_of = |k: &str| platform::get(&msg, k).as_string().unwrap_or_default();
            let ids: Vec<String> = match text_of("t").as_str() {
                "change" => vec![text_of("id")],
                "changes" => {
                    js_sys::Array::from(&platform::get(&msg, "ids")).iter().filter_map(|v| v.as_string()).collect()
                }
                _ => return,
            };
            let sync = platform::get(&msg, "sync").as_bool().unwrap_or(false);
            let kind = text_of("kind");
            for id in ids {
                let detail = change_detail(&kind, &id, sync);
                let _ = js_sys::Reflect::set(&detail, &"remote".into(), &true.into());
                platform::dispatch(&events, "change", &detail);
            }
        });
    ch.set_onmessage(Some(cb.as_ref().unchecked_ref()));
    cb
}

/// The BroadcastChannel name of library `name` (change events and sync status).
pub fn channel_name(name: &str) -> String {
    format!("opfs-media:{name}")
}

/// A BroadcastChannel, where the engine has them (all current ones; feature-detected anyway).
pub fn open_channel(name: &str) -> Option<web_sys::BroadcastChannel> {
    if platform::get(&platform::global(), "BroadcastChannel").is_undefined() {
        return None;
    }
    web_sys::BroadcastChannel::new(&channel_name(name)).ok()
}

/// The value as an import source (a `Blob`, or anything with a `getReader()`: a
/// `ReadableStream`, from this realm or another), or a clear error naming what it was.
fn import_source(v: &JsValue) -> Result<Source<'_>, LibraryError> {
    if let Some(b) = v.dyn_ref::<Blob>() {
        return Ok(Source::Blob(b));
    }
    if platform::has_method(v, "getReader") {
        return Ok(Source::Stream(v.unchecked_ref()));
    }
    let what = if v.is_null() {
        "null".to_owned()
    } else if v.is_undefined() {
        "undefined".to_owned()
    } else {
        v.js_typeof().as_string().unwrap_or_default()
    };
    Err(ValidationError::NotABlob(what).into())
}

/// Display name, MIME type and tags of a new asset, validated.
pub(crate) type Meta = (String, String, Vec<String>);

/// Bytes of a new asset, written but not yet recorded.
pub(crate) struct Written {
    /// Bytes written.
    pub size: f64,
    /// Where they went.
    pub storage: StorageKind,
    /// For IndexedDB storage, the value to put in `blobs` with the record.
    pub stored: Option<JsValue>,
}

/// Checks an import's source and options: the source to read and the record's metadata.
pub(crate) fn prepare<'a>(source: &'a JsValue, opts: &ImportOptions) -> Result<(Source<'a>, Meta), LibraryError> {
    let src = import_source(source)?;
    let (file_name, source_type) = match src {
        Source::Blob(b) => (source.dyn_ref::<File>().map(File::name), b.type_()),
        Source::Stream(_) => (None, String::new()),
    };
    let name = match (&opts.name, &file_name) {
        (Some(n), _) => validate::display_name(n)?,
        (None, Some(n)) => validate::display_name(n)?,
        (None, None) => "untitled".to_owned(),
    };
    let mime_type = validate::mime_type(opts.mime_type.as_deref().unwrap_or(&source_type))?;
    let tags = validate::tags(opts.tags.as_deref().unwrap_or_default())?;
    Ok((src, (name, mime_type, tags)))
}

/// The record of a new asset whose bytes are written.
pub(crate) fn new_record(id: &str, (name, mime_type, tags): &Meta, written: &Written, now: f64) -> MediaAsset {
    MediaAsset {
        handle_name: id.to_owned(),
        id: id.to_owned(),
        name: name.clone(),
        mime_type: mime_type.clone(),
        size: written.size,
        created_at: now,
        updated_at: now,
        sha256: None,
        tags: tags.clone(),
        storage: written.storage,
        sync_status: SyncStatus::Pending,
        cloud_id: None,
        cloud_url: None,
        user_id: None,
        cloud_version: None,
        sync_error: None,
    }
}
