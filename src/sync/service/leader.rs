//! The leader: the loop that owns the engine, loads it from the catalog and feeds it local
//! changes, sends what it decides and hands the outcomes back.

use std::collections::{BTreeSet, HashMap};

use futures_channel::mpsc::UnboundedReceiver;
use futures_util::future::{select, Either};
use futures_util::{FutureExt, StreamExt};
use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use web_sys::AbortController;

use crate::asset::MediaAsset;
use crate::platform;
use crate::store::catalog::Batch;
use crate::store::outbox::{OutboxEntry, OutboxOp};
use crate::sync::bridge::{self, UserSyncState};
use crate::sync::engine::{self, Engine, Request, SyncState};

use super::channel::{acquire_lock, Refusal};
use super::state::{Completion, Leader};
use super::transfer::{open_for_upload, prefetch, read_capabilities, send};
use super::writeback::{flush, has_unsaved, progress, write_back, FLUSH_MS};
use super::*;

/// Asks the app's resolver; anything but a valid answer (a throw, a promise, a bad name)
/// falls back to last-writer-wins, so a buggy resolver can never stall sync.
pub(super) fn resolve_with(
    f: &Function,
    local: &engine::LocalAsset,
    remote: &engine::RemoteAsset,
) -> engine::Resolution {
    let default = if (local.updated_at, &local.meta) > (remote.updated_at, &remote.meta) {
        engine::Resolution::Local
    } else {
        engine::Resolution::Remote
    };
    let side = |id: &str, m: &engine::Meta, at: i64, v: Option<i64>| {
        json_to_js(&serde_json::json!({ "id": id, "name": m.name, "tags": m.tags, "updatedAt": at, "version": v }))
    };
    let l = side(&local.id, &local.meta, local.updated_at, local.remote_version);
    let r = side(&remote.id, &remote.meta, remote.updated_at, Some(remote.version));
    if let Some(by) = &remote.updated_by {
        // Who changed it, where the server says (a space's assets): the app may prefer a user.
        let _ = js_sys::Reflect::set(&r, &"updatedBy".into(), &JsValue::from_str(by));
    }
    let Ok(answer) = f.call2(&JsValue::UNDEFINED, &l, &r) else { return default };
    match answer.as_string().as_deref() {
        Some("local") => return engine::Resolution::Local,
        Some("remote") => return engine::Resolution::Remote,
        Some(_) => return default,
        None => {}
    }
    if !answer.is_object() || answer.is_instance_of::<Promise>() {
        return default;
    }
    let name = platform::get(&answer, "name").as_string().unwrap_or_else(|| local.meta.name.clone());
    let tags: Vec<String> = match platform::get(&answer, "tags") {
        t if t.is_undefined() => local.meta.tags.clone(),
        t => match serde_wasm_bindgen::from_value(t) {
            Ok(t) => t,
            Err(_) => return default,
        },
    };
    match (crate::validate::display_name(&name), crate::validate::tags(&tags)) {
        (Ok(name), Ok(tags)) => engine::Resolution::Merged(engine::Meta { name, tags }),
        _ => default,
    }
}

/// Waits for a wake-up, or `ms` (if given). Returns `false` on a timeout.
pub(super) async fn wait(rx: &mut UnboundedReceiver<()>, ms: Option<f64>) -> bool {
    match ms {
        None => rx.next().await.is_some(),
        Some(ms) => {
            let timer = platform::sleep(ms.max(0.0)).boxed_local();
            match select(rx.next(), timer).await {
                Either::Left((v, _)) => v.is_some(),
                Either::Right(_) => false,
            }
        }
    }
}

pub(super) async fn run(svc: Shared) {
    let Some(mut rx) = svc.wake_rx.borrow_mut().take() else { return };
    while !svc.disposed.get() {
        // Drain wake-ups that piled up while we were busy.
        while rx.try_recv().is_ok() {}
        if !svc.wants_to_sync() {
            wait(&mut rx, None).await;
            continue;
        }
        let user = match svc.user_id().await {
            Ok(Some(u)) => u,
            Ok(None) => {
                // Signed out: imports still work; check again on the next trigger or tick.
                wait(&mut rx, Some(svc.cfg.poll_interval_ms)).await;
                continue;
            }
            Err(e) => {
                svc.emit("error", &error_detail(None, &e));
                wait(&mut rx, Some(svc.cfg.poll_interval_ms)).await;
                continue;
            }
        };
        let Some(release) = acquire_lock(&svc, &user, &mut rx).await else { continue };
        if let Err(e) = lead(&svc, &user, &mut rx).await {
            if matches!(e, ServiceError::Refused { .. }) {
                // Retrying cannot help until the app acts (adds the user back): no loop
                // against the server. `start()` or `syncNow()` tries once more.
                svc.running.set(false);
                svc.once.set(false);
            }
            svc.emit("error", &error_detail(None, &e));
            // The `syncNow` calls this round was to serve fail with it, here and elsewhere;
            // the next round (a new leadership, state read again) serves later ones.
            let tokens: Vec<String> = std::mem::take(&mut *svc.sync_tokens.borrow_mut());
            if !tokens.is_empty() {
                svc.post(&Wire::Failed { tokens: tokens.clone(), message: e.to_string(), refused: Refusal::of(&e) });
                svc.notify(&Note::Failed { tokens, error: e.clone() });
            }
            wait(&mut rx, Some(svc.cfg.poll_interval_ms.min(5000.0))).await;
        }
        svc.leading.set(false);
        if let Some(a) = svc.aborter.borrow_mut().take() {
            a.abort();
        }
        let _ = release.call0(&JsValue::UNDEFINED);
    }
}

/// Puts the `syncNow` tokens a failing round had taken back (the caller fails them with `e`).
fn unserved(svc: &Shared, served: &[String], e: ServiceError) -> ServiceError {
    svc.sync_tokens.borrow_mut().extend(served.iter().cloned());
    e
}

/// Syncs as the leader until stopped, disposed, or the user changes.
pub(super) async fn lead(svc: &Shared, user: &str, rx: &mut UnboundedReceiver<()>) -> Result<(), ServiceError> {
    svc.generation.set(svc.generation.get() + 1);
    let generation = svc.generation.get();
    *svc.aborter.borrow_mut() = AbortController::new().ok();
    // `load` reads everything: a full refresh asked for before it starts is served by it (one
    // asked for while it runs stays set). Reading the whole catalog twice in a row cost
    // `syncNow()` a main-thread stall with 1,000 queued uploads.
    svc.full_refresh.set(false);
    let mut leader = load(svc, user).await?;
    read_capabilities(svc).await;
    svc.leading.set(true);
    leader.engine.request_pull();
    let mut last_tick = platform::now_ms();
    loop {
        if svc.lib.catalog().epoch() != leader.epoch {
            // The browser cleared the library's database under us (site data cleared,
            // eviction): what this round holds describes storage that is gone. Nothing of it
            // is written back; the next round reads the fresh catalog (no cursor: a full
            // pull) and serves the `syncNow` calls still waiting.
            return Ok(());
        }
        let same_user = matches!(svc.user_id().await, Ok(Some(u)) if u == user);
        if !svc.wants_to_sync() || !same_user {
            // Leaving (stop, dispose, sign-out, user switch): write what is held back.
            return flush(svc, &mut leader).await;
        }
        let served: Vec<String> = std::mem::take(&mut *svc.sync_tokens.borrow_mut());
        if svc.full_refresh.take() {
            refresh(svc, &mut leader, None).await.map_err(|e| unserved(svc, &served, e))?;
        } else {
            let ids = std::mem::take(&mut *svc.dirty_ids.borrow_mut());
            if !ids.is_empty() {
                refresh(svc, &mut leader, Some(ids)).await.map_err(|e| unserved(svc, &served, e))?;
            }
        }
        if svc.pull_requested.take() {
            leader.engine.request_pull();
        }
        let now = platform::now_ms();
        let mut touched: BTreeSet<String> = BTreeSet::new();
        let done: Vec<Completion> = std::mem::take(&mut *svc.completions.borrow_mut());
        for c in done.into_iter().filter(|c| c.generation == generation) {
            for w in c.live {
                touched.insert(w.id.clone());
                leader.wires.insert(w.id.clone(), w);
            }
            leader.engine.handle(c.req, c.outcome, now as i64);
        }
        if let Some(e) = leader.engine.refused().cloned() {
            // Statuses of what was in flight go back to pending; then stop (run() reports it).
            flush(svc, &mut leader).await.map_err(|e| unserved(svc, &served, e))?;
            let root = svc.cfg.endpoint.base_url.clone();
            return Err(unserved(svc, &served, ServiceError::Refused { root, status: e.status, code: e.code }));
        }
        let online = platform::get(&platform::get(&platform::global(), "navigator"), "onLine").as_bool() != Some(false);
        let sends = if online { leader.engine.poll(now as i64) } else { Vec::new() };
        // Requests go out before the write-back: every asset they touch was claimed durably
        // when it was fed to the engine (`claim`), and the write-back only records status.
        // Completions that arrive meanwhile are handled together in the next round.
        for (n, req) in sends {
            let file = match &req {
                Request::Upload { id, .. } => open_for_upload(svc, &mut leader, id),
                _ => None,
            };
            spawn_local(send(svc.clone(), generation, n, req, file));
        }
        prefetch(svc, &mut leader);
        let idle = leader.engine.is_idle();
        let flushed = write_back(svc, &mut leader, touched, idle).await.map_err(|e| unserved(svc, &served, e))?;
        if idle {
            if !served.is_empty() || svc.once.get() {
                // A `syncNow` that came during this turn (its token is not in `served`) keeps
                // `once` set, so the next turn serves it; cleared, its call waited for ever.
                svc.once.set(!svc.sync_tokens.borrow().is_empty());
                let note = Note::Idle { tokens: served.clone() };
                svc.notify(&note);
                svc.post(&Wire::Idle { tokens: served });
            }
            svc.emit("idle", &JsValue::UNDEFINED);
        } else if !served.is_empty() {
            // Not done yet: serve these tokens once the engine is idle.
            svc.sync_tokens.borrow_mut().extend(served);
        }
        // Counts change with statuses, which are reported when they are written (a pass over
        // every asset on each turn was the library's top own cost with 1,000 queued uploads).
        if flushed || idle {
            progress(svc, &leader);
        }
        let now = platform::now_ms();
        let tick_due = last_tick + svc.cfg.poll_interval_ms;
        let mut wake_at = leader.engine.next_wakeup().map_or(tick_due, |w| (w as f64).min(tick_due));
        if has_unsaved(&leader) {
            wake_at = wake_at.min(leader.last_flush + FLUSH_MS);
        }
        let woke = wait(rx, Some((wake_at - now).max(0.0))).await;
        if !woke && platform::now_ms() >= tick_due {
            last_tick = platform::now_ms();
            svc.pull_requested.set(true);
            svc.full_refresh.set(true);
        }
    }
}

/// Builds the engine from the catalog: this user's records (and unclaimed imports), the
/// outbox, and the stored cursor.
pub(super) async fn load(svc: &Shared, user: &str) -> Result<Leader, ServiceError> {
    let epoch = svc.lib.catalog().epoch();
    let saved: UserSyncState = match svc.lib.catalog().sync_state(user).await? {
        Some(json) => crate::sync::json::from_str(&json).unwrap_or_default(),
        None => UserSyncState::default(),
    };
    let state = SyncState {
        cursor: saved.cursor.clone(),
        deleted: saved.deleted.clone(),
        pull_gen: saved.pull_gen,
        ..Default::default()
    };
    let mut engine = Engine::new(state, svc.cfg.engine.clone(), platform::now_ms() as u64);
    if let Some(f) = &svc.cfg.conflict_resolver {
        let f = f.clone();
        engine.set_resolver(Some(Box::new(move |l, r| resolve_with(&f, l, r))));
    }
    let mut leader = Leader {
        user: user.to_owned(),
        engine,
        tags: HashMap::new(),
        wires: HashMap::new(),
        records: HashMap::new(),
        opening: HashMap::new(),
        saved,
        unsaved: BTreeSet::new(),
        unreported: Vec::new(),
        last_flush: 0.0,
        epoch,
    };
    refresh(svc, &mut leader, None).await?;
    Ok(leader)
}

/// Feeds the engine local changes it has not seen: outbox entries with a new tag (all of
/// them, or those of `only`), and on a full refresh records written before the outbox existed.
pub(super) async fn refresh(
    svc: &Shared,
    leader: &mut Leader,
    only: Option<BTreeSet<String>>,
) -> Result<(), ServiceError> {
    let lib = &svc.lib;
    let full = only.is_none();
    let entries: Vec<OutboxEntry> = lib.catalog().outbox().await?;
    let entries: Vec<OutboxEntry> = match &only {
        Some(ids) => entries.into_iter().filter(|e| ids.contains(&e.id)).collect(),
        None => entries,
    };
    let mut records: HashMap<String, MediaAsset> = if full {
        lib.catalog().all().await?.into_iter().filter_map(Result::ok).map(|a| (a.id.clone(), a)).collect()
    } else {
        let mut m = HashMap::new();
        for e in &entries {
            if let Some(a) = lib.catalog().get(&e.id).await.ok().flatten() {
                m.insert(a.id.clone(), a);
            }
        }
        m
    };
    let user = leader.user.clone();
    claim(svc, &user, &entries, &mut records, full).await?;
    if full {
        // Records this engine does not track yet: the user's synced ones, and legacy imports.
        // Owned ids: the same `BTreeSet<String>` as the rest of the service (one B-tree
        // instance less in the package than a `BTreeSet<&str>`).
        let with_entry: BTreeSet<String> = entries.iter().map(|e| e.id.clone()).collect();
        for rec in records.values() {
            if !bridge::belongs_to(rec, &user) || leader.engine.state().assets.contains_key(&rec.id) {
                continue;
            }
            let local = bridge::local_asset(rec);
            if with_entry.contains(&rec.id) {
                continue;
            }
            if rec.user_id.is_none() && !bridge::needs_legacy_upload(rec) {
                continue;
            }
            if bridge::needs_legacy_upload(rec) {
                leader.records.insert(rec.id.clone(), rec.clone());
                leader.engine.local_import(local);
            } else {
                leader.engine.adopt(local);
            }
        }
    }
    for e in entries {
        if leader.tags.get(&e.id) == Some(&e.tag) {
            continue;
        }
        match e.op {
            OutboxOp::Delete => {
                if e.user_id.as_deref() != Some(user.as_str()) {
                    continue;
                }
                leader.engine.local_delete(&e.id);
            }
            OutboxOp::Upload | OutboxOp::UpdateMeta => {
                let Some(rec) = records.get(&e.id) else { continue };
                if !bridge::belongs_to(rec, &user) {
                    continue;
                }
                let local = bridge::local_asset(rec);
                leader.records.insert(rec.id.clone(), rec.clone());
                if leader.engine.state().assets.contains_key(&e.id) {
                    leader.engine.local_edit(&e.id, local.meta, local.updated_at);
                } else if rec.cloud_version.is_some() {
                    leader.engine.adopt(local.clone());
                    leader.engine.local_edit(&e.id, local.meta, local.updated_at);
                } else {
                    leader.engine.local_import(local);
                }
            }
        }
        leader.tags.insert(e.id.clone(), e.tag);
    }
    Ok(())
}

/// Claims for `user` the unclaimed records about to be uploaded (imported while signed out,
/// or before the outbox existed), durably and before any request, so no other user's sync
/// can ever upload them. Records another leader claimed first are dropped from `records`.
pub(super) async fn claim(
    svc: &Shared,
    user: &str,
    entries: &[OutboxEntry],
    records: &mut HashMap<String, MediaAsset>,
    full: bool,
) -> Result<(), ServiceError> {
    let queued: BTreeSet<String> = entries.iter().filter(|e| e.op != OutboxOp::Delete).map(|e| e.id.clone()).collect();
    let to_claim: Vec<String> = records
        .values()
        .filter(|r| r.user_id.is_none())
        .filter(|r| queued.contains(&r.id) || (full && bridge::needs_legacy_upload(r)))
        .map(|r| r.id.clone())
        .collect();
    if to_claim.is_empty() {
        return Ok(());
    }
    let mut batch = Batch::default();
    for id in &to_claim {
        let owner = user.to_owned();
        batch.edits.push((
            id.clone(),
            Box::new(move |r: &mut MediaAsset| r.user_id.is_none() && r.user_id.replace(owner).is_none()),
        ));
    }
    let (claimed, _) = svc.lib.apply_synced(batch, true).await?;
    for id in to_claim {
        match records.get_mut(&id) {
            Some(r) if claimed.contains(&id) => r.user_id = Some(user.to_owned()),
            _ => {
                records.remove(&id);
            }
        }
    }
    Ok(())
}
