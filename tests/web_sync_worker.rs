//! MediaSyncService against the real reference server, in a dedicated worker (the main use case: the app imports, a worker syncs).
#![cfg(target_arch = "wasm32")]

#[allow(dead_code, unused_macros)]
mod common;
mod sync;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

sync_suite!();
