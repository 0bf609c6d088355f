//! MediaSyncService against the real reference server, in a page (main thread).
#![cfg(target_arch = "wasm32")]

#[allow(dead_code, unused_macros)]
mod common;
mod sync;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

sync_suite!(
    upload_then_server_has_identical_bytes,
    second_device_pulls_then_downloads_on_demand,
    deletes_propagate_both_ways,
    signed_out_keeps_imports_pending_until_sign_in,
    unreachable_server_keeps_pending_then_syncs,
    corrupt_download_is_refused_and_local_data_kept,
    two_services_one_library_sync_each_asset_once,
    bad_options_are_typed_errors,
);
