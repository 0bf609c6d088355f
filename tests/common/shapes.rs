//! The shapes of the OPFS API that other engines have (older Safari, a one-argument `move`),
//! emulated on the engine under test by patching prototypes for the length of a check, and an
//! engine without OPFS (private modes) by a throwing `getDirectory`.

use js_sys::Reflect;
use opfs_media::interop::MediaLibrary;
use opfs_media::platform;
use opfs_media::StorageKind;
use wasm_bindgen::{JsCast, JsValue};

use super::{
    assert_js_error, assert_no_opfs_outcome, asset_of, bytes, engine_has_opfs, file, read_all, running, try_open,
    unique,
};

/// Replaces `name` with `f(original)` for the length of `body`, then puts it back: on the
/// object in `proto`'s chain that has it as its own (engines differ on where `move` lives).
async fn with_patched<T>(proto: &JsValue, name: &str, wrap: &str, body: impl std::future::Future<Output = T>) -> T {
    let mut proto = proto.clone();
    let owns = |o: &JsValue| js_sys::Object::has_own(o.unchecked_ref::<js_sys::Object>(), &name.into());
    while !proto.is_null() && !owns(&proto) {
        proto = js_sys::Object::get_prototype_of(&proto).into();
    }
    assert!(!proto.is_null(), "nothing to patch: no {name} in the chain");
    let proto = &proto;
    let original = platform::get(proto, name);
    let make = js_sys::Function::new_with_args("original", wrap);
    Reflect::set(proto, &name.into(), &make.call1(&JsValue::NULL, &original).unwrap()).unwrap();
    let out = body.await;
    Reflect::set(proto, &name.into(), &original).unwrap();
    out
}

async fn roundtrip(lib: MediaLibrary) -> StorageKind {
    let data = bytes(120_001, 3);
    let a = asset_of(&lib.import_file(file(&data, "shape.bin", "").into(), None).await.unwrap());
    assert_eq!(read_all(&lib.get_file(a.id.clone().into()).await.unwrap()).await, data);
    a.storage
}

/// An engine whose `FileSystemHandle.move` takes only a new name (the one-argument form of the
/// spec): the library calls `move(directory, name)`, WebKit's only form, and on a `TypeError`
/// falls back to `move(name)`. Emulated by refusing two arguments, where this engine has the
/// one-argument form itself (WebKit has not: there it cannot be emulated).
pub async fn one_argument_move_engines() {
    running("one_argument_move_engines");
    if !engine_has_opfs() {
        wasm_bindgen_test::console_log!("SKIPPED one_argument_move_engines: this engine has no OPFS");
        return;
    }
    let lib = try_open("opfs").await.unwrap();
    let handle_proto = platform::get(&platform::get(&platform::global(), "FileSystemFileHandle"), "prototype");
    let only_name = "return function (...a) {
        if (a.length !== 1) return Promise.reject(new TypeError('emulated: move takes one argument here'));
        return original.call(this, ...a);
    }";
    let stored = with_patched(&handle_proto, "move", only_name, async {
        let lib = try_open("opfs").await.unwrap();
        let data = bytes(5, 1);
        lib.import_file(file(&data, "probe.bin", "").into(), None).await.map(|_| lib)
    })
    .await;
    match stored {
        Ok(reshaped) => {
            assert_eq!(roundtrip(reshaped).await, StorageKind::Opfs);
            assert_eq!(roundtrip(lib).await, StorageKind::Opfs, "and the engine's own move as it is");
        }
        Err(e) => {
            // Only an engine without the one-argument form may refuse it (as WebKit does): the
            // engine's own TypeError, never the emulated refusal of two arguments (that would
            // mean the library did not fall back).
            let message = super::field(&e, "message").as_string().unwrap_or_default();
            assert!(message.contains("TypeError") && !message.contains("emulated"), "{message}");
            assert_eq!(roundtrip(lib).await, StorageKind::Opfs, "the engine's own move(directory, name)");
            wasm_bindgen_test::console_log!(
                "SKIPPED one_argument_move_engines: this engine's move has no one-argument form to fall back on \
                 ({message}); checked its own two-argument form instead"
            );
        }
    }
}

/// WebKit before Safari 26 had no `createWritable`: a page falls back to IndexedDB
/// (`storage: "opfs"` is a typed error), a worker writes through its sync access handle.
pub async fn older_safari_without_create_writable() {
    running("older_safari_without_create_writable");
    if !engine_has_opfs() {
        wasm_bindgen_test::console_log!("SKIPPED older_safari_without_create_writable: this engine has no OPFS");
        return;
    }
    let file_proto = platform::get(&platform::get(&platform::global(), "FileSystemFileHandle"), "prototype");
    let serves_handles = try_open("opfs").await.unwrap().uses_sync_access_handle();
    let (auto, forced) = with_patched(&file_proto, "createWritable", "return undefined", async {
        (try_open("auto").await, try_open("opfs").await)
    })
    .await;
    if platform::is_worker() && serves_handles {
        assert_eq!(roundtrip(forced.unwrap()).await, StorageKind::Opfs, "the worker's sync access handle");
    } else if platform::is_worker() {
        // WebKitGTK's workers refuse sync access handles: with no createWritable either, this
        // engine has no OPFS write path in a worker at all (Safari before 26 had the handles).
        drop((auto, forced));
        wasm_bindgen_test::console_log!(
            "SKIPPED older_safari_without_create_writable: this engine's worker refuses sync access handles, \
             so without createWritable it has no OPFS write path to emulate the older shape with"
        );
    } else {
        assert_js_error(forced.map(|_| ()), "StorageUnavailableError", "STORAGE_UNAVAILABLE");
        let auto = auto.unwrap();
        assert_eq!(auto.storage(), "indexeddb", "a page without createWritable keeps its bytes in IndexedDB");
        assert_eq!(roundtrip(auto).await, StorageKind::Indexeddb);
    }
}

/// With `getDirectory` throwing (as in private modes or WebKitGTK), `auto` falls back to
/// IndexedDB and `opfs` fails with a typed error.
pub async fn missing_opfs_falls_back() {
    let proto = platform::get(&platform::get(&platform::global(), "StorageManager"), "prototype");
    if !engine_has_opfs() {
        // The engine already lacks OPFS: the same outcome, for real.
        assert_no_opfs_outcome().await;
        return;
    }
    let original = platform::get(&proto, "getDirectory");
    let thrower = js_sys::Function::new_no_args("throw new DOMException('blocked for the test', 'SecurityError')");
    Reflect::set(&proto, &"getDirectory".into(), &thrower).unwrap();
    let auto =
        MediaLibrary::open(Some(js_sys::JSON::parse(&format!(r#"{{"name":"{}"}}"#, unique("fb"))).unwrap())).await;
    let forced = MediaLibrary::open(Some(
        js_sys::JSON::parse(&format!(r#"{{"name":"{}","storage":"opfs"}}"#, unique("fb"))).unwrap(),
    ))
    .await;
    Reflect::set(&proto, &"getDirectory".into(), &original).unwrap();

    let auto = auto.expect("auto falls back");
    assert_eq!(auto.storage(), "indexeddb");
    let data = bytes(50_000, 9);
    let a = asset_of(&auto.import_file(file(&data, "fallback.bin", "").into(), None).await.unwrap());
    assert_eq!(a.storage, StorageKind::Indexeddb);
    assert_eq!(read_all(&auto.get_file(a.id.into()).await.unwrap()).await, data);
    assert_js_error(forced.map(|_| ()), "StorageUnavailableError", "STORAGE_UNAVAILABLE");
}
