//! Imports from a `ReadableStream` (recordings, `fetch` bodies): shared by the page and worker
//! suites, on OPFS and on the IndexedDB fallback (where the bytes go in pieces).

use js_sys::{Array, Function, Reflect, Uint8Array};
use opfs_media::interop;
use opfs_media::store::catalog::BLOBS;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

use super::{assert_js_error, bytes, field, open, opfs_names, read_all, sha_hex};

/// A stream that enqueues `data` in chunks of `chunk` bytes, each as a different kind of
/// bytes in turn (Uint8Array, ArrayBuffer, DataView, Blob), then `tail`: `"close"`, `"error"`
/// (errors like a dropped connection), or `"string"` (a chunk that is not bytes, then nothing).
/// `globalThis.__cancelled` records the reason a reader cancelled with.
fn stream_of(data: &[u8], chunk: u32, tail: &str) -> JsValue {
    let make = Function::new_with_args(
        "data, chunk, tail",
        "globalThis.__cancelled = undefined;
        let at = 0, n = 0;
        return new ReadableStream({
            pull(c) {
                if (at < data.length) {
                    const part = data.slice(at, at + chunk);
                    at += chunk;
                    const kind = n++ % 4;
                    c.enqueue(kind === 0 ? part : kind === 1 ? part.buffer : kind === 2 ? new DataView(part.buffer) : new Blob([part]));
                } else if (tail === 'error') {
                    c.error(new TypeError('network error: the connection was reset'));
                } else if (tail === 'string') {
                    // Then stays open, like a live recording: only a cancel ends it.
                    if (n++ >= 0 && !this.sent) { this.sent = true; c.enqueue('not bytes'); }
                } else {
                    c.close();
                }
            },
            cancel(reason) { globalThis.__cancelled = String(reason); },
        });",
    );
    make.call3(&JsValue::NULL, &Uint8Array::from(data), &chunk.into(), &tail.into()).unwrap()
}

fn options(name: &str, mime: &str) -> JsValue {
    let o = js_sys::Object::new();
    Reflect::set(&o, &"name".into(), &name.into()).unwrap();
    Reflect::set(&o, &"type".into(), &mime.into()).unwrap();
    o.into()
}

async fn blob_keys(lib: &opfs_media::Library) -> Vec<String> {
    let mut k = lib.catalog().keys(BLOBS).await.unwrap();
    k.sort();
    k
}

/// A 9 MB stream (more than two IndexedDB pieces) lands whole, typed and named, and its
/// delete leaves nothing; a real `fetch` body too, through the module function.
pub async fn stream_import_roundtrip(storage: &str) {
    let Some(lib) = open(storage).await else { return };
    let data = bytes(9_000_001, 5);
    let v =
        lib.import_file(stream_of(&data, 300_000, "close"), Some(options("take1.webm", "video/webm"))).await.unwrap();
    let a: opfs_media::MediaAsset = serde_wasm_bindgen::from_value(v).unwrap();
    assert_eq!((a.name.as_str(), a.mime_type.as_str(), a.size), ("take1.webm", "video/webm", 9_000_001.0));
    let f = lib.get_file(a.id.clone().into()).await.unwrap();
    assert_eq!((f.name(), f.type_(), f.size()), ("take1.webm".to_owned(), "video/webm".to_owned(), 9_000_001.0));
    assert_eq!(sha_hex(&read_all(&f).await), sha_hex(&data), "byte-identical");
    if lib.storage() == "opfs" {
        assert_eq!(opfs_names(lib.library()).await, vec![a.id.clone()], "only the committed file");
    } else {
        // 4 MiB pieces: three of them, and the manifest under the id.
        assert_eq!(blob_keys(lib.library()).await.len(), 4);
    }
    // Without options: `untitled`, `application/octet-stream`; an empty stream is a 0-byte asset.
    let e = lib.import_file(stream_of(&[], 1, "close"), None).await.unwrap();
    let e: opfs_media::MediaAsset = serde_wasm_bindgen::from_value(e).unwrap();
    assert_eq!((e.name.as_str(), e.mime_type.as_str(), e.size), ("untitled", "application/octet-stream", 0.0));
    assert_eq!(lib.get_file(e.id.clone().into()).await.unwrap().size(), 0.0);
    assert_eq!(lib.library().sweep(0.0).await.unwrap(), Default::default());
    lib.delete(a.id.into()).await.unwrap();
    lib.delete(e.id.into()).await.unwrap();
    if lib.storage() == "opfs" {
        assert!(opfs_names(lib.library()).await.is_empty());
    }
    assert!(blob_keys(lib.library()).await.is_empty(), "no piece left after delete");

    // A real fetch body (of a blob: URL), into the default library.
    let body = bytes(200_000, 6);
    let fetch = Function::new_with_args(
        "bytes",
        "const url = URL.createObjectURL(new Blob([bytes]));
        return fetch(url).then((r) => { URL.revokeObjectURL(url); return r.body; });",
    );
    let stream =
        JsFuture::from(js_sys::Promise::from(fetch.call1(&JsValue::NULL, &Uint8Array::from(&body[..])).unwrap()))
            .await
            .unwrap();
    let id = interop::import_file_to_library(stream, Some(options("fetched.bin", ""))).await.unwrap();
    let got = interop::get_asset_file(id.clone().into()).await.unwrap();
    assert_eq!(read_all(&got).await, body);
    interop::delete_asset(id.into()).await.unwrap();
}

/// A stream that errors part-way, one that yields a string, a locked stream, and a full disk:
/// each a typed error, no record, no file, no piece, and the source told to stop.
pub async fn stream_failures_leave_nothing(storage: &str) {
    let Some(lib) = open(storage).await else { return };
    let data = bytes(6_000_000, 8);
    // Past the first IndexedDB piece, so a committed piece must be removed again.
    let r = lib.import_file(stream_of(&data, 250_000, "error"), Some(options("cut.webm", ""))).await;
    assert_js_error(r, "InvalidInputError", "SOURCE_UNREADABLE");
    let r = lib.import_file(stream_of(&data, 250_000, "string"), Some(options("text.webm", ""))).await;
    assert_js_error(r, "InvalidInputError", "NOT_BYTES");
    let cancelled = field(&opfs_media::platform::global(), "__cancelled").as_string().unwrap_or_default();
    assert!(cancelled.contains("not bytes"), "the source was cancelled with a reason: {cancelled:?}");

    let locked = stream_of(&data, 1000, "close");
    let _reader = opfs_media::platform::call(&locked, "getReader", &[]).unwrap();
    assert_js_error(lib.import_file(locked, None).await, "InvalidInputError", "STREAM_LOCKED");
    for not_stream in [js_sys::Object::new().into(), Array::new().into(), JsValue::from("stream")] {
        assert_js_error(lib.import_file(not_stream, None).await, "InvalidInputError", "NOT_A_BLOB");
    }

    lib.library().simulate_quota_after(Some(5_000_000));
    let r = lib.import_file(stream_of(&data, 250_000, "close"), None).await;
    lib.library().simulate_quota_after(None);
    assert_js_error(r, "QuotaExceededError", "QUOTA_EXCEEDED");

    assert_eq!(Array::from(&lib.list(None).await.unwrap()).length(), 0, "no record");
    if lib.storage() == "opfs" {
        let names = opfs_names(lib.library()).await;
        assert!(names.is_empty(), "no file, no temp file: {names:?}");
    }
    assert!(blob_keys(lib.library()).await.is_empty(), "no piece left");
    assert_eq!(lib.library().sweep(0.0).await.unwrap(), Default::default());
}

/// Pieces of a streamed import that never finished (a crash) are swept once old; a fresh
/// one (another tab streaming right now) is left alone.
pub async fn sweep_removes_stale_pieces(storage: &str) {
    let Some(lib) = open(storage).await else { return };
    let cat = lib.library().catalog();
    let old = "0190f0c2-7a0e-7cc0-8000-0000000000aa";
    let fresh = opfs_media::platform::new_asset_id();
    let piece = |id: &str| opfs_media::store::pieces::piece_key(id, 0);
    let value = Uint8Array::from(&b"half a recording"[..]).buffer();
    cat.put_raw_bytes(&piece(old), &value).await.unwrap();
    cat.put_raw_bytes(&piece(&fresh), &value).await.unwrap();
    let report = lib.library().sweep(60_000.0).await.unwrap();
    assert_eq!((report.removed_temp, report.removed_orphans), (vec![old.to_owned()], vec![]));
    assert_eq!(blob_keys(lib.library()).await, vec![piece(&fresh)]);
    // And a committed streamed asset's pieces are never taken for orphans.
    let v = lib.import_file(stream_of(&bytes(5_000_000, 1), 500_000, "close"), None).await.unwrap();
    let report = lib.library().sweep(0.0).await.unwrap();
    assert_eq!(report.removed_temp, vec![fresh.clone()]);
    let id = field(&v, "id");
    assert_eq!(read_all(&lib.get_file(id).await.unwrap()).await, bytes(5_000_000, 1));
}
