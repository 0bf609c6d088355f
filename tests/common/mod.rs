//! Library tests shared by the page suite (`web_page.rs`) and the worker suite
//! (`web_worker.rs`). Each test opens its own uniquely named library.

use js_sys::{Array, Reflect, Uint8Array};
use opfs_media::interop::{self, MediaLibrary};
use opfs_media::platform;
use opfs_media::{Library, StorageKind, SyncStatus};
use sha2::{Digest, Sha256};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, File, FilePropertyBag, FileSystemDirectoryHandle};

pub mod batch;
pub mod budget;
pub mod failures;
pub mod listing;
pub mod shapes;
pub mod small;
pub mod stream;
#[allow(unused_imports)]
pub use batch::{
    batch_call_errors_and_module_function, batch_commits_in_one_transaction, batch_failures_stand_alone,
    batch_group_failure_commits_the_rest_alone,
};
#[allow(unused_imports)] // used through `library_suite!`, not by the sync suites
pub use budget::{budget_evicts_least_recently_used, held_and_read_assets_are_not_evicted};
#[allow(unused_imports)]
pub use failures::{
    bad_input_is_refused_cleanly, failing_blob, old_and_corrupt_records, quota_exhausted_part_way,
    sweep_removes_orphans_and_reports_missing, unreadable_source_leaves_nothing, zero_byte_file_is_accepted,
};
#[allow(unused_imports)]
pub use listing::list_matches_parsed_records;
#[allow(unused_imports)]
pub use shapes::{missing_opfs_falls_back, older_safari_without_create_writable, one_argument_move_engines};
#[allow(unused_imports)]
pub use small::{
    bad_small_file_bytes_are_refused, library_mixing_both_homes, old_library_small_assets_in_opfs_still_read,
    small_asset_goes_to_indexeddb_in_its_record_transaction, small_batch_is_one_transaction_and_no_opfs_file,
    small_file_bytes_zero_keeps_everything_in_opfs, threshold_boundary_goes_to_opfs,
};
#[allow(unused_imports)]
pub use stream::{
    chunk_hashing_yields_in_a_page, chunk_reads_reuse_their_buffer, download_chunks_are_views, stream_chunks_are_views,
    stream_failures_leave_nothing, stream_import_roundtrip, sweep_removes_stale_pieces,
};

/// A 1x1 red PNG.
pub const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53, 0xDE, 0x00, 0x00, 0x00, 0x0C, 0x49,
    0x44, 0x41, 0x54, 0x08, 0xD7, 0x63, 0xF8, 0xCF, 0xC0, 0x00, 0x00, 0x03, 0x01, 0x01, 0x00, 0x18, 0xDD, 0x8D, 0xB0,
    0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

pub fn unique(prefix: &str) -> String {
    let mut b = [0u8; 6];
    platform::fill_random(&mut b);
    format!("{prefix}-{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>())
}

/// Whether this engine exposes OPFS (WebKitGTK, for one, has no `navigator.storage`).
pub fn engine_has_opfs() -> bool {
    platform::storage_manager().is_some_and(|sm| platform::has_method(&sm, "getDirectory"))
}

/// What `storage: "auto"` must pick on this engine.
pub fn auto_storage() -> StorageKind {
    if engine_has_opfs() {
        StorageKind::Opfs
    } else {
        StorageKind::Indexeddb
    }
}

/// Opens a fresh library on `storage`. The `"opfs"` twin of each test is about OPFS (temp
/// files, renames, crashes mid-write): it keeps every asset there (`smallFileBytes: 0`).
/// Small files in IndexedDB under the default threshold are `small.rs`'s subject.
pub(crate) async fn try_open(storage: &str) -> Result<MediaLibrary, JsValue> {
    let opts = js_sys::Object::new();
    Reflect::set(&opts, &"name".into(), &unique("t").into()).unwrap();
    Reflect::set(&opts, &"storage".into(), &storage.into()).unwrap();
    if storage == "opfs" {
        Reflect::set(&opts, &"smallFileBytes".into(), &0.into()).unwrap();
    }
    MediaLibrary::open(Some(opts.into())).await
}

thread_local! {
    /// The running test's name (tests run one at a time), for the skip report.
    static CURRENT_TEST: std::cell::Cell<&'static str> = const { std::cell::Cell::new("(unnamed test)") };
}

/// Names the running test, so that `open` can report it as skipped by name.
pub fn running(name: &'static str) {
    CURRENT_TEST.with(|c| c.set(name));
}

/// Without OPFS: `storage: "opfs"` is a typed error, `auto` falls back to IndexedDB.
pub(crate) async fn assert_no_opfs_outcome() {
    assert_js_error(try_open("opfs").await.map(|_| ()), "StorageUnavailableError", "STORAGE_UNAVAILABLE");
    assert_eq!(try_open("auto").await.unwrap().storage(), "indexeddb");
}

/// Opens a fresh library on `storage`. On an engine without OPFS an `"opfs"` library cannot
/// exist: the typed error and the fallback are checked instead, and `None` is returned (the
/// OPFS-specific body cannot run there; the IndexedDB twin of each test still does). The test
/// is then reported as skipped by name (`SKIPPED <name>: ...`), which
/// scripts/test-browsers.sh counts and lists apart from the tests that passed.
pub async fn open(storage: &str) -> Option<MediaLibrary> {
    if storage == "opfs" && !engine_has_opfs() {
        assert_no_opfs_outcome().await;
        let name = CURRENT_TEST.with(|c| c.get());
        wasm_bindgen_test::console_log!(
            "SKIPPED {name}: this engine has no OPFS (checked the typed error and the IndexedDB fallback instead)"
        );
        return None;
    }
    Some(try_open(storage).await.expect("open library"))
}

pub fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

pub fn file(data: &[u8], name: &str, mime: &str) -> File {
    let parts = Array::of1(&Uint8Array::from(data));
    let bag = FilePropertyBag::new();
    bag.set_type(mime);
    File::new_with_u8_array_sequence_and_options(&parts, name, &bag).unwrap()
}

pub fn sha_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn read_all(blob: &Blob) -> Vec<u8> {
    let buf = JsFuture::from(blob.array_buffer()).await.unwrap();
    Uint8Array::new(&buf).to_vec()
}

pub fn field(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &k.into()).unwrap()
}

/// Asserts a rejected call is a JS `Error` with this `name` and `code`.
#[track_caller]
pub fn assert_js_error(result: Result<impl std::fmt::Debug, JsValue>, name: &str, code: &str) {
    let err = result.expect_err("expected an error");
    assert!(err.is_instance_of::<js_sys::Error>(), "not an Error: {err:?}");
    let got = (field(&err, "name").as_string().unwrap(), field(&err, "code").as_string().unwrap());
    assert_eq!(got, (name.to_owned(), code.to_owned()), "message: {:?}", field(&err, "message"));
    assert!(field(&err, "message").as_string().unwrap().len() > 10);
}

/// The library's OPFS directory, opened independently of the library.
pub async fn opfs_dir(lib: &Library) -> FileSystemDirectoryHandle {
    let sm = platform::storage_manager().unwrap();
    let mut dir: FileSystemDirectoryHandle = JsFuture::from(sm.get_directory()).await.unwrap().unchecked_into();
    for name in ["opfs-media", lib.name()] {
        dir = JsFuture::from(dir.get_directory_handle(name)).await.unwrap().unchecked_into();
    }
    dir
}

pub async fn opfs_names(lib: &Library) -> Vec<String> {
    let dir = opfs_dir(lib).await;
    let iter = platform::call(&dir, "keys", &[]).unwrap();
    let mut out = Vec::new();
    loop {
        let step = platform::call_async(&iter, "next", &[]).await.unwrap();
        if field(&step, "done").as_bool().unwrap() {
            break;
        }
        out.push(field(&step, "value").as_string().unwrap());
    }
    out.sort();
    out
}

pub async fn put_opfs_file(lib: &Library, name: &str, data: &[u8]) {
    let dir = opfs_dir(lib).await;
    let opts = web_sys::FileSystemGetFileOptions::new();
    opts.set_create(true);
    let h: web_sys::FileSystemFileHandle =
        JsFuture::from(dir.get_file_handle_with_options(name, &opts)).await.unwrap().unchecked_into();
    // The library's own choice of write path (WebKitGTK's workers cannot open sync access
    // handles, and a refused one leaves the file unwritable there).
    if lib.uses_sync_access_handle() {
        let sh: web_sys::FileSystemSyncAccessHandle =
            JsFuture::from(h.create_sync_access_handle()).await.unwrap().unchecked_into();
        sh.write_with_u8_array(data).unwrap();
        sh.flush().unwrap();
        sh.close();
    } else {
        let w = JsFuture::from(h.create_writable()).await.unwrap();
        platform::call_async(&w, "write", &[&Uint8Array::from(data)]).await.unwrap();
        platform::call_async(&w, "close", &[]).await.unwrap();
    }
}

pub fn user_agent() -> String {
    field(&field(&platform::global(), "navigator"), "userAgent").as_string().unwrap_or_default()
}

/// `Some(output)` if `fut` finishes within `ms`, else `None`.
pub async fn within<T>(fut: impl std::future::Future<Output = T>, ms: i32) -> Option<T> {
    let timer = js_sys::Promise::new(&mut |resolve, _| {
        platform::call(&platform::global(), "setTimeout", &[&resolve, &ms.into()]).unwrap();
    });
    let fut = std::pin::pin!(fut);
    match futures_util::future::select(fut, JsFuture::from(timer)).await {
        futures_util::future::Either::Left((out, _)) => Some(out),
        futures_util::future::Either::Right(_) => None,
    }
}

/// The keys the hand-written `MediaAsset` TypeScript interface declares as always present.
pub const RETURNED_KEYS: &[&str] =
    &["id", "handleName", "name", "type", "size", "createdAt", "updatedAt", "tags", "storage", "syncStatus"];

/// Parses a returned record, checking it has every non-optional key of the `.d.ts`.
pub fn asset_of(v: &JsValue) -> opfs_media::MediaAsset {
    for k in RETURNED_KEYS {
        assert!(!field(v, k).is_undefined(), "returned record lacks {k}: {v:?}");
    }
    serde_wasm_bindgen::from_value(v.clone()).expect("a MediaAsset")
}

// ---------------------------------------------------------------------------------------

pub async fn import_get_list_roundtrip(storage: &str, expect: StorageKind) {
    let Some(lib) = open(storage).await else { return };
    assert_eq!(lib.storage(), expect.as_str());
    // Above the default small-file threshold: `auto` puts a large file in OPFS where it can
    // (a small one goes to IndexedDB: small.rs).
    const SIZE: usize = opfs_media::home::DEFAULT_SMALL_FILE_BYTES as usize + 300_000;
    let data = bytes(SIZE, 7);
    let v = lib.import_file(file(&data, "holiday.jpg", "image/jpeg").into(), None).await.unwrap();
    let a = asset_of(&v);
    assert_eq!(a.name, "holiday.jpg");
    assert_eq!(a.mime_type, "image/jpeg");
    assert_eq!(a.size, SIZE as f64);
    // Not hashed while importing (docs/library.md, "Checksums"): on demand, then stored.
    assert_eq!(a.sha256, None);
    assert_eq!(lib.checksum(a.id.clone().into()).await.unwrap().as_string(), Some(sha_hex(&data)));
    let hashed = asset_of(&lib.get(a.id.clone().into()).await.unwrap());
    assert_eq!(hashed.sha256.as_deref(), Some(sha_hex(&data).as_str()));
    assert_eq!(hashed.updated_at, a.updated_at, "a checksum is not an edit");
    assert_eq!(a.sync_status, SyncStatus::Pending);
    assert_eq!(a.storage, expect);
    assert_eq!(a.handle_name, a.id);
    assert!(a.cloud_id.is_none() && a.cloud_url.is_none() && a.user_id.is_none());
    assert!(field(&v, "cloudId").is_undefined(), "cloud fields are absent, not null");
    assert_eq!(uuid::Uuid::parse_str(&a.id).unwrap().get_version_num(), 7);
    assert!(a.created_at > 1.6e12 && a.created_at == a.updated_at);

    let got = asset_of(&lib.get(a.id.clone().into()).await.unwrap());
    assert_eq!(got, opfs_media::MediaAsset { sha256: hashed.sha256.clone(), ..a.clone() });
    let listed = lib.list(None).await.unwrap();
    assert_eq!(Array::from(&listed).length(), 1);

    let f = lib.get_file(a.id.clone().into()).await.unwrap();
    assert_eq!((f.name(), f.type_(), f.size()), ("holiday.jpg".to_owned(), "image/jpeg".to_owned(), SIZE as f64));
    assert_eq!(read_all(&f).await, data);
    if expect == StorageKind::Opfs {
        assert_eq!(opfs_names(lib.library()).await, vec![a.id.clone()], "only the committed file, no temp");
    }
}

pub async fn image_is_drawable(storage: &str) {
    let Some(lib) = open(storage).await else { return };
    let a = asset_of(&lib.import_file(file(PNG_1X1, "dot.png", "image/png").into(), None).await.unwrap());
    let f = lib.get_file(a.id.into()).await.unwrap();
    let bitmap = platform::call_async(&platform::global(), "createImageBitmap", &[&f]).await.expect("decodable");
    assert_eq!(field(&bitmap, "width").as_f64(), Some(1.0));
}

pub async fn list_filter_update_and_events(storage: &str) {
    let Some(lib) = open(storage).await else { return };
    let (seen, cb) = batch::listen(&lib);

    let opts = js_sys::JSON::parse(r#"{"tags":["cats","cats","pets"]}"#).unwrap();
    let img = asset_of(&lib.import_file(file(PNG_1X1, "a.png", "image/png").into(), Some(opts)).await.unwrap());
    assert_eq!(img.tags, vec!["cats", "pets"]);
    let blob = Blob::new_with_u8_array_sequence(&Array::of1(&Uint8Array::from(&b"hello"[..]))).unwrap();
    let txt = asset_of(&lib.import_file(blob.into(), None).await.unwrap());
    assert_eq!((txt.name.as_str(), txt.mime_type.as_str()), ("untitled", "application/octet-stream"));

    let filter = |json: &str| js_sys::JSON::parse(json).unwrap();
    let only = |v: JsValue| Array::from(&v).iter().map(|x| asset_of(&x).id).collect::<Vec<_>>();
    assert_eq!(only(lib.list(Some(filter(r#"{"typePrefix":"image/"}"#))).await.unwrap()), vec![img.id.clone()]);
    assert_eq!(only(lib.list(Some(filter(r#"{"tag":"pets"}"#))).await.unwrap()), vec![img.id.clone()]);
    assert_eq!(only(lib.list(Some(filter(r#"{"syncStatus":"pending"}"#))).await.unwrap()).len(), 2);
    assert_eq!(only(lib.list(None).await.unwrap()), vec![img.id.clone(), txt.id.clone()], "oldest first");
    assert_js_error(lib.list(Some(filter(r#"{"colour":"red"}"#))).await, "InvalidInputError", "INVALID_OPTIONS");

    let up =
        asset_of(&lib.update(txt.id.clone().into(), filter(r#"{"name":"notes.txt","tags":["work"]}"#)).await.unwrap());
    assert_eq!((up.name.as_str(), up.tags.as_slice()), ("notes.txt", &["work".to_owned()][..]));
    assert!(up.updated_at > txt.updated_at);
    assert_eq!(up.created_at, txt.created_at);
    assert_js_error(
        lib.update(txt.id.clone().into(), filter(r#"{"name":"../etc"}"#)).await,
        "InvalidInputError",
        "NAME_IS_PATH",
    );
    assert_eq!(
        asset_of(&lib.get(txt.id.clone().into()).await.unwrap()).name,
        "notes.txt",
        "a refused edit changes nothing"
    );

    lib.delete(img.id.clone().into()).await.unwrap();
    assert_eq!(
        *seen.borrow(),
        vec![
            format!("import:{}", img.id),
            format!("import:{}", txt.id),
            format!("update:{}", txt.id),
            format!("delete:{}", img.id)
        ]
    );
    lib.remove_event_listener("change", cb.unchecked_ref()).unwrap();
}

pub async fn delete_and_unknown_ids(storage: &str) {
    let Some(lib) = open(storage).await else { return };
    let a = asset_of(&lib.import_file(file(b"bytes", "x.bin", "").into(), None).await.unwrap());
    lib.delete(a.id.clone().into()).await.unwrap();
    assert_js_error(lib.get(a.id.clone().into()).await, "NotFoundError", "ASSET_NOT_FOUND");
    assert_js_error(lib.get_file(a.id.clone().into()).await, "NotFoundError", "ASSET_NOT_FOUND");
    assert_js_error(lib.delete(a.id.clone().into()).await, "NotFoundError", "ASSET_NOT_FOUND");
    let unknown = "0190f0c2-7a0e-7cc0-8000-000000000000";
    assert_js_error(lib.get(unknown.into()).await, "NotFoundError", "ASSET_NOT_FOUND");
    assert_js_error(lib.update(unknown.into(), JsValue::UNDEFINED).await, "NotFoundError", "ASSET_NOT_FOUND");
    let long = "x".repeat(10_000);
    for bad in [
        JsValue::from("nope"),
        "../../etc/passwd".into(),
        "".into(),
        long.as_str().into(),
        JsValue::from(42),
        JsValue::NULL,
    ] {
        assert_js_error(lib.get(bad.clone()).await, "InvalidInputError", "MALFORMED_ID");
        assert_js_error(lib.delete(bad).await, "InvalidInputError", "MALFORMED_ID");
    }
    if lib.storage() == "opfs" {
        assert!(opfs_names(lib.library()).await.is_empty(), "deleted bytes are gone");
    }
    let report = lib.library().sweep(0.0).await.unwrap();
    assert_eq!(report, Default::default());
}

pub async fn delete_blob(cat: &opfs_media::store::catalog::Catalog, key: &str) {
    cat.delete_blob(key).await.unwrap();
}

/// `checksum` on both of its paths (WebCrypto for small files, the streaming WASM hasher
/// above 16 MiB), on unknown ids and on a record whose bytes are gone.
pub async fn checksum_on_demand(storage: &str) {
    let Some(lib) = open(storage).await else { return };
    let large = bytes(16 * 1024 * 1024 + 3, 11);
    let a = asset_of(&lib.import_file(file(&large, "large.bin", "").into(), None).await.unwrap());
    assert_eq!(lib.checksum(a.id.clone().into()).await.unwrap().as_string(), Some(sha_hex(&large)));
    let small = bytes(1000, 12);
    let b = asset_of(&lib.import_file(file(&small, "small.bin", "").into(), None).await.unwrap());
    assert_eq!(lib.checksum(b.id.clone().into()).await.unwrap().as_string(), Some(sha_hex(&small)));
    assert_js_error(
        lib.checksum("0190f0c2-7a0e-7cc0-8000-0000000000ee".into()).await,
        "NotFoundError",
        "ASSET_NOT_FOUND",
    );
    assert_js_error(lib.checksum("not an id".into()).await, "InvalidInputError", "MALFORMED_ID");
    let lost = asset_of(&lib.import_file(file(b"lost", "lost.txt", "").into(), None).await.unwrap());
    if lib.storage() == "opfs" {
        JsFuture::from(opfs_dir(lib.library()).await.remove_entry(&lost.handle_name)).await.unwrap();
    } else {
        delete_blob(lib.library().catalog(), &lost.handle_name).await;
    }
    assert_js_error(lib.checksum(lost.id.clone().into()).await, "NotFoundError", "BYTES_MISSING");
    assert_eq!(asset_of(&lib.get(lost.id.into()).await.unwrap()).sha256, None, "nothing stored on failure");
}

pub async fn concurrent_imports(storage: &str) {
    let Some(lib) = open(storage).await else { return };
    let files: Vec<File> = (0..12).map(|i| file(&bytes(10_000 + i, i as u8), &format!("f{i}.bin"), "")).collect();
    let results = futures_util::future::join_all(files.iter().map(|f| lib.import_file(f.clone().into(), None))).await;
    let mut ids: Vec<String> = results.into_iter().map(|r| asset_of(&r.unwrap()).id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 12);
    let all = Array::from(&lib.list(None).await.unwrap());
    for a in all.iter() {
        let a = asset_of(&a);
        let n: usize = a.name[1..a.name.len() - 4].parse().unwrap();
        assert_eq!(read_all(&lib.get_file(a.id.into()).await.unwrap()).await, bytes(10_000 + n, n as u8));
    }
}

pub async fn bad_library_options() {
    for json in [
        r#"{"name":"../evil"}"#,
        r#"{"name":""}"#,
        r#"{"storage":"floppy"}"#,
        r#"{"nmae":"typo"}"#,
        r#"{"budget":{"maxBytes":1,"maxByte":1}}"#,
        r#"["x"]"#,
    ] {
        let r = MediaLibrary::open(Some(js_sys::JSON::parse(json).unwrap())).await.map(|_| ());
        let code = if json.contains("name\":") { "INVALID_LIBRARY_NAME" } else { "INVALID_OPTIONS" };
        assert_js_error(r, "InvalidInputError", code);
    }
}

/// The module functions (`importFileToLibrary`, ...) on the default library.
pub async fn module_functions_on_default_library() {
    let data = bytes(1234, 3);
    let id = interop::import_file_to_library(file(&data, "module.bin", "").into(), None).await.unwrap();
    let a = asset_of(&interop::get_asset(id.clone().into()).await.unwrap());
    assert_eq!(a.size, 1234.0);
    assert!(Array::from(&interop::list_assets(None).await.unwrap()).iter().any(|x| asset_of(&x).id == id));
    let f = interop::get_asset_file(id.clone().into()).await.unwrap();
    assert_eq!(read_all(&f).await, data);
    interop::update_asset(id.clone().into(), js_sys::JSON::parse(r#"{"name":"renamed.bin"}"#).unwrap()).await.unwrap();
    if platform::storage_manager().is_some() {
        let info = interop::estimate().await.unwrap();
        assert!(field(&info, "quota").as_f64().unwrap() > 0.0);
    } else {
        assert_js_error(interop::estimate().await, "StorageUnavailableError", "STORAGE_UNAVAILABLE");
    }
    // Firefox answers persist() with a permission prompt that nobody clicks in automation:
    // the promise stays pending (documented). Elsewhere it must settle with a boolean.
    let firefox_page = !platform::is_worker() && user_agent().contains("Firefox/");
    let answer = within(interop::request_persistence(), 3000).await;
    assert!(answer.is_some() || firefox_page, "requestPersistence() did not settle");
    interop::delete_asset(id.clone().into()).await.unwrap();
    assert_js_error(interop::delete_asset(id.into()).await, "NotFoundError", "ASSET_NOT_FOUND");
    assert_js_error(interop::import_file_to_library(JsValue::from("x"), None).await, "InvalidInputError", "NOT_A_BLOB");
}

/// A library dropped without `close()` detaches from its BroadcastChannel: a later message
/// must not call its freed closure (that throws "closure invoked ... after being dropped").
pub async fn dropped_library_leaves_no_listener() {
    use wasm_bindgen::closure::Closure;
    let name = unique("dropped");
    let lib = Library::open(&name, opfs_media::store::StoragePreference::Auto).await.unwrap();
    drop(lib);
    let errors = std::rc::Rc::new(std::cell::RefCell::new(Vec::<String>::new()));
    let sink = errors.clone();
    let on_error = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        sink.borrow_mut().push(field(&e, "message").as_string().unwrap_or_default());
    });
    let global: JsValue = platform::global().into();
    platform::call(&global, "addEventListener", &[&"error".into(), on_error.as_ref()]).unwrap();
    // A receiver opened after the dropped library's channel gets the message after it would
    // have (one global, one task source, receivers in creation order): once it has, a listener
    // left behind would have run and thrown.
    let probe = web_sys::BroadcastChannel::new(&opfs_media::store::channel_name(&name)).unwrap();
    let got = std::rc::Rc::new(std::cell::Cell::new(false));
    let flag = got.clone();
    let on_probe = Closure::<dyn FnMut(JsValue)>::new(move |_| flag.set(true));
    probe.set_onmessage(Some(on_probe.as_ref().unchecked_ref()));
    let ch = web_sys::BroadcastChannel::new(&opfs_media::store::channel_name(&name)).unwrap();
    ch.post_message(&r#"{"t":"change","kind":"import","id":"x","sync":false}"#.into()).unwrap();
    let deadline = platform::now_ms() + 10_000.0;
    while !got.get() {
        assert!(platform::now_ms() < deadline, "the message never reached the probe");
        platform::sleep(5.0).await;
    }
    probe.close();
    ch.close();
    platform::call(&global, "removeEventListener", &[&"error".into(), on_error.as_ref()]).unwrap();
    assert_eq!(*errors.borrow(), Vec::<String>::new());
}

/// The sync service's write-back changes many records in one batch: other contexts get one
/// channel message for the batch, and each of their libraries turns it back into one
/// `change` event per record (`remote: true`), as they did with a message each.
pub async fn batched_changes_reach_other_contexts_once_each() {
    use wasm_bindgen::closure::Closure;
    let name = unique("batched");
    let here = Library::open(&name, opfs_media::store::StoragePreference::Auto).await.unwrap();
    let there = Library::open(&name, opfs_media::store::StoragePreference::Auto).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..3u8 {
        let source: JsValue = file(&bytes(100, i + 1), &format!("b{i}.png"), "image/png").into();
        ids.push(here.import(&source, Default::default()).await.unwrap().id);
    }
    // Every change event and channel message is recorded with its kind, so the imports' own
    // (`import`) ones count for nothing, whenever they arrive.
    let events = std::rc::Rc::new(std::cell::RefCell::new(Vec::<(String, String, bool)>::new()));
    let sink = events.clone();
    let on_change = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        let d = field(&e, "detail");
        let text = |k: &str| field(&d, k).as_string().unwrap_or_default();
        sink.borrow_mut().push((text("kind"), text("id"), field(&d, "remote").as_bool() == Some(true)));
    });
    there.events().add_event_listener_with_callback("change", on_change.as_ref().unchecked_ref()).unwrap();
    let messages = std::rc::Rc::new(std::cell::RefCell::new(Vec::<(String, Vec<String>)>::new()));
    let count = messages.clone();
    let raw = web_sys::BroadcastChannel::new(&opfs_media::store::channel_name(&name)).unwrap();
    let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |m: web_sys::MessageEvent| {
        let msg = js_sys::JSON::parse(&m.data().as_string().unwrap_or_default()).unwrap_or_default();
        let list = field(&msg, "ids");
        let mut ids: Vec<String> = match list.dyn_ref::<js_sys::Array>() {
            Some(a) => a.iter().filter_map(|v| v.as_string()).collect(),
            None => Vec::new(),
        };
        ids.extend(field(&msg, "id").as_string());
        count.borrow_mut().push((field(&msg, "kind").as_string().unwrap_or_default(), ids));
    });
    raw.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    let mut batch = opfs_media::store::catalog::Batch::default();
    for id in &ids {
        batch.edits.push((
            id.clone(),
            Box::new(|r: &mut opfs_media::MediaAsset| {
                r.tags.push("seen".into());
                true
            }),
        ));
    }
    let (changed, _) = here.apply_synced(batch, false).await.unwrap();
    assert_eq!(changed, ids);
    // A marker after the batch, from the same library: a BroadcastChannel delivers one
    // sender's messages to each receiver in the order they were posted, so once both
    // receivers have the marker, everything the batch posted has arrived (nothing left to
    // wait out with a sleep, and a late duplicate would be counted).
    let marker =
        here.import(&file(&bytes(10, 9), "marker.png", "image/png").into(), Default::default()).await.unwrap().id;
    let has_marker = || {
        events.borrow().iter().any(|(k, id, _)| k == "import" && *id == marker)
            && messages.borrow().iter().any(|(k, got)| k == "import" && got.contains(&marker))
    };
    let deadline = platform::now_ms() + 10_000.0;
    while !has_marker() {
        assert!(
            platform::now_ms() < deadline,
            "the marker {marker} never came over the channel: events {:?}, messages {:?}",
            events.borrow(),
            messages.borrow()
        );
        platform::sleep(10.0).await;
    }
    let seen: Vec<(String, bool)> =
        events.borrow().iter().filter(|(k, ..)| k == "update").map(|(_, id, remote)| (id.clone(), *remote)).collect();
    assert_eq!(seen, ids.iter().map(|id| (id.clone(), true)).collect::<Vec<_>>(), "one remote event per record");
    let updates: Vec<Vec<String>> =
        messages.borrow().iter().filter(|(k, _)| k == "update").map(|(_, got)| got.clone()).collect();
    assert_eq!(updates, vec![ids.clone()], "one channel message for the batch");
    raw.close();
    there.close();
    here.close();
}

/// Declares one shared test per storage backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($opfs:ident, $idb:ident => $f:ident;)*) => {$(
        #[wasm_bindgen_test]
        async fn $opfs() {
            common::running(stringify!($opfs));
            common::$f("opfs").await
        }
        #[wasm_bindgen_test]
        async fn $idb() {
            common::running(stringify!($idb));
            common::$f("indexeddb").await
        }
    )*};
}

/// Declares every shared test as a `#[wasm_bindgen_test]` in the including binary.
#[macro_export]
macro_rules! library_suite {
    () => {
        use wasm_bindgen_test::wasm_bindgen_test;

        on_both_backends! {
            opfs_image_is_drawable, idb_image_is_drawable => image_is_drawable;
            opfs_list_filter_update_and_events, idb_list_filter_update_and_events => list_filter_update_and_events;
            opfs_delete_and_unknown_ids, idb_delete_and_unknown_ids => delete_and_unknown_ids;
            opfs_bad_input_is_refused_cleanly, idb_bad_input_is_refused_cleanly => bad_input_is_refused_cleanly;
            opfs_zero_byte_file_is_accepted, idb_zero_byte_file_is_accepted => zero_byte_file_is_accepted;
            opfs_checksum_on_demand, idb_checksum_on_demand => checksum_on_demand;
            opfs_quota_exhausted_part_way, idb_quota_exhausted_part_way => quota_exhausted_part_way;
            opfs_unreadable_source_leaves_nothing, idb_unreadable_source_leaves_nothing => unreadable_source_leaves_nothing;
            opfs_sweep_removes_orphans_and_reports_missing, idb_sweep_removes_orphans_and_reports_missing => sweep_removes_orphans_and_reports_missing;
            opfs_old_and_corrupt_records, idb_old_and_corrupt_records => old_and_corrupt_records;
            opfs_concurrent_imports, idb_concurrent_imports => concurrent_imports;
            opfs_stream_import_roundtrip, idb_stream_import_roundtrip => stream_import_roundtrip;
            opfs_stream_failures_leave_nothing, idb_stream_failures_leave_nothing => stream_failures_leave_nothing;
            opfs_sweep_removes_stale_pieces, idb_sweep_removes_stale_pieces => sweep_removes_stale_pieces;
            opfs_stream_chunks_are_views, idb_stream_chunks_are_views => stream_chunks_are_views;
            opfs_budget_evicts_least_recently_used, idb_budget_evicts_least_recently_used => budget_evicts_least_recently_used;
            opfs_held_and_read_assets_are_not_evicted, idb_held_and_read_assets_are_not_evicted => held_and_read_assets_are_not_evicted;
            opfs_batch_commits_in_one_transaction, idb_batch_commits_in_one_transaction => batch_commits_in_one_transaction;
            opfs_batch_failures_stand_alone, idb_batch_failures_stand_alone => batch_failures_stand_alone;
            opfs_list_matches_parsed_records, idb_list_matches_parsed_records => list_matches_parsed_records;
            opfs_batch_group_failure_commits_the_rest_alone, idb_batch_group_failure_commits_the_rest_alone => batch_group_failure_commits_the_rest_alone;
        }

        #[wasm_bindgen_test]
        async fn opfs_import_get_list_roundtrip() {
            common::import_get_list_roundtrip("auto", common::auto_storage()).await
        }
        #[wasm_bindgen_test]
        async fn idb_import_get_list_roundtrip() {
            common::import_get_list_roundtrip("indexeddb", opfs_media::StorageKind::Indexeddb).await
        }
        #[wasm_bindgen_test]
        async fn opfs_download_chunks_are_views() {
            common::running("opfs_download_chunks_are_views");
            common::download_chunks_are_views("opfs").await
        }
        #[wasm_bindgen_test]
        async fn chunk_hashing_yields_in_a_page() {
            common::chunk_hashing_yields_in_a_page().await
        }
        #[wasm_bindgen_test]
        async fn chunk_reads_reuse_their_buffer() {
            common::chunk_reads_reuse_their_buffer().await
        }
        #[wasm_bindgen_test]
        async fn missing_opfs_falls_back() {
            common::missing_opfs_falls_back().await
        }
        #[wasm_bindgen_test]
        async fn dropped_library_leaves_no_listener() {
            common::dropped_library_leaves_no_listener().await
        }
        #[wasm_bindgen_test]
        async fn batched_changes_reach_other_contexts_once_each() {
            common::batched_changes_reach_other_contexts_once_each().await
        }
        #[wasm_bindgen_test]
        async fn batch_call_errors_and_module_function() {
            common::batch_call_errors_and_module_function().await
        }
        #[wasm_bindgen_test]
        async fn one_argument_move_engines() {
            common::one_argument_move_engines().await
        }
        #[wasm_bindgen_test]
        async fn older_safari_without_create_writable() {
            common::older_safari_without_create_writable().await
        }
        #[wasm_bindgen_test]
        async fn small_asset_goes_to_indexeddb_in_its_record_transaction() {
            common::running("small_asset_goes_to_indexeddb_in_its_record_transaction");
            common::small_asset_goes_to_indexeddb_in_its_record_transaction().await
        }
        #[wasm_bindgen_test]
        async fn small_batch_is_one_transaction_and_no_opfs_file() {
            common::running("small_batch_is_one_transaction_and_no_opfs_file");
            common::small_batch_is_one_transaction_and_no_opfs_file().await
        }
        #[wasm_bindgen_test]
        async fn threshold_boundary_goes_to_opfs() {
            common::running("threshold_boundary_goes_to_opfs");
            common::threshold_boundary_goes_to_opfs().await
        }
        #[wasm_bindgen_test]
        async fn library_mixing_both_homes() {
            common::running("library_mixing_both_homes");
            common::library_mixing_both_homes().await
        }
        #[wasm_bindgen_test]
        async fn small_file_bytes_zero_keeps_everything_in_opfs() {
            common::running("small_file_bytes_zero_keeps_everything_in_opfs");
            common::small_file_bytes_zero_keeps_everything_in_opfs().await
        }
        #[wasm_bindgen_test]
        async fn bad_small_file_bytes_are_refused() {
            common::bad_small_file_bytes_are_refused().await
        }
        #[wasm_bindgen_test]
        async fn old_library_small_assets_in_opfs_still_read() {
            common::running("old_library_small_assets_in_opfs_still_read");
            common::old_library_small_assets_in_opfs_still_read().await
        }
        #[wasm_bindgen_test]
        async fn bad_library_options() {
            common::bad_library_options().await
        }
        #[wasm_bindgen_test]
        async fn module_functions_on_default_library() {
            common::module_functions_on_default_library().await
        }
    };
}
