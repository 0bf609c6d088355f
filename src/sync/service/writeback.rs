//! Write-back: the engine's decisions into the catalog and the outbox (batched), and the
//! status and progress reports that follow them.

use std::collections::BTreeSet;

use wasm_bindgen_futures::spawn_local;

use crate::asset::SyncStatus;
use crate::platform;
use crate::store::catalog::Batch;
use crate::store::outbox::{OutboxEntry, OutboxOp};
use crate::store::ChangeKind;
use crate::sync::bridge::{self, UserSyncState};
use crate::sync::engine::{Event, SyncError};

use super::channel::StatusNote;
use super::state::Leader;
use super::*;

pub(super) fn progress(svc: &Service, leader: &Leader) {
    let st = leader.engine.state();
    let mut n = [0usize; 4];
    for a in st.assets.values() {
        n[match a.status {
            SyncStatus::Pending => 0,
            SyncStatus::Syncing => 1,
            SyncStatus::Synced => 2,
            SyncStatus::Error => 3,
        }] += 1;
    }
    let detail = serde_json::json!({
        "pending": n[0],
        "syncing": n[1],
        "synced": n[2],
        "error": n[3],
        "queued": st.outbox.len(),
    });
    svc.report_counts(detail);
}

/// Writes what the engine decided back to the catalog and the outbox (one relaxed
/// transaction: all of it is recomputed if a crash loses it, and every request it could
/// repeat is idempotent), and reports it. Returns whether it flushed (statuses were reported).
pub(super) async fn write_back(
    svc: &Shared,
    leader: &mut Leader,
    mut touched: BTreeSet<String>,
    force: bool,
) -> Result<bool, ServiceError> {
    let lib = &svc.lib;
    let user = leader.user.clone();
    let base = svc.cfg.endpoint.base_url.clone();
    for ev in leader.engine.take_events() {
        match ev {
            Event::Status(id, status) => {
                touched.insert(id.clone());
                leader.unreported.push((id, status));
            }
            Event::Conflict { id, local_won } => {
                touched.insert(id.clone());
                svc.emit("conflict", &json_to_js(&serde_json::json!({ "id": id, "localWon": local_won })));
            }
            // New and deleted records are written at once, before the cursor that brought
            // them is saved (a crash in between re-reads the page; it never skips them).
            Event::RemoteAdded(id) => {
                if let Some(w) = leader.wires.get(&id) {
                    lib.put_synced(&bridge::remote_record(w, &user, &base), ChangeKind::Import).await?;
                    if svc.cfg.download_policy == DownloadPolicy::Eager {
                        let (svc2, id2) = (svc.clone(), id.clone());
                        spawn_local(async move {
                            if let Err(e) = svc2.download_asset(&id2).await {
                                svc2.emit("error", &error_detail(Some(&id2), &e));
                            }
                        });
                    }
                }
            }
            Event::RemoteDeleted(id) => {
                lib.remove_synced(&id).await?;
                leader.unsaved.remove(&id);
            }
        }
    }
    leader.unsaved.extend(touched.into_iter().filter(|id| leader.engine.state().assets.contains_key(id)));
    let due = platform::now_ms() - leader.last_flush >= FLUSH_MS;
    if force || due || leader.saved != UserSyncState::of(leader.engine.state()) {
        flush(svc, leader).await?;
        return Ok(true);
    }
    Ok(false)
}

/// How long status writes may be held back to batch them into one transaction (the
/// engine's decisions are in memory and re-derived after a crash; see `write_back`).
pub(super) const FLUSH_MS: f64 = 100.0;

/// Whether `flush` has anything to write.
pub(super) fn has_unsaved(leader: &Leader) -> bool {
    !leader.unsaved.is_empty()
        || !leader.unreported.is_empty()
        || leader.tags.len() != leader.engine.state().outbox.len()
}

/// Writes the held-back records and outbox changes in one relaxed transaction, then reports
/// their status (so whoever hears `synced` reads a record that says so), then saves the cursor.
pub(super) async fn flush(svc: &Shared, leader: &mut Leader) -> Result<(), ServiceError> {
    let lib = &svc.lib;
    let user = leader.user.clone();
    let base = svc.cfg.endpoint.base_url.clone();
    leader.last_flush = platform::now_ms();
    // The outbox follows the engine: settled ops go, ops the engine added are written.
    let engine_ops: Vec<(String, OutboxOp)> =
        leader.engine.state().outbox.iter().map(|(k, v)| (k.clone(), *v)).collect();
    let mut batch = Batch::default();
    let gone: Vec<String> =
        leader.tags.keys().filter(|id| !leader.engine.state().outbox.contains_key(*id)).cloned().collect();
    for id in gone {
        leader.opening.remove(&id);
        leader.records.remove(&id);
        if let Some(tag) = leader.tags.remove(&id) {
            batch.swaps.push((id, Some(tag), None));
        }
    }
    let mut added = Vec::new();
    for (id, op) in engine_ops {
        if leader.tags.contains_key(&id) {
            continue;
        }
        let entry = OutboxEntry {
            id: id.clone(),
            op,
            tag: platform::new_asset_id(),
            user_id: Some(user.clone()),
            upload: None,
        };
        added.push((batch.swaps.len(), id.clone(), entry.tag.clone()));
        batch.swaps.push((id, None, Some(entry)));
    }
    for id in std::mem::take(&mut leader.unsaved) {
        let Some(a) = leader.engine.state().assets.get(&id).cloned() else { continue };
        let (user, base) = (user.clone(), base.clone());
        batch
            .edits
            .push((id, Box::new(move |rec| bridge::belongs_to(rec, &user) && bridge::apply(rec, &a, &user, &base))));
    }
    let (_, swapped) = lib.apply_synced(batch, false).await?;
    for (at, id, tag) in added {
        if swapped.get(at).copied().unwrap_or(false) {
            leader.tags.insert(id, tag);
        }
    }
    // Reported here, and to other contexts in one message for the whole write-back.
    let mut notes = Vec::new();
    for (id, status) in std::mem::take(&mut leader.unreported) {
        let error = leader.engine.state().assets.get(&id).and_then(|a| a.error.clone());
        if status == SyncStatus::Error {
            let e = error.clone().unwrap_or(SyncError { status: 0, code: "UNKNOWN".into() });
            svc.emit("error", &error_detail(Some(&id), &ServiceError::Server { status: e.status, code: e.code }));
        }
        svc.status_changed(&id, status, error.clone());
        notes.push(StatusNote { id, status, error });
    }
    if !notes.is_empty() {
        svc.post(&Wire::Statuses { list: notes });
    }
    let now = UserSyncState::of(leader.engine.state());
    if now != leader.saved {
        let json = serde_json::to_string(&now).unwrap_or_default();
        lib.catalog().put_sync_state(&user, &json).await?;
        leader.saved = now;
    }
    Ok(())
}
