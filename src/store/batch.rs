//! Batch imports: each file's bytes written (a few at once), then the records of all of them
//! committed together in one strict IndexedDB transaction; each file stands or falls alone.

use std::cell::RefCell;

use futures_util::future::join4;
use wasm_bindgen::JsValue;

use super::{new_record, prepare, ChangeKind, Library, Meta, Written};
use crate::asset::{ImportOptions, MediaAsset};
use crate::batch::{BatchState, WRITES_IN_FLIGHT};

// The pool below has `join4` lanes.
const _: () = assert!(WRITES_IN_FLIGHT == 4);
use crate::error::LibraryError;
use crate::platform;
use crate::validate::ValidationError;

/// A file of the batch whose bytes are written and whose record is not committed yet.
pub(crate) struct Pending {
    id: String,
    meta: Meta,
    written: Written,
}

impl Library {
    /// Imports `sources` (with `opts[i]` for `sources[i]`): the bytes of every file first,
    /// then their records in one strict transaction (per `batch::MAX_GROUP` files), durable
    /// when it returns. Each outcome is in input order; a file that fails (bad input, an
    /// unreadable source, a write error, the quota) leaves nothing behind and does not fail
    /// the others. With a budget, a file refused by the quota frees synced copies and is
    /// written again once, as in `import`.
    pub async fn import_many(
        &self,
        sources: &[JsValue],
        opts: Vec<Result<ImportOptions, ValidationError>>,
    ) -> Vec<Result<MediaAsset, LibraryError>> {
        let n = sources.len();
        let state = BatchState::<Pending>::new(n);
        // Ids sorted and handed out in input order: the batch's records share one `createdAt`,
        // so `list()` (by time, then id) shows them in the order they were given.
        let mut ids: Vec<String> = (0..n).map(|_| platform::new_asset_id()).collect();
        ids.sort();
        // `WRITES_IN_FLIGHT` lanes, each taking the next file when its last one is done (a plain
        // pool: `buffered` streams cost the package several KB for the same schedule).
        let jobs: Vec<_> = sources.iter().zip(opts).zip(ids).collect();
        let jobs = RefCell::new(jobs.into_iter().enumerate());
        let state = RefCell::new(state);
        let lane = || async {
            loop {
                let Some((i, ((source, opts), id))) = jobs.borrow_mut().next() else { return };
                let pending = async {
                    let (src, meta) = prepare(source, &opts?)?;
                    let written =
                        self.retrying_after_quota(src.repeatable_size(), || self.write_bytes(&id, src)).await?;
                    Ok::<_, LibraryError>(Pending { id, meta, written })
                };
                match pending.await {
                    Ok(p) => state.borrow_mut().written(i, p),
                    Err(e) => state.borrow_mut().fail(i, e),
                }
            }
        };
        join4(lane(), lane(), lane(), lane()).await;
        let mut state = state.into_inner();
        let mut added = 0.0;
        for group in state.commit_groups() {
            added += self.commit_group(&mut state, &group).await;
        }
        let results = state.finish();
        for asset in results.iter().flatten() {
            self.emit(ChangeKind::Import, &asset.id);
        }
        if added > 0.0 {
            // Durable already; a failed budget check must not fail the batch (the next one retries).
            let _ = self.after_growth(added).await;
        }
        results
    }

    /// Commits the records of `group` in one transaction; if that fails, each one alone (so a
    /// record the catalog refuses, or one over the quota, fails only its own file, whose bytes
    /// are then removed). Returns the bytes now stored.
    async fn commit_group(&self, state: &mut BatchState<Pending>, group: &[usize]) -> f64 {
        let now = platform::now_ms();
        let records: Vec<(usize, MediaAsset, Option<JsValue>)> = group
            .iter()
            .filter_map(|&i| state.written_of(i).map(|p| (i, p)))
            .map(|(i, p)| (i, new_record(&p.id, &p.meta, &p.written, now), p.written.stored.clone()))
            .collect();
        let items: Vec<(MediaAsset, Option<JsValue>)> =
            records.iter().map(|(_, a, s)| (a.clone(), s.clone())).collect();
        let mut added = 0.0;
        if self.catalog.put_new(&items).await.is_ok() {
            for (i, asset, _) in records {
                added += asset.size;
                state.stored(i, asset);
            }
            return added;
        }
        for (i, asset, stored) in records {
            match self.commit_one(&asset, stored).await {
                Ok(()) => {
                    added += asset.size;
                    state.stored(i, asset);
                }
                Err(e) => {
                    self.discard_bytes(&asset.handle_name, asset.storage).await;
                    state.fail(i, e);
                }
            }
        }
        added
    }

    /// Commits one record alone; refused by the quota with a budget set, frees synced copies
    /// and tries once more.
    async fn commit_one(&self, asset: &MediaAsset, stored: Option<JsValue>) -> Result<(), LibraryError> {
        let item = [(asset.clone(), stored)];
        self.retrying_after_quota(Some(asset.size), || self.catalog.put_new(&item)).await
    }
}
