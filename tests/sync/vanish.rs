//! Storage that vanishes under the app (Safari's seven-day rule, site data cleared, an evicted
//! origin): a lost local copy is never a deletion. Checked against the real server, with the
//! server's listing and the counting proxy's upload bytes as the witnesses.

use js_sys::{Function, Promise, Reflect};
use opfs_media::interop::MediaLibrary;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::{
    import, library, library_with, record_events, server_get, server_ids, service, status_of, wire, within, User,
};
use crate::common::{self, assert_js_error, field};

/// Removes what the browser keeps for library `name` behind its back, as a wipe does:
/// `idb` deletes its IndexedDB database (the open connection closes itself on the
/// `versionchange`), `opfs` its OPFS directory, recursively.
async fn wipe(name: &str, idb: bool, opfs: bool) {
    let f = Function::new_with_args(
        "name, idb, opfs",
        "return (async () => {
            if (opfs && navigator.storage && navigator.storage.getDirectory) {
                try {
                    const top = await (await navigator.storage.getDirectory()).getDirectoryHandle('opfs-media');
                    await top.removeEntry(name, { recursive: true });
                } catch (e) { if (e.name !== 'NotFoundError') throw e; }
            }
            if (idb) {
                await new Promise((resolve, reject) => {
                    const req = indexedDB.deleteDatabase('opfs-media:' + name);
                    req.onsuccess = () => resolve();
                    req.onerror = () => reject(req.error);
                });
            }
        })()",
    );
    let p: Promise = f.call3(&JsValue::NULL, &name.into(), &idb.into(), &opfs.into()).unwrap().unchecked_into();
    JsFuture::from(p).await.expect("wiping the library's storage");
}

async fn open_named(name: &str) -> MediaLibrary {
    let opts = js_sys::Object::new();
    Reflect::set(&opts, &"name".into(), &name.into()).unwrap();
    MediaLibrary::open(Some(opts.into())).await.unwrap()
}

fn storage_of(rec: &JsValue) -> String {
    field(rec, "storage").as_string().unwrap()
}

/// The whole origin's storage gone between two runs: the next sync lists every asset again
/// from the server (remote, downloading on demand), deletes nothing there and sends nothing
/// again; the bytes come back verified.
pub async fn wiped_storage_pulls_back_and_changes_nothing_on_the_server() {
    let user = User::new();
    let (name, lib) = library().await;
    let x = common::bytes(150_000, 21);
    let y = common::bytes(70_000, 22);
    let (xid, yid) = (import(&lib, &x, "x.png").await, import(&lib, &y, "y.png").await);
    let svc = service(&name, &user);
    within(svc.sync_now(None), 20_000, "first sync").await.unwrap();
    let before = server_ids(&user).await;
    assert_eq!(before.len(), 2);
    svc.dispose();
    lib.close();
    drop(lib);

    wipe(&name, true, true).await;
    let lib = open_named(&name).await;
    assert_eq!(js_sys::Array::from(&lib.list(None).await.unwrap()).length(), 0, "the wipe took everything");
    let svc = service(&name, &user);
    within(svc.sync_now(None), 20_000, "sync after the wipe").await.unwrap();
    assert_eq!(server_ids(&user).await, before, "nothing deleted (or added) on the server");
    for (id, data) in [(&xid, &x), (&yid, &y)] {
        let rec = lib.get(id.clone().into()).await.expect("listed again from the server");
        assert_eq!((storage_of(&rec), status_of(&lib, id).await), ("remote".to_owned(), "synced".to_owned()));
        let file = within(lib.get_file(id.clone().into()), 20_000, "getFile downloads it").await.unwrap();
        assert!(common::read_all(&file).await == **data, "the server's bytes, verified");
        assert_eq!(wire(id).await, (1, data.len(), 1), "uploaded once, before the wipe, never again");
    }
    within(svc.sync_now(None), 20_000, "another sync").await.unwrap();
    assert_eq!(server_ids(&user).await, before);
    svc.dispose();
}

/// The bytes gone, the records kept (OPFS files removed behind the library's back, or the
/// IndexedDB blobs where that is their home): an uploaded asset downloads again on demand;
/// one that existed only here is marked `LOCAL_BYTES_LOST`, reported by the library's `lost`
/// event and the service's `error` event, and never uploaded, empty or otherwise.
pub async fn lost_bytes_download_again_or_are_reported_never_uploaded() {
    let user = User::new();
    // Both homes where the engine has OPFS: the synced asset is an OPFS file, the local-only
    // one is small and lives in IndexedDB.
    let (name, lib) = library_with(r#""smallFileBytes":100000"#).await;
    let kept = common::bytes(120_000, 31);
    let kid = import(&lib, &kept, "synced.png").await;
    let svc = service(&name, &user);
    within(svc.sync_now(None), 20_000, "first sync").await.unwrap();
    svc.dispose();
    let only_here = common::bytes(90_000, 32);
    let lid = import(&lib, &only_here, "local.png").await;
    let lost_events = js_sys::Array::new();
    lib.add_event_listener("lost", &Function::new_with_args("e", "this.push(e.detail)").bind0(&lost_events)).unwrap();

    // Remove both assets' bytes, each from its own home, not their records.
    for id in [&kid, &lid] {
        if storage_of(&lib.get(id.clone().into()).await.unwrap()) == "opfs" {
            JsFuture::from(common::opfs_dir(lib.library()).await.remove_entry(id)).await.unwrap();
        } else {
            lib.library().catalog().delete_blob(id).await.unwrap();
        }
    }
    if common::engine_has_opfs() {
        let homes = [
            storage_of(&lib.get(kid.clone().into()).await.unwrap()),
            storage_of(&lib.get(lid.clone().into()).await.unwrap()),
        ];
        assert_eq!(homes, ["opfs", "indexeddb"], "records still say where the bytes were");
    }
    let svc = service(&name, &user);
    let errors = record_events(&svc, "error");
    within(svc.sync_now(None), 20_000, "sync with lost bytes").await.unwrap();
    assert_eq!(server_ids(&user).await, vec![kid.clone()], "the lost asset never reached the server");
    assert_eq!(wire(&lid).await, (0, 0, 0), "not one byte of it was sent");
    let rec = lib.get(lid.clone().into()).await.expect("the record is kept, not silently dropped");
    assert_eq!(status_of(&lib, &lid).await, "error");
    assert_eq!(field(&field(&rec, "syncError"), "code").as_string().as_deref(), Some("LOCAL_BYTES_LOST"));
    let reported: Vec<String> = errors
        .borrow()
        .iter()
        .filter_map(|d| field(d, "code").as_string())
        .filter(|c| c == "LOCAL_BYTES_LOST")
        .collect();
    assert_eq!(reported.len(), 1, "one error event for it: {:?}", errors.borrow());
    assert_eq!(lost_events.length(), 1, "one lost event");
    assert_eq!(field(&lost_events.get(0), "id").as_string(), Some(lid.clone()));
    assert_js_error(lib.get_file(lid.clone().into()).await, "NotFoundError", "LOCAL_BYTES_LOST");
    within(svc.sync_now(None), 20_000, "another sync").await.unwrap();
    assert_eq!(wire(&lid).await, (0, 0, 0), "and not on a later sync either");

    // The uploaded one downloads again when read, from the server, verified.
    let file = within(lib.get_file(kid.clone().into()), 20_000, "getFile downloads it again").await.unwrap();
    assert!(common::read_all(&file).await == kept);
    assert_ne!(storage_of(&lib.get(kid.clone().into()).await.unwrap()), "remote");
    assert_eq!(wire(&kid).await, (1, kept.len(), 1), "uploaded once");
    let (status, body) = server_get(&format!("/api/media/assets/{kid}"), &user).await;
    assert!(status == 200 && body == kept, "the server's copy is untouched");
    svc.dispose();
}
