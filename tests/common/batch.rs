//! Batch imports (`importFiles`): one strict transaction for the records of a batch (counted
//! by wrapping `IDBDatabase.prototype.transaction`), and failures that stand alone.

use js_sys::{Array, Function};
use opfs_media::interop;
use wasm_bindgen::{JsCast, JsValue};

use super::{assert_js_error, asset_of, bytes, failing_blob, field, file, open, opfs_names, read_all};

/// Counts read-write transactions over the `assets` store from now on, with their durability,
/// until `stop` (which restores the prototype). Returns `stop`, whose result is
/// `[count, durabilities]`.
fn count_asset_writes() -> Function {
    let install = Function::new_no_args(
        "const proto = IDBDatabase.prototype, original = proto.transaction;
        const seen = [];
        proto.transaction = function (stores, mode, opts) {
            const names = typeof stores === 'string' ? [stores] : Array.from(stores);
            if (mode === 'readwrite' && names.includes('assets')) seen.push(opts?.durability ?? 'default');
            return original.apply(this, arguments);
        };
        return () => { proto.transaction = original; return [seen.length, seen]; };",
    );
    install.call0(&JsValue::NULL).unwrap().unchecked_into()
}

fn stop_counting(stop: &Function) -> (u32, Vec<String>) {
    let out = Array::from(&stop.call0(&JsValue::NULL).unwrap());
    let kinds = Array::from(&out.get(1)).iter().map(|v| v.as_string().unwrap()).collect();
    (out.get(0).as_f64().unwrap() as u32, kinds)
}

/// Collects `change` events as `kind:id`.
pub(crate) fn listen(lib: &interop::MediaLibrary) -> (std::rc::Rc<std::cell::RefCell<Vec<String>>>, JsValue) {
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::<String>::new()));
    let s2 = seen.clone();
    let cb = wasm_bindgen::closure::Closure::<dyn FnMut(web_sys::CustomEvent)>::new(move |e: web_sys::CustomEvent| {
        let d = e.detail();
        s2.borrow_mut().push(format!(
            "{}:{}",
            field(&d, "kind").as_string().unwrap(),
            field(&d, "id").as_string().unwrap()
        ));
    });
    lib.add_event_listener("change", cb.as_ref().unchecked_ref()).unwrap();
    (seen, cb.into_js_value())
}

pub async fn batch_commits_in_one_transaction(storage: &str) {
    let Some(lib) = open(storage).await else { return };
    // The counter sees every record write: three single imports are three transactions.
    let stop = count_asset_writes();
    for i in 0..3u8 {
        lib.import_file(file(&bytes(1000, i), &format!("one{i}.bin"), "").into(), None).await.unwrap();
    }
    assert_eq!(stop_counting(&stop).0, 3, "the counter sees one transaction per single import");

    let (events, _cb) = listen(&lib);
    let n = 40usize;
    let data: Vec<Vec<u8>> = (0..n).map(|i| bytes(20_000 + i * 13, i as u8)).collect();
    let files: Array =
        data.iter().enumerate().map(|(i, d)| JsValue::from(file(d, &format!("b{i:02}.bin"), "image/png"))).collect();
    let stop = count_asset_writes();
    let out =
        lib.import_files(files.into(), Some(js_sys::JSON::parse(r#"{"tags":["batch"]}"#).unwrap())).await.unwrap();
    let (count, durability) = stop_counting(&stop);
    assert_eq!(count, 1, "{n} records in one transaction");
    assert_eq!(durability, vec!["strict"]);

    let out = Array::from(&out);
    assert_eq!(out.length() as usize, n);
    let ids: Vec<String> = out
        .iter()
        .enumerate()
        .map(|(i, r)| {
            assert!(field(&r, "error").is_undefined(), "file {i} failed: {:?}", field(&field(&r, "error"), "message"));
            let a = asset_of(&field(&r, "asset"));
            assert_eq!(field(&r, "id").as_string().unwrap(), a.id);
            assert_eq!(
                (a.name.as_str(), a.size, a.tags.as_slice()),
                (format!("b{i:02}.bin").as_str(), data[i].len() as f64, &["batch".to_owned()][..])
            );
            a.id
        })
        .collect();
    // Listed oldest first in input order, every byte there, every upload queued, events in order.
    let listed: Vec<String> =
        Array::from(&lib.list(Some(js_sys::JSON::parse(r#"{"tag":"batch"}"#).unwrap())).await.unwrap())
            .iter()
            .map(|a| asset_of(&a).id)
            .collect();
    assert_eq!(listed, ids, "input order");
    for i in [0, n / 2, n - 1] {
        assert_eq!(read_all(&lib.get_file(ids[i].clone().into()).await.unwrap()).await, data[i]);
    }
    let queued = lib.library().catalog().outbox().await.unwrap();
    assert!(ids.iter().all(|id| queued.iter().any(|e| &e.id == id)), "every import queues its upload");
    assert_eq!(*events.borrow(), ids.iter().map(|id| format!("import:{id}")).collect::<Vec<_>>());
    if lib.storage() == "opfs" {
        assert_eq!(opfs_names(lib.library()).await.len(), n + 3, "one committed file each, no temp");
    }
    assert_eq!(lib.library().sweep(0.0).await.unwrap(), Default::default());
    // An empty batch is fine; a set works like an array.
    assert_eq!(Array::from(&lib.import_files(Array::new().into(), None).await.unwrap()).length(), 0);
    let set = js_sys::Set::new(&Array::of1(&file(b"s", "set.bin", "").into()));
    assert!(field(&Array::from(&lib.import_files(set.into(), None).await.unwrap()).get(0), "id").is_string());
}

/// The error a file must fail with (`name`, `code`), or `None`: stored.
type Expect = Option<(&'static str, &'static str)>;

pub async fn batch_failures_stand_alone(storage: &str) {
    let Some(lib) = open(storage).await else { return };
    let good = |i: u8| JsValue::from(file(&bytes(10_000, i), &format!("g{i}.bin"), ""));
    // One per failure kind, between good files: bad input, a bad option, an unreadable
    // source (a write error), and the quota hit part-way through one file's bytes.
    let entries: Vec<(JsValue, JsValue, Expect)> = vec![
        (good(0), JsValue::UNDEFINED, None),
        (file(b"x", "../x", "").into(), JsValue::UNDEFINED, Some(("InvalidInputError", "NAME_IS_PATH"))),
        (good(2), JsValue::UNDEFINED, None),
        (JsValue::from(42), JsValue::UNDEFINED, Some(("InvalidInputError", "NOT_A_BLOB"))),
        (good(4), js_sys::JSON::parse(r#"{"colour":"red"}"#).unwrap(), Some(("InvalidInputError", "INVALID_OPTIONS"))),
        (failing_blob(1), JsValue::UNDEFINED, Some(("InvalidInputError", "SOURCE_UNREADABLE"))),
        (
            file(&bytes(400_000, 6), "big.bin", "").into(),
            JsValue::UNDEFINED,
            Some(("QuotaExceededError", "QUOTA_EXCEEDED")),
        ),
        (good(7), js_sys::JSON::parse(r#"{"tags":["seven"]}"#).unwrap(), None),
    ];
    let files: Array = entries.iter().map(|e| e.0.clone()).collect();
    let opts: Array = entries.iter().map(|e| e.1.clone()).collect();
    lib.library().simulate_quota_after(Some(100_000));
    let stop = count_asset_writes();
    let out = Array::from(&lib.import_files(files.into(), Some(opts.into())).await.unwrap());
    let (count, _) = stop_counting(&stop);
    lib.library().simulate_quota_after(None);
    assert_eq!(out.length() as usize, entries.len());
    let mut stored = Vec::new();
    for (i, (r, (_, _, want))) in out.iter().zip(&entries).enumerate() {
        match want {
            Some((name, code)) => {
                assert!(field(&r, "id").is_undefined() && field(&r, "asset").is_undefined(), "file {i}");
                assert_js_error(Err::<(), _>(field(&r, "error")), name, code);
            }
            None => {
                assert!(field(&r, "error").is_undefined(), "file {i}: {:?}", field(&field(&r, "error"), "message"));
                stored.push(asset_of(&field(&r, "asset")));
            }
        }
    }
    assert_eq!(count, 1, "the good files still share one transaction");
    assert_eq!(stored.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["g0.bin", "g2.bin", "g7.bin"]);
    assert_eq!(stored[2].tags, ["seven"], "per-file options");
    // Nothing half-written: the good records only, their bytes only, no temp, no orphan.
    let ids: Vec<String> = stored.iter().map(|a| a.id.clone()).collect();
    let listed: Vec<String> = Array::from(&lib.list(None).await.unwrap()).iter().map(|a| asset_of(&a).id).collect();
    assert_eq!(listed, ids);
    assert_eq!(lib.library().catalog().outbox().await.unwrap().len(), 3, "no upload queued for a failed file");
    if lib.storage() == "opfs" {
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(opfs_names(lib.library()).await, sorted);
    }
    assert_eq!(lib.library().sweep(0.0).await.unwrap(), Default::default());
    for (a, i) in stored.iter().zip([0u8, 2, 7]) {
        assert_eq!(read_all(&lib.get_file(a.id.clone().into()).await.unwrap()).await, bytes(10_000, i));
    }
}

pub async fn batch_call_errors_and_module_function() {
    let lib_files = |v: Vec<JsValue>| -> JsValue { v.into_iter().collect::<Array>().into() };
    let one = || JsValue::from(file(b"m", "m.bin", ""));
    for not_a_list in [JsValue::from(42), JsValue::from("abc"), JsValue::NULL, one()] {
        assert_js_error(
            interop::import_files_to_library(not_a_list, None).await,
            "InvalidInputError",
            "INVALID_OPTIONS",
        );
    }
    let two_opts = js_sys::JSON::parse("[{}, {}]").unwrap();
    assert_js_error(
        interop::import_files_to_library(lib_files(vec![one()]), Some(two_opts)).await,
        "InvalidInputError",
        "INVALID_OPTIONS",
    );
    let bad_shared = js_sys::JSON::parse(r#"{"colour":"red"}"#).unwrap();
    assert_js_error(
        interop::import_files_to_library(lib_files(vec![one()]), Some(bad_shared)).await,
        "InvalidInputError",
        "INVALID_OPTIONS",
    );
    let out = Array::from(&interop::import_files_to_library(lib_files(vec![one(), one()]), None).await.unwrap());
    for r in out.iter() {
        let id = field(&r, "id").as_string().unwrap();
        assert_eq!(asset_of(&interop::get_asset(id.clone().into()).await.unwrap()).name, "m.bin");
        interop::delete_asset(id.into()).await.unwrap();
    }
}

/// A record the catalog refuses (a put that throws, as a value IndexedDB cannot store does)
/// fails the group's transaction: the others are then committed one by one and only the
/// refused file fails, its bytes removed.
pub async fn batch_group_failure_commits_the_rest_alone(storage: &str) {
    let Some(lib) = open(storage).await else { return };
    let poison = Function::new_no_args(
        "const proto = IDBObjectStore.prototype, original = proto.put;
        proto.put = function (value) {
            if (this.name === 'assets' && value && value.name === 'poison.bin') throw new DOMException('refused for the test', 'DataError');
            return original.apply(this, arguments);
        };
        return () => { proto.put = original; };",
    );
    let unpoison: Function = poison.call0(&JsValue::NULL).unwrap().unchecked_into();
    let names = ["a.bin", "b.bin", "poison.bin", "c.bin"];
    let files: Array =
        names.iter().enumerate().map(|(i, n)| JsValue::from(file(&bytes(5000, i as u8), n, ""))).collect();
    let stop = count_asset_writes();
    let out = lib.import_files(files.into(), None).await;
    let (count, _) = stop_counting(&stop);
    unpoison.call0(&JsValue::NULL).unwrap();
    let out = Array::from(&out.unwrap());
    assert_eq!(count, 1 + 4, "the group, then each file alone");
    assert_js_error(Err::<(), _>(field(&out.get(2), "error")), "StorageError", "STORAGE_FAILED");
    let ids: Vec<String> = [0, 1, 3].iter().map(|&i| asset_of(&field(&out.get(i), "asset")).id).collect();
    let listed: Vec<String> = Array::from(&lib.list(None).await.unwrap()).iter().map(|a| asset_of(&a).id).collect();
    assert_eq!(listed, ids);
    assert_eq!(lib.library().catalog().outbox().await.unwrap().len(), 3);
    if lib.storage() == "opfs" {
        assert_eq!(opfs_names(lib.library()).await, ids, "the refused file's bytes are removed");
    }
    assert_eq!(lib.library().sweep(0.0).await.unwrap(), Default::default());
}
