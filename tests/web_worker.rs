//! The library suite in a dedicated worker: OPFS via the sync access handle.
#![cfg(target_arch = "wasm32")]

mod common;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

library_suite!();

#[wasm_bindgen_test]
async fn worker_uses_sync_access_handle() {
    common::running("worker_uses_sync_access_handle");
    let Some(lib) = common::open("opfs").await else { return };
    if lib.uses_sync_access_handle() {
        return;
    }
    // Only an engine whose OPFS refuses sync access handles may do without them: asked here
    // directly, on a scratch file of its own, it must answer `NotSupportedError`.
    let dir = common::opfs_dir(lib.library()).await;
    let opts = web_sys::FileSystemGetFileOptions::new();
    opts.set_create(true);
    let h: web_sys::FileSystemFileHandle =
        JsFuture::from(dir.get_file_handle_with_options("scratch.tmp", &opts)).await.unwrap().unchecked_into();
    let refused = JsFuture::from(h.create_sync_access_handle()).await.expect_err("sync access handles work here");
    assert_eq!(opfs_media::platform::error_parts(&refused).0, "NotSupportedError");
    let data = common::bytes(70_001, 4);
    let rec = lib.import_file(common::file(&data, "probe.bin", "").into(), None).await.unwrap();
    assert_eq!(common::read_all(&lib.get_file(common::field(&rec, "id")).await.unwrap()).await, data);
    wasm_bindgen_test::console_log!(
        "SKIPPED worker_uses_sync_access_handle: this engine's OPFS refuses createSyncAccessHandle \
         (NotSupportedError: WebKitGTK's backend); the worker wrote through createWritable instead, read back byte for byte"
    );
}
