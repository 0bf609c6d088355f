//! The library suite in a dedicated worker: OPFS via the sync access handle.
#![cfg(target_arch = "wasm32")]

mod common;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

library_suite!();

#[wasm_bindgen_test]
async fn worker_uses_sync_access_handle() {
    common::running("worker_uses_sync_access_handle");
    let Some(lib) = common::open("opfs").await else { return };
    assert!(lib.uses_sync_access_handle(), "workers with OPFS have createSyncAccessHandle");
}
