//! Storage that manages itself: the local budget, LRU eviction of synced copies (decided by
//! `crate::budget`), batched read bookkeeping, pins, read leases and quota recovery.
//!
//! Multi-context safety rests on Web Locks: eviction runs under `opfs-media:<lib>:evict`
//! (one context at a time) and drops an asset only if it can take that asset's lock
//! (`opfs-media:<lib>:asset:<id>`) exclusively at once; readers and downloaders hold it shared.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use serde::Serialize;
use tsify::Tsify;
use wasm_bindgen::{JsCast, JsValue};

use super::locks::{self, Held};
use super::{ChangeKind, Library};
use crate::asset::StorageKind;
use crate::budget::{self, BudgetSpec};
use crate::error::LibraryError;
use crate::platform;

/// How long a read keeps its asset's bytes safe from eviction after `getFile` resolved, so
/// the app can still decode the `File` it got (leases are extended by further reads).
pub const READ_LEASE_MS: f64 = 5_000.0;
/// Reads are written to IndexedDB at most this often, in one transaction.
pub const ACCESS_FLUSH_MS: f64 = 2_000.0;
/// A read within this long of the last one recorded for the asset (in this context) is not
/// written again: LRU order to the half minute, and one write per asset, not per read.
pub const ACCESS_RESOLUTION_MS: f64 = 30_000.0;
/// How long the cached usage is trusted before it is read again (imports in other contexts).
const USAGE_TTL_MS: f64 = 5_000.0;

/// What an eviction dropped.
#[derive(Tsify, Serialize, Default, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EvictReport {
    /// Ids whose local copies were dropped (now `storage: 'remote'`), least recently used first.
    pub evicted: Vec<String>,
    /// Bytes freed.
    pub bytes: f64,
    /// `budget` (over the budget) or `quota` (the browser's quota was hit).
    pub reason: String,
}

/// A read lease: the shared lock of one asset, held until `until`.
struct Lease {
    _held: Held,
    until: f64,
}

/// The library's budget state in this context.
#[derive(Default)]
pub struct Book {
    budget: Cell<Option<BudgetSpec>>,
    /// Reads not yet written: id -> ms.
    pending: Rc<RefCell<HashMap<String, f64>>>,
    /// The last read recorded per asset in this context: id -> ms.
    recorded: RefCell<HashMap<String, f64>>,
    flush_armed: Rc<Cell<bool>>,
    leases: Rc<RefCell<HashMap<String, Lease>>>,
    /// Whether the one timer that ends expired leases is running.
    janitor: Rc<Cell<bool>>,
    /// (local bytes, budget bytes, when read).
    usage: Cell<Option<(f64, Option<f64>, f64)>>,
    /// `READ_LEASE_MS`, unless a test shortened it.
    lease_ms: Cell<Option<f64>>,
}

/// The lock every reader, downloader and evictor of one asset takes.
pub fn asset_lock(library: &str, id: &str) -> String {
    format!("opfs-media:{library}:asset:{id}")
}

impl Library {
    /// Sets (or, with `None`, removes) this context's local budget. Without one nothing is
    /// ever evicted and reads are not tracked.
    pub fn set_budget(&self, spec: Option<BudgetSpec>) {
        self.book.budget.set(spec);
        self.book.usage.set(None);
    }

    /// Test hook: shortens the read lease (tests wait for it to run out).
    #[doc(hidden)]
    pub fn set_read_lease_ms(&self, ms: f64) {
        self.book.lease_ms.set(Some(ms));
    }

    /// This context's budget.
    pub fn budget(&self) -> Option<BudgetSpec> {
        self.book.budget.get()
    }

    /// Holds `id`'s bytes against eviction (in every context) until the guard is dropped:
    /// what a download or a long read takes around its work. `None` where Web Locks are missing.
    pub async fn hold_asset(&self, id: &str) -> Option<Held> {
        locks::acquire(&asset_lock(&self.name, id), false, false).await
    }

    /// Before a read: a lease on the asset's lock (taken once, extended by later reads).
    pub(super) async fn lease(&self, id: &str) {
        if self.book.budget.get().is_none() || !locks::available() {
            return;
        }
        let until = platform::now_ms() + self.book.lease_ms.get().unwrap_or(READ_LEASE_MS);
        if let Some(l) = self.book.leases.borrow_mut().get_mut(id) {
            l.until = until;
            return;
        }
        let Some(held) = self.hold_asset(id).await else { return };
        self.book.leases.borrow_mut().insert(id.to_owned(), Lease { _held: held, until });
        if self.book.janitor.replace(true) {
            return;
        }
        // One timer for every lease (not one per read): ends the expired ones, stops when none is left.
        let (leases, janitor) = (self.book.leases.clone(), self.book.janitor.clone());
        let tick = self.book.lease_ms.get().unwrap_or(READ_LEASE_MS) / 4.0;
        wasm_bindgen_futures::spawn_local(async move {
            loop {
                platform::sleep(tick).await;
                let now = platform::now_ms();
                leases.borrow_mut().retain(|_, l| l.until > now);
                if leases.borrow().is_empty() {
                    janitor.set(false);
                    return;
                }
            }
        });
    }

    /// After a read: remembers it, written with others in one transaction within `ACCESS_FLUSH_MS`.
    pub(super) fn note_access(&self, id: &str) {
        if self.book.budget.get().is_none() {
            return;
        }
        let now = platform::now_ms();
        {
            let mut recorded = self.book.recorded.borrow_mut();
            match recorded.get_mut(id) {
                Some(at) if now - *at < ACCESS_RESOLUTION_MS => return,
                Some(at) => *at = now,
                None => drop(recorded.insert(id.to_owned(), now)),
            }
        }
        self.book.pending.borrow_mut().insert(id.to_owned(), now);
        if self.book.flush_armed.replace(true) {
            return;
        }
        let (pending, armed, catalog) =
            (self.book.pending.clone(), self.book.flush_armed.clone(), self.catalog.share());
        wasm_bindgen_futures::spawn_local(async move {
            platform::sleep(ACCESS_FLUSH_MS).await;
            armed.set(false);
            let reads: Vec<(String, f64)> = pending.borrow_mut().drain().collect();
            // Lost reads only age the LRU order; the library may have been closed meanwhile.
            let _ = catalog.touch(&reads).await;
        });
    }

    /// Writes the reads not yet written (before planning an eviction).
    pub async fn flush_access(&self) -> Result<(), LibraryError> {
        let reads: Vec<(String, f64)> = self.book.pending.borrow_mut().drain().collect();
        if reads.is_empty() {
            return Ok(());
        }
        self.catalog.touch(&reads).await
    }

    /// Pins (or unpins) `id`: a pinned asset's local copy is never evicted. Persisted.
    pub async fn set_pinned(&self, id: &str, pinned: bool) -> Result<(), LibraryError> {
        let id = crate::validate::asset_id(id)?;
        if !self.catalog.set_pinned(&id, pinned).await? {
            return Err(LibraryError::NotFound(id));
        }
        self.emit(ChangeKind::Update, &id);
        Ok(())
    }

    /// Ids of the pinned assets.
    pub async fn pinned_ids(&self) -> Result<Vec<String>, LibraryError> {
        let entries = self.catalog.entries().await?;
        Ok(entries.into_iter().filter(|e| e.local.pinned).map(|e| e.asset.id).collect())
    }

    /// The budget in bytes (`None` without one, or a quota fraction where the quota is unknown).
    async fn budget_bytes(&self) -> Option<f64> {
        let spec = self.book.budget.get()?;
        let quota = match spec.quota_fraction {
            Some(_) => self.quota().await,
            None => None,
        };
        spec.bytes(quota)
    }

    async fn quota(&self) -> Option<f64> {
        let sm = platform::storage_manager()?;
        let est = platform::call_async(&sm, "estimate", &[]).await.ok()?;
        platform::get(&est, "quota").as_f64()
    }

    /// After bytes were added here: evicts down to the budget if they no longer fit.
    pub(super) async fn after_growth(&self, added: f64) -> Result<(), LibraryError> {
        if self.book.budget.get().is_none() {
            return Ok(());
        }
        let now = platform::now_ms();
        let (local, budget) = match self.book.usage.get() {
            Some((local, budget, at)) if now - at < USAGE_TTL_MS => (local + added, budget),
            _ => {
                let entries = self.catalog.entries().await?;
                (budget::usage(&entries).local, self.budget_bytes().await)
            }
        };
        self.book.usage.set(Some((local, budget, now)));
        match budget {
            Some(max) if local > max => self.evict(Some(max), 0.0, "budget").await.map(drop),
            _ => Ok(()),
        }
    }

    /// For a downloader that commits bytes itself rather than through `store_download` (a
    /// chunked, resumable one): call after the record says the bytes are here. Counts the
    /// download as a read and enforces the budget (never failing: the download is durable).
    pub async fn downloaded(&self, id: &str, bytes: f64) {
        self.note_access(id);
        let _ = self.after_growth(bytes).await;
    }

    /// Evicts down to the budget now (JS `evict()`); nothing without a budget.
    pub async fn evict_to_budget(&self) -> Result<EvictReport, LibraryError> {
        match self.budget_bytes().await {
            Some(max) => self.evict(Some(max), 0.0, "budget").await,
            None => Ok(EvictReport { reason: "budget".into(), ..Default::default() }),
        }
    }

    /// After the browser's quota refused a write of `need` bytes: frees at least that much
    /// from synced copies, oldest first, if this context has a budget (else nothing: the
    /// default never evicts). Returns whether anything was freed (worth one retry).
    pub async fn recover_quota(&self, need: f64) -> Result<bool, LibraryError> {
        if self.book.budget.get().is_none() {
            return Ok(false);
        }
        Ok(!self.evict(None, need.max(1.0), "quota").await?.evicted.is_empty())
    }

    /// Runs `attempt`; if the browser's quota refuses it and `need` is known (`None`: the write
    /// cannot be repeated, e.g. from a stream), frees synced copies (`recover_quota`) and runs
    /// it once more. Otherwise the `QuotaExceededError` stands.
    pub(crate) async fn retrying_after_quota<T, F, Fut>(&self, need: Option<f64>, attempt: F) -> Result<T, LibraryError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, LibraryError>>,
    {
        match attempt().await {
            Err(LibraryError::QuotaExceeded(op)) => match need {
                Some(need) if self.recover_quota(need).await? => attempt().await,
                _ => Err(LibraryError::QuotaExceeded(op)),
            },
            other => other,
        }
    }

    /// Drops local copies of synced, unpinned, unused assets, least recently used first, until
    /// the local bytes fit `max_local` and `free_at_least` bytes are freed. One context at a time.
    pub async fn evict(
        &self,
        max_local: Option<f64>,
        free_at_least: f64,
        reason: &str,
    ) -> Result<EvictReport, LibraryError> {
        let _one_at_a_time = locks::acquire(&format!("opfs-media:{}:evict", self.name), true, false).await;
        self.flush_access().await?;
        let entries = self.catalog.entries().await?;
        let leased = self.book.leases.borrow().keys().cloned().collect::<Vec<_>>();
        let plan = budget::plan(&entries, max_local, free_at_least, &|id| leased.iter().any(|l| l == id));
        let mut report = EvictReport { reason: reason.to_owned(), ..Default::default() };
        for id in plan {
            let Some(entry) = entries.iter().find(|e| e.asset.id == id) else { continue };
            // Someone in some context reads, downloads or holds it: leave it.
            let guard = locks::acquire(&asset_lock(&self.name, &id), true, true).await;
            if guard.is_none() && locks::available() {
                continue;
            }
            let Some(was) = self.catalog.evict_one(&id, entry.last_used()).await? else { continue };
            if was.storage == StorageKind::Opfs {
                // A failure leaves a file the next sweep removes (its record is remote).
                match &self.opfs {
                    Some(dir) => drop(dir.remove(&was.handle_name).await),
                    None => {
                        if let Ok(dir) = super::opfs::OpfsDir::open(&self.name).await {
                            let _ = dir.remove(&was.handle_name).await;
                        }
                    }
                }
            }
            drop(guard);
            report.bytes += was.size;
            report.evicted.push(id);
        }
        let local = budget::usage(&entries).local - report.bytes;
        self.book.usage.set(Some((local, max_local, platform::now_ms())));
        if !report.evicted.is_empty() {
            for id in &report.evicted {
                self.emit_change(ChangeKind::Update, id, true);
            }
            self.emit_evict(&report);
        }
        Ok(report)
    }

    /// The `evict` event here, and to other contexts over the BroadcastChannel.
    fn emit_evict(&self, report: &EvictReport) {
        let Ok(detail) = crate::platform::to_value(report) else { return };
        crate::platform::dispatch(&self.events, "evict", &detail);
        if let Some(ch) = &self.channel {
            let _ = js_sys::Reflect::set(&detail, &"t".into(), &"evict".into());
            if let Ok(text) = js_sys::JSON::stringify(&detail) {
                let _ = ch.post_message(&text);
            }
        }
    }

    /// The budget's state for `estimate()`: (budget, local, evictable, pinned) bytes.
    pub(super) async fn budget_state(&self, quota: f64) -> Result<(Option<f64>, budget::Usage), LibraryError> {
        let entries = self.catalog.entries().await?;
        let budget = self.book.budget.get().and_then(|s| s.bytes(Some(quota)));
        Ok((budget, budget::usage(&entries)))
    }
}

/// `Some(JsValue)` for the detail of a relayed `evict` message (`t: "evict"`), else `None`.
pub(super) fn relayed_evict(msg: &JsValue) -> Option<JsValue> {
    (platform::get(msg, "t").as_string().as_deref() == Some("evict")).then(|| {
        let _ = js_sys::Reflect::delete_property(msg.unchecked_ref::<js_sys::Object>(), &"t".into());
        let _ = js_sys::Reflect::set(msg, &"remote".into(), &true.into());
        msg.clone()
    })
}
