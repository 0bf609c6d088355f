//! The local budget: LRU eviction of synced copies, pins, leases and the `evict` event, in a
//! page and a worker on both backends. (Real quota and re-downloads: tests/e2e/budget.mjs.)

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Reflect};
use opfs_media::interop::MediaLibrary;
use opfs_media::{platform, StorageKind, SyncStatus};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

use super::{assert_js_error, bytes, field, file, open, opfs_names, read_all, sha_hex};

const SIZE: usize = 100_000;
/// The read lease in these tests: shortened from `READ_LEASE_MS` so they can wait for it to
/// run out, yet long enough that a copy read just before an eviction is still leased on a
/// loaded machine ("just-read copies stay" must not depend on the eviction coming quickly).
/// Its end is waited for on the lock itself (`until_released`), never on the clock.
const LEASE_MS: f64 = 2_000.0;

/// Waits until no context holds the asset lock of any of `ids` (their read leases ran out,
/// their holds were dropped), as `navigator.locks.query()` reports it. Without Web Locks no
/// lease is taken: nothing to wait for.
async fn until_released(lib: &MediaLibrary, ids: &[&String]) {
    let locks = platform::get(&platform::get(&platform::global(), "navigator"), "locks");
    if !locks.is_object() {
        return;
    }
    let names: Vec<String> =
        ids.iter().map(|id| opfs_media::store::evict::asset_lock(lib.library().name(), id)).collect();
    let deadline = platform::now_ms() + LEASE_MS + 10_000.0;
    loop {
        let snapshot = platform::call_async(&locks, "query", &[]).await.unwrap();
        let held: Vec<String> =
            Array::from(&field(&snapshot, "held")).iter().filter_map(|l| field(&l, "name").as_string()).collect();
        if !names.iter().any(|n| held.contains(n)) {
            return;
        }
        assert!(platform::now_ms() < deadline, "a lease or hold of {ids:?} never ended");
        platform::sleep(20.0).await;
    }
}

/// Imports `n` assets of `SIZE` bytes; the first `synced` of them are marked as on the server.
async fn assets(lib: &MediaLibrary, n: usize, synced: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let data = bytes(SIZE, i as u8);
        let v = lib.import_file(file(&data, &format!("a{i}.bin"), "").into(), None).await.unwrap();
        let id = field(&v, "id").as_string().unwrap();
        if i < synced {
            let sha = sha_hex(&data);
            lib.library()
                .catalog()
                .update_record(&id, move |a| {
                    a.sync_status = SyncStatus::Synced;
                    a.cloud_id = Some(a.id.clone());
                    a.sha256 = Some(sha);
                    true
                })
                .await
                .unwrap();
        }
        ids.push(id);
    }
    ids
}

fn budget(bytes: f64) -> JsValue {
    js_sys::JSON::parse(&format!(r#"{{"maxBytes":{bytes}}}"#)).unwrap()
}

async fn storage_of(lib: &MediaLibrary, id: &str) -> StorageKind {
    let v = lib.get(id.into()).await.unwrap();
    serde_wasm_bindgen::from_value::<opfs_media::MediaAsset>(v).unwrap().storage
}

fn evicted(report: &JsValue) -> Vec<String> {
    Array::from(&field(report, "evicted")).iter().map(|v| v.as_string().unwrap()).collect()
}

/// Least recently used synced copies go first; reads count; pinned and unsynced stay.
pub async fn budget_evicts_least_recently_used(storage: &str) {
    let Some(lib) = open(storage).await else { return };
    lib.library().set_read_lease_ms(LEASE_MS);
    let ids = assets(&lib, 5, 4).await; // 0..3 synced, 4 pending
    let seen = Rc::new(RefCell::new(Vec::<JsValue>::new()));
    let sink = seen.clone();
    let on_evict = Closure::<dyn FnMut(web_sys::CustomEvent)>::new(move |e: web_sys::CustomEvent| {
        sink.borrow_mut().push(e.detail());
    });
    lib.add_event_listener("evict", on_evict.as_ref().unchecked_ref()).unwrap();
    // A budget everything fits in: nothing goes.
    assert!(evicted(&lib.set_budget(budget(1e9)).await.unwrap()).is_empty());
    lib.pin(ids[1].clone().into()).await.unwrap();
    // Read the oldest synced one, then let its read lease run out: only the LRU order keeps it.
    read_all(&lib.get_file(ids[0].clone().into()).await.unwrap()).await;
    until_released(&lib, &[&ids[0]]).await;

    let report = lib.set_budget(budget(3.0 * SIZE as f64)).await.unwrap();
    assert_eq!(evicted(&report), vec![ids[2].clone(), ids[3].clone()], "never read, oldest first");
    assert_eq!(field(&report, "bytes").as_f64(), Some(2.0 * SIZE as f64));
    assert_eq!(field(&report, "reason").as_string().as_deref(), Some("budget"));
    assert_eq!(seen.borrow().len(), 1, "one evict event");
    assert_eq!(evicted(&seen.borrow()[0]), evicted(&report));
    for (i, want) in [(0, true), (1, true), (2, false), (3, false), (4, true)] {
        let local = storage_of(&lib, &ids[i]).await != StorageKind::Remote;
        assert_eq!(local, want, "asset {i} local");
    }
    if lib.storage() == "opfs" {
        let mut want = vec![ids[0].clone(), ids[1].clone(), ids[4].clone()];
        want.sort();
        assert_eq!(opfs_names(lib.library()).await, want, "evicted bytes are gone");
    }
    assert_js_error(lib.get_file(ids[2].clone().into()).await, "NotDownloadedError", "NOT_DOWNLOADED");
    assert_eq!(lib.library().sweep(0.0).await.unwrap(), Default::default(), "nothing left behind");

    // Under any pressure: the pinned and the unsynced stay.
    let report = lib.set_budget(budget(0.0)).await.unwrap();
    assert_eq!(evicted(&report), vec![ids[0].clone()]);
    assert_eq!(storage_of(&lib, &ids[1]).await, lib.library().storage_kind(), "pinned stays");
    assert_eq!(storage_of(&lib, &ids[4]).await, lib.library().storage_kind(), "unsynced stays");
    if platform::storage_manager().is_some() {
        let info = lib.estimate().await.unwrap();
        let num = |k| field(&info, k).as_f64();
        assert_eq!(num("budget"), Some(0.0));
        assert_eq!(num("localBytes"), Some(2.0 * SIZE as f64));
        assert_eq!(num("pinnedBytes"), Some(SIZE as f64));
        assert_eq!(num("evictableBytes"), Some(0.0));
    }
    let pinned: Vec<String> =
        Array::from(&lib.pinned_ids().await.unwrap()).iter().map(|v| v.as_string().unwrap()).collect();
    assert_eq!(pinned, vec![ids[1].clone()]);
    // Unpinned, it goes at the next check; without a budget nothing is ever evicted.
    lib.unpin(ids[1].clone().into()).await.unwrap();
    assert_eq!(evicted(&lib.evict().await.unwrap()), vec![ids[1].clone()]);
    lib.remove_event_listener("evict", on_evict.as_ref().unchecked_ref()).unwrap();
    assert_js_error(lib.pin("0190f0c2-7a0e-7cc0-8000-0000000000ee".into()).await, "NotFoundError", "ASSET_NOT_FOUND");
    for bad in [
        r#"{}"#,
        r#"{"maxBytes":-1}"#,
        r#"{"quotaFraction":2}"#,
        r#"{"maxBytes":1,"quotaFraction":0.5}"#,
        r#"{"max":1}"#,
    ] {
        let r = lib.set_budget(js_sys::JSON::parse(bad).unwrap()).await;
        assert_js_error(r, "InvalidInputError", "INVALID_OPTIONS");
    }
}

/// Bytes someone holds (a download, a reader in any context) or just read are not evicted
/// under them; imports past the budget evict on their own.
pub async fn held_and_read_assets_are_not_evicted(storage: &str) {
    let Some(lib) = open(storage).await else { return };
    lib.library().set_read_lease_ms(LEASE_MS);
    let ids = assets(&lib, 3, 3).await;
    lib.set_budget(budget(1e9)).await.unwrap();
    let hold = lib.library().hold_asset(&ids[0]).await;
    let read = lib.get_file(ids[1].clone().into()).await.unwrap();
    let report = lib.set_budget(budget(0.0)).await.unwrap();
    let has_locks = hold.is_some();
    if has_locks {
        assert_eq!(evicted(&report), vec![ids[2].clone()], "held and just-read copies stay");
    } else {
        let name = super::CURRENT_TEST.with(|c| c.get());
        wasm_bindgen_test::console_log!(
            "SKIPPED {name}: this engine has no Web Locks (which copies a held and a released asset keep cannot be checked)"
        );
    }
    assert_eq!(read_all(&read).await, bytes(SIZE, 1), "the File handed out is still readable");
    drop(hold);
    until_released(&lib, &[&ids[0], &ids[1]]).await;
    let report = lib.evict().await.unwrap();
    if has_locks {
        assert_eq!(evicted(&report), vec![ids[0].clone(), ids[1].clone()], "released, they go");
    }
    // An import past the budget evicts synced copies by itself (none left: nothing to do).
    lib.set_budget(budget(2.0 * SIZE as f64)).await.unwrap();
    let more = assets(&lib, 2, 2).await;
    let v = lib.import_file(file(&bytes(10, 9), "small.bin", "").into(), None).await.unwrap();
    assert!(Reflect::has(&v, &"id".into()).unwrap());
    let local: Vec<bool> = futures_util::future::join_all(more.iter().map(|id| storage_of(&lib, id)))
        .await
        .into_iter()
        .map(|s| s != StorageKind::Remote)
        .collect();
    assert_eq!(local, vec![false, true], "the older synced import went when the newest came in");
}
