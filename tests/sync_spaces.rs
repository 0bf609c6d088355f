//! The engine's side of shared spaces (issue 24): a server that refuses the whole API root
//! (`403 NOT_A_MEMBER`, `400 INVALID_SPACE_ID`) stops sync without touching local state, and
//! a space's `updatedBy` reaches the conflict resolver.
#![cfg(not(target_arch = "wasm32"))]

use std::cell::RefCell;
use std::rc::Rc;

use opfs_media::asset::SyncStatus;
use opfs_media::sync::engine::{
    root_refusal, Change, Config, Engine, LocalAsset, Meta, Op, Outcome, RemoteAsset, Reply, Request, Resolution,
    SyncState,
};
use opfs_media::sync::protocol;

fn asset(id: &str) -> LocalAsset {
    LocalAsset {
        id: id.into(),
        sha256: format!("sha-{id}"),
        meta: Meta { name: id.into(), tags: vec![] },
        updated_at: 0,
        remote_version: None,
        status: SyncStatus::Pending,
        error: None,
        has_bytes: true,
    }
}

fn failed(status: u16, code: &str) -> Outcome {
    Outcome::Failed { status, code: code.into(), current: None, retry_after: None }
}

/// An engine with one synced asset that exists only on the server ("theirs") and two local
/// imports not yet uploaded ("a", "b").
fn member_engine() -> Engine {
    let mut state = SyncState::default();
    let mut theirs = asset("theirs");
    theirs.remote_version = Some(3);
    theirs.status = SyncStatus::Synced;
    theirs.has_bytes = false;
    state.assets.insert("theirs".into(), theirs);
    let mut e = Engine::new(state, Config::default(), 7);
    e.local_import(asset("a"));
    e.local_import(asset("b"));
    e.request_pull();
    e
}

#[test]
fn not_a_member_stops_sync_and_keeps_everything_local() {
    let mut e = member_engine();
    let before = e.state().clone();
    let sent = e.poll(0);
    assert_eq!(sent.len(), 3, "a pull and two uploads");
    let upload = sent.iter().find(|(_, r)| matches!(r, Request::Upload { id, .. } if id == "a")).unwrap().0;
    e.handle(upload, failed(403, "NOT_A_MEMBER"), 10);
    let refused = e.refused().expect("a refusal of the root stops the engine");
    assert_eq!((refused.status, refused.code.as_str()), (403, "NOT_A_MEMBER"));
    // Nothing local changed: both imports and the other member's asset are still here, the
    // uploads still queued, no asset in `error`, nothing marked deleted.
    assert_eq!(e.state().assets.keys().collect::<Vec<_>>(), before.assets.keys().collect::<Vec<_>>());
    assert_eq!(e.state().outbox, before.outbox);
    assert!(e.state().outbox.values().all(|op| *op == Op::Upload));
    for a in e.state().assets.values() {
        assert_ne!(a.status, SyncStatus::Error, "{} was marked failed", a.id);
        assert_ne!(a.status, SyncStatus::Syncing, "{} still shows syncing", a.id);
    }
    assert!(e.state().deleted.is_empty());
    // No retry loop: nothing to send, ever, and no wake-up asked for.
    assert!(e.poll(10).is_empty());
    assert!(e.poll(10_000_000).is_empty());
    assert_eq!(e.next_wakeup(), None);
    e.request_pull();
    assert!(e.poll(20_000_000).is_empty(), "a refused engine does not pull either");
    // The answers of the other requests in flight change nothing any more, a tombstone included.
    for (n, req) in &sent {
        let late = match req {
            Request::Changes { .. } => Outcome::Ok(Reply::Changes {
                changes: vec![Change::Tombstone { id: "theirs".into() }],
                next_cursor: "c1".into(),
                has_more: false,
            }),
            _ => failed(403, "NOT_A_MEMBER"),
        };
        e.handle(*n, late, 30);
    }
    assert!(e.state().assets.contains_key("theirs"), "a late page was applied after the refusal");
    // A new engine over the persisted state (the app calls start() once the user is back)
    // sends the same uploads again.
    let mut again = Engine::new(e.state().clone(), Config::default(), 8);
    again.request_pull();
    let resent: Vec<_> = again.poll(0).into_iter().filter_map(|(_, r)| r.asset_id().map(str::to_owned)).collect();
    assert_eq!(resent, ["a", "b"]);
}

#[test]
fn a_refused_pull_and_a_malformed_space_id_stop_it_too() {
    let mut e = member_engine();
    let pull = e.poll(0).into_iter().find(|(_, r)| matches!(r, Request::Changes { .. })).unwrap().0;
    e.handle(pull, failed(400, "INVALID_SPACE_ID"), 1);
    assert_eq!(e.refused().map(|r| r.code.as_str()), Some("INVALID_SPACE_ID"));
    assert!(e.poll(1_000_000).is_empty());
    assert_eq!(e.state().assets.len(), 3);
    assert!(e.state().assets.values().all(|a| a.status != SyncStatus::Error));
}

#[test]
fn only_the_roots_refusals_stop_the_engine() {
    // Another 403 or 400 is about one request: the asset fails, sync goes on.
    assert_eq!(root_refusal(&failed(403, "FORBIDDEN")), None);
    assert_eq!(root_refusal(&failed(400, "INVALID_CURSOR")), None);
    assert_eq!(root_refusal(&failed(404, "NOT_A_MEMBER")), None);
    assert_eq!(root_refusal(&Outcome::Network), None);
    let mut e = Engine::new(SyncState::default(), Config::default(), 1);
    e.local_import(asset("a"));
    e.local_import(asset("b"));
    let sent = e.poll(0);
    e.handle(sent[0].0, failed(403, "FORBIDDEN"), 1);
    assert!(e.refused().is_none());
    assert_eq!(e.state().assets["a"].status, SyncStatus::Error);
    e.handle(sent[1].0, failed(500, "INTERNAL"), 1);
    let t = e.next_wakeup().expect("a 5xx still backs off and retries");
    assert_eq!(e.poll(t).len(), 1);
}

#[test]
fn updated_by_reaches_the_resolver() {
    let body = br#"{"changes":[{"id":"x","deleted":false,"asset":{"id":"x","name":"Bob's","type":"image/png","size":1,
        "sha256":"s","createdAt":1,"updatedAt":5,"version":2,"tags":[],"url":"/u","updatedBy":"bob"}}],
        "nextCursor":"c","hasMore":false}"#;
    let live = protocol::live_assets(body);
    assert_eq!(live.len(), 1, "the changes page parses");
    let remote: RemoteAsset = live[0].clone().into();
    assert_eq!(remote.updated_by.as_deref(), Some("bob"));

    // A conflict on a space's asset: the resolver sees who made the remote change.
    let mut local = asset("x");
    local.remote_version = Some(1);
    local.status = SyncStatus::Synced;
    let mut state = SyncState::default();
    state.assets.insert("x".into(), local);
    let mut e = Engine::new(state, Config::default(), 1);
    let seen = Rc::new(RefCell::new(None));
    let s = seen.clone();
    e.set_resolver(Some(Box::new(move |_l: &LocalAsset, r: &RemoteAsset| {
        *s.borrow_mut() = r.updated_by.clone();
        Resolution::Remote
    })));
    e.local_edit("x", Meta { name: "Alice's".into(), tags: vec![] }, 100);
    let (n, _) = e.poll(100).remove(0);
    e.handle(
        n,
        Outcome::Failed { status: 412, code: "PRECONDITION_FAILED".into(), current: Some(remote), retry_after: None },
        100,
    );
    assert_eq!(seen.borrow().as_deref(), Some("bob"));
    assert_eq!(e.state().assets["x"].meta.name, "Bob's");
}
