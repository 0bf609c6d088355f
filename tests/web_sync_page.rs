//! MediaSyncService against the real reference server, in a page (main thread).
#![cfg(target_arch = "wasm32")]

#[allow(dead_code, unused_macros)]
mod common;
mod sync;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

sync_suite!();
