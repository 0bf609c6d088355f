//! The library suite in a page (main thread): OPFS via `createWritable`.
#![cfg(target_arch = "wasm32")]

mod common;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

library_suite!();

#[wasm_bindgen_test]
async fn page_uses_create_writable() {
    common::running("page_uses_create_writable");
    let Some(lib) = common::open("opfs").await else { return };
    assert!(!lib.uses_sync_access_handle());
}
