//! Small assets (below `smallFileBytes`) sync like large ones: the upload reads their bytes
//! from IndexedDB, and a download of a small asset is stored in IndexedDB too, not in OPFS.

use super::{import, library_with, server_get, service, wire, within, User};
use crate::common::{self, field};

fn storage_of(rec: &wasm_bindgen::JsValue) -> String {
    field(rec, "storage").as_string().unwrap()
}

pub async fn small_asset_uploads_and_downloads_into_indexeddb() {
    let user = User::new();
    let opts = r#""smallFileBytes":50000"#;
    let has_opfs = common::engine_has_opfs();
    let (name_a, lib_a) = library_with(opts).await;
    let (small, large) = (common::bytes(20_000, 41), common::bytes(60_000, 42));
    let (sid, lid) = (import(&lib_a, &small, "small.png").await, import(&lib_a, &large, "large.png").await);
    let large_home = if has_opfs { "opfs" } else { "indexeddb" };
    assert_eq!(storage_of(&lib_a.get(sid.clone().into()).await.unwrap()), "indexeddb");
    assert_eq!(storage_of(&lib_a.get(lid.clone().into()).await.unwrap()), large_home);
    let a = service(&name_a, &user);
    within(a.sync_now(None), 20_000, "sync A").await.unwrap();
    for (id, data) in [(&sid, &small), (&lid, &large)] {
        let (status, body) = server_get(&format!("/api/media/assets/{id}"), &user).await;
        assert!(status == 200 && body == **data, "the server holds the bytes of {id}");
        assert_eq!(wire(id).await, (1, data.len(), 1), "uploaded once, whole");
    }
    a.dispose();

    // Another device pulls both and reads them: each lands in its own home.
    let (name_b, lib_b) = library_with(opts).await;
    let b = service(&name_b, &user);
    within(b.sync_now(None), 20_000, "sync B").await.unwrap();
    for (id, data, home) in [(&sid, &small, "indexeddb"), (&lid, &large, large_home)] {
        assert_eq!(storage_of(&lib_b.get(id.clone().into()).await.unwrap()), "remote");
        let file = within(lib_b.get_file(id.clone().into()), 20_000, "getFile downloads it").await.unwrap();
        assert!(common::read_all(&file).await == **data, "downloaded bytes of {id}");
        assert_eq!(storage_of(&lib_b.get(id.clone().into()).await.unwrap()), home, "{id} downloaded into {home}");
    }
    assert!(lib_b.library().catalog().keys("blobs").await.unwrap().contains(&sid), "the small one is in blobs");
    if has_opfs {
        assert_eq!(common::opfs_names(lib_b.library()).await, vec![lid.clone()], "no OPFS file for the small one");
    }
    b.dispose();
}
