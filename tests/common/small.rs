//! Small files (below `smallFileBytes`) in IndexedDB, committed with their record; large ones
//! in OPFS; a library holding both homes lists, reads, checksums, deletes, evicts and sweeps
//! them alike. Record writes and OPFS file creations are counted by wrapping the prototypes.

use js_sys::{Array, Function, Reflect};
use opfs_media::interop::MediaLibrary;
use opfs_media::store::catalog::BLOBS;
use opfs_media::{StorageKind, SyncStatus};
use wasm_bindgen::{JsCast, JsValue};

use super::{assert_js_error, asset_of, bytes, engine_has_opfs, field, file, opfs_names, read_all, sha_hex, unique};

/// Opens a fresh `auto` library with `extra` options (JSON members, e.g. `"smallFileBytes":0`).
/// Where the engine has no OPFS there is only one home: reported as skipped by `test`.
async fn open_with(test: &str, extra: &str) -> Option<MediaLibrary> {
    if !engine_has_opfs() {
        wasm_bindgen_test::console_log!(
            "SKIPPED {test}: this engine has no OPFS, so every asset is in IndexedDB (one home to mix)"
        );
        return None;
    }
    let sep = if extra.is_empty() { "" } else { "," };
    let json = format!(r#"{{"name":"{}"{sep}{extra}}}"#, unique("sm"));
    Some(MediaLibrary::open(Some(js_sys::JSON::parse(&json).unwrap())).await.expect("open library"))
}

/// Records, from now until `stop()`, each read-write transaction as its sorted store names
/// joined by `+`, each OPFS file handle asked for with `create: true`, and every transaction
/// of any mode. `stop()` restores the prototypes and returns `[read-write transactions,
/// created file names, all transactions]`.
fn count_writes() -> Function {
    let install = Function::new_no_args(
        "const db = IDBDatabase.prototype, tx = db.transaction;
        const dir = FileSystemDirectoryHandle.prototype, gfh = dir.getFileHandle;
        const txs = [], created = [], all = [];
        db.transaction = function (stores, mode) {
            const names = typeof stores === 'string' ? [stores] : Array.from(stores);
            if (mode === 'readwrite') txs.push(names.sort().join('+'));
            all.push((mode || 'readonly') + ':' + names.sort().join('+'));
            return tx.apply(this, arguments);
        };
        dir.getFileHandle = function (name, opts) {
            if (opts && opts.create) created.push(name);
            return gfh.apply(this, arguments);
        };
        return () => { db.transaction = tx; dir.getFileHandle = gfh; return [txs, created, all]; };",
    );
    install.call0(&JsValue::NULL).unwrap().unchecked_into()
}

fn stop(stop: &Function) -> (Vec<String>, Vec<String>) {
    let out = Array::from(&stop.call0(&JsValue::NULL).unwrap());
    let strings = |v: JsValue| Array::from(&v).iter().map(|s| s.as_string().unwrap()).collect();
    (strings(out.get(0)), strings(out.get(1)))
}

async fn blob_keys(lib: &MediaLibrary) -> Vec<String> {
    lib.library().catalog().keys(BLOBS).await.unwrap()
}

async fn import(lib: &MediaLibrary, data: &[u8], name: &str) -> opfs_media::MediaAsset {
    asset_of(&lib.import_file(file(data, name, "application/octet-stream").into(), None).await.unwrap())
}

/// A small import is one read-write transaction holding the record and the bytes (so neither
/// exists without the other), and creates no OPFS file, not even a temporary one.
pub async fn small_asset_goes_to_indexeddb_in_its_record_transaction() {
    let Some(lib) = open_with("small_asset_goes_to_indexeddb_in_its_record_transaction", "").await else { return };
    assert_eq!(lib.storage(), "opfs", "large files' home");
    let data = bytes(10_000, 1);
    let counter = count_writes();
    let a = import(&lib, &data, "small.bin").await;
    let (txs, created) = stop(&counter);
    assert_eq!(a.storage, StorageKind::Indexeddb);
    let with_bytes: Vec<&String> = txs.iter().filter(|t| t.split('+').any(|s| s == BLOBS)).collect();
    assert_eq!(with_bytes.len(), 1, "the bytes are written once: {txs:?}");
    assert!(with_bytes[0].split('+').any(|s| s == "assets"), "bytes and record in one transaction: {txs:?}");
    assert!(created.is_empty(), "no OPFS file created: {created:?}");
    assert!(opfs_names(lib.library()).await.is_empty());
    assert_eq!(blob_keys(&lib).await, vec![a.handle_name.clone()]);
    let counter = count_writes();
    let f = lib.get_file(a.id.clone().into()).await.unwrap();
    let all = Array::from(&counter.call0(&JsValue::NULL).unwrap()).get(2);
    let all: Vec<String> = Array::from(&all).iter().map(|s| s.as_string().unwrap()).collect();
    assert_eq!(all, ["readonly:assets+blobs"], "a small asset's read: record and bytes in one transaction");
    assert_eq!((f.name(), f.size()), ("small.bin".to_owned(), 10_000.0));
    assert_eq!(read_all(&f).await, data);
    assert_eq!(asset_of(&lib.get(a.id.into()).await.unwrap()).storage, StorageKind::Indexeddb);
}

/// `importFiles` of 60 small files: their records and bytes in one transaction, no OPFS file.
pub async fn small_batch_is_one_transaction_and_no_opfs_file() {
    let Some(lib) = open_with("small_batch_is_one_transaction_and_no_opfs_file", "").await else { return };
    let data: Vec<Vec<u8>> = (0..60).map(|i| bytes(1_000 + i * 7, i as u8)).collect();
    let files: Array = data.iter().enumerate().map(|(i, d)| JsValue::from(file(d, &format!("s{i}.bin"), ""))).collect();
    let counter = count_writes();
    let out = Array::from(&lib.import_files(files.into(), None).await.unwrap());
    let (txs, created) = stop(&counter);
    let with_assets: Vec<&String> = txs.iter().filter(|t| t.split('+').any(|s| s == "assets")).collect();
    assert_eq!(with_assets.len(), 1, "one transaction for the batch: {txs:?}");
    assert!(with_assets[0].split('+').any(|s| s == BLOBS), "holding the bytes too: {txs:?}");
    assert!(created.is_empty(), "no OPFS file created: {created:?}");
    assert!(opfs_names(lib.library()).await.is_empty());
    assert_eq!(blob_keys(&lib).await.len(), 60);
    for (i, r) in out.iter().enumerate() {
        let a = asset_of(&field(&r, "asset"));
        assert_eq!(a.storage, StorageKind::Indexeddb);
        assert_eq!(read_all(&lib.get_file(a.id.into()).await.unwrap()).await, data[i]);
    }
}

/// Strictly below the threshold is small; exactly `smallFileBytes` goes to OPFS, as does a
/// stream (its length is unknown when it starts).
pub async fn threshold_boundary_goes_to_opfs() {
    let Some(lib) = open_with("threshold_boundary_goes_to_opfs", r#""smallFileBytes":4096"#).await else { return };
    let below = import(&lib, &bytes(4095, 2), "below.bin").await;
    let at = import(&lib, &bytes(4096, 3), "at.bin").await;
    assert_eq!((below.storage, at.storage), (StorageKind::Indexeddb, StorageKind::Opfs));
    let stream = super::stream::stream_of_views(&bytes(10, 4), "close");
    let streamed = asset_of(&lib.import_file(stream, None).await.unwrap());
    assert_eq!(streamed.storage, StorageKind::Opfs, "a stream of unknown length");
    let mut want = vec![at.id.clone(), streamed.id.clone()];
    want.sort();
    assert_eq!(opfs_names(lib.library()).await, want);
    assert_eq!(blob_keys(&lib).await, vec![below.id.clone()]);
    let info = lib.estimate().await.unwrap();
    assert_eq!(field(&info, "smallFileBytes").as_f64(), Some(4096.0));
    assert_eq!(field(&info, "localBytes").as_f64(), Some(4095.0 + 4096.0 + 10.0), "both homes counted");
}

/// `smallFileBytes: 0`: every asset in OPFS, even an empty one, and nothing in `blobs`.
pub async fn small_file_bytes_zero_keeps_everything_in_opfs() {
    let Some(lib) = open_with("small_file_bytes_zero_keeps_everything_in_opfs", r#""smallFileBytes":0"#).await else {
        return;
    };
    let one = import(&lib, &bytes(1, 5), "one.bin").await;
    let empty = import(&lib, &[], "empty.bin").await;
    assert_eq!((one.storage, empty.storage), (StorageKind::Opfs, StorageKind::Opfs));
    assert_eq!(opfs_names(lib.library()).await.len(), 2);
    assert!(blob_keys(&lib).await.is_empty());
    assert_eq!(field(&lib.estimate().await.unwrap(), "smallFileBytes").as_f64(), Some(0.0));
}

/// A library holding both homes: list, read, checksum, sweep (neither home's assets are
/// missing or orphans), the budget's eviction, free-and-delete, `estimate()`.
pub async fn library_mixing_both_homes() {
    let Some(lib) = open_with("library_mixing_both_homes", r#""smallFileBytes":50000"#).await else { return };
    let (small_data, large_data) = (bytes(20_000, 6), bytes(70_000, 7));
    let small = import(&lib, &small_data, "small.bin").await;
    let large = import(&lib, &large_data, "large.bin").await;
    assert_eq!((small.storage, large.storage), (StorageKind::Indexeddb, StorageKind::Opfs));
    let listed: Vec<_> = Array::from(&lib.list(None).await.unwrap()).iter().map(|v| asset_of(&v)).collect();
    assert_eq!(
        listed.iter().map(|a| (a.id.clone(), a.storage)).collect::<Vec<_>>(),
        vec![(small.id.clone(), StorageKind::Indexeddb), (large.id.clone(), StorageKind::Opfs)]
    );
    for (a, data) in [(&small, &small_data), (&large, &large_data)] {
        assert_eq!(read_all(&lib.get_file(a.id.clone().into()).await.unwrap()).await, *data);
        assert_eq!(lib.checksum(a.id.clone().into()).await.unwrap().as_string(), Some(sha_hex(data)));
    }
    // Nothing in either home is an orphan or missing; both still read afterwards.
    let report = lib.sweep(Some(js_sys::JSON::parse(r#"{"graceMs":0}"#).unwrap())).await.unwrap();
    for k in ["removedTemp", "removedOrphans", "missingBytes"] {
        assert_eq!(Array::from(&field(&report, k)).length(), 0, "{k}: {report:?}");
    }
    assert_eq!(opfs_names(lib.library()).await, vec![large.id.clone()]);
    assert_eq!(blob_keys(&lib).await, vec![small.id.clone()]);
    let info = lib.estimate().await.unwrap();
    assert_eq!(field(&info, "localBytes").as_f64(), Some(90_000.0));

    // Evicted under a budget of 0 once synced: both copies go, from each home.
    for a in [&small, &large] {
        let sha = a.sha256.clone();
        lib.library()
            .catalog()
            .update_record(&a.id, move |r| {
                r.sync_status = SyncStatus::Synced;
                r.cloud_id = Some(r.id.clone());
                r.sha256 = r.sha256.take().or(sha.clone());
                true
            })
            .await
            .unwrap();
    }
    let report = lib.set_budget(js_sys::JSON::parse(r#"{"maxBytes":0}"#).unwrap()).await.unwrap();
    let evicted = Array::from(&field(&report, "evicted"));
    assert_eq!(evicted.length(), 2, "both homes are evictable");
    for a in [&small, &large] {
        assert_eq!(asset_of(&lib.get(a.id.clone().into()).await.unwrap()).storage, StorageKind::Remote);
    }
    assert!(opfs_names(lib.library()).await.is_empty(), "the OPFS copy went");
    assert!(blob_keys(&lib).await.is_empty(), "the IndexedDB copy went");

    // Delete: each home's bytes go with the record.
    lib.set_budget(js_sys::JSON::parse(r#"{"maxBytes":1e9}"#).unwrap()).await.unwrap();
    let small = import(&lib, &small_data, "small2.bin").await;
    let large = import(&lib, &large_data, "large2.bin").await;
    assert_eq!((blob_keys(&lib).await.len(), opfs_names(lib.library()).await.len()), (1, 1));
    lib.delete(small.id.clone().into()).await.unwrap();
    assert!(blob_keys(&lib).await.is_empty());
    lib.delete(large.id.clone().into()).await.unwrap();
    assert!(opfs_names(lib.library()).await.is_empty());
    assert_js_error(lib.get(small.id.into()).await, "NotFoundError", "ASSET_NOT_FOUND");
}

/// Bad `smallFileBytes` values are refused with the typed error of every bad option.
pub async fn bad_small_file_bytes_are_refused() {
    for value in ["-1", "0.5", "\"1\"", "null", "1e12", "true", "{}"] {
        let json = format!(r#"{{"name":"{}","smallFileBytes":{value}}}"#, unique("bad"));
        let r = MediaLibrary::open(Some(js_sys::JSON::parse(&json).unwrap())).await.map(|_| ());
        assert_js_error(r, "InvalidInputError", "INVALID_OPTIONS");
    }
    // NaN and Infinity (JSON turns them into null) are refused too, not taken as the default.
    for value in [f64::NAN, f64::INFINITY] {
        let opts = js_sys::Object::new();
        Reflect::set(&opts, &"name".into(), &unique("bad").into()).unwrap();
        Reflect::set(&opts, &"smallFileBytes".into(), &value.into()).unwrap();
        let r = MediaLibrary::open(Some(opts.into())).await.map(|_| ());
        assert_js_error(r, "InvalidInputError", "INVALID_OPTIONS");
    }
}

/// A library written before small files moved (its small assets are OPFS files) opens with
/// the default threshold, reads them, keeps them through a sweep; new small ones go to IndexedDB.
pub async fn old_library_small_assets_in_opfs_still_read() {
    let Some(old) = open_with("old_library_small_assets_in_opfs_still_read", r#""smallFileBytes":0"#).await else {
        return;
    };
    let name = old.name();
    let data = bytes(3_000, 8);
    let a = import(&old, &data, "old.bin").await;
    assert_eq!(a.storage, StorageKind::Opfs);
    old.close();
    let json = format!(r#"{{"name":"{name}","sweepGraceMs":0}}"#);
    let lib = MediaLibrary::open(Some(js_sys::JSON::parse(&json).unwrap())).await.unwrap();
    assert_eq!(asset_of(&lib.get(a.id.clone().into()).await.unwrap()).storage, StorageKind::Opfs, "not migrated");
    assert_eq!(read_all(&lib.get_file(a.id.clone().into()).await.unwrap()).await, data);
    let report = lib.sweep(Some(js_sys::JSON::parse(r#"{"graceMs":0}"#).unwrap())).await.unwrap();
    assert_eq!(Array::from(&field(&report, "removedOrphans")).length(), 0);
    assert_eq!(opfs_names(lib.library()).await, vec![a.id.clone()]);
    let new = import(&lib, &data, "new.bin").await;
    assert_eq!(new.storage, StorageKind::Indexeddb);
    assert_eq!(read_all(&lib.get_file(a.id.into()).await.unwrap()).await, data);
}
