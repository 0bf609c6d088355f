//! Imports from a `ReadableStream` (recordings, `fetch` bodies): shared by the page and worker
//! suites, on OPFS and on the IndexedDB fallback (where the bytes go in pieces).

use js_sys::{Array, Function, Reflect, Uint8Array};
use opfs_media::interop;
use opfs_media::store::catalog::BLOBS;
use opfs_media::{MediaAsset, StorageKind, SyncStatus};
use wasm_bindgen::{JsCast, JsValue};
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

/// A stream of `data` whose chunks are views that do not span their buffer: subarrays of one
/// shared buffer at odd offsets with other bytes around them, `DataView`s at an offset,
/// zero-length views, and views of a fresh buffer with slack at both ends. Then `tail`
/// (`"close"` or `"error"`, a dropped connection after the data). WebKit writes a view's
/// whole backing buffer into an OPFS writable: these chunks would be stored with the bytes
/// around them.
pub(crate) fn stream_of_views(data: &[u8], tail: &str) -> JsValue {
    let make = Function::new_with_args(
        "data, tail",
        "const shared = new Uint8Array(data.length + 4096);
        shared.fill(0xEE);
        let at = 0, n = 0;
        return new ReadableStream({
            pull(c) {
                if (at >= data.length) {
                    if (tail === 'error') c.error(new TypeError('network error: the connection was reset'));
                    else c.close();
                    return;
                }
                const len = Math.min([1, 7, 4093, 65537, 300001][n % 5], data.length - at);
                const part = data.subarray(at, at + len);
                const kind = n++ % 4;
                if (kind === 0) {
                    // A subarray of one shared buffer, at an odd offset past what came before.
                    const off = 3 + (at % 1000) * 2 + 1;
                    shared.set(part, off);
                    c.enqueue(shared.subarray(off, off + len));
                    // The next chunk reuses the buffer: a writer that kept a reference
                    // instead of the bytes would see them change.
                } else if (kind === 1) {
                    const buf = new ArrayBuffer(len + 11);
                    new Uint8Array(buf).fill(0xAB);
                    new Uint8Array(buf, 5, len).set(part);
                    c.enqueue(new DataView(buf, 5, len));
                } else if (kind === 2) {
                    c.enqueue(new Uint8Array(new ArrayBuffer(16), 8, 0));
                    c.enqueue(new Uint8Array(part).subarray(0));
                } else {
                    const buf = new Uint8Array(len + 2);
                    buf.fill(0x55);
                    buf.set(part, 1);
                    c.enqueue(buf.subarray(1, 1 + len));
                }
                at += len;
            },
        });",
    );
    make.call2(&JsValue::NULL, &Uint8Array::from(data), &tail.into()).unwrap()
}

/// Chunks that are views into larger buffers (and empty views) are stored as exactly the
/// bytes they show: the SHA-256 of what comes back is the data's, on every engine and both
/// homes. Fails on WebKit's OPFS without the copy in `copy::own_buffer`.
pub async fn stream_chunks_are_views(storage: &str) {
    let Some(lib) = open(storage).await else { return };
    let data = bytes(2_500_003, 11);
    let v = lib.import_file(stream_of_views(&data, "close"), Some(options("views.bin", ""))).await.unwrap();
    let a: MediaAsset = serde_wasm_bindgen::from_value(v).unwrap();
    let stored = read_all(&lib.get_file(a.id.clone().into()).await.unwrap()).await;
    assert_eq!((stored.len(), sha_hex(&stored)), (data.len(), sha_hex(&data)), "the bytes given, not their buffers");
    let small = bytes(5, 2);
    let v = lib.import_file(stream_of_views(&small, "close"), None).await.unwrap();
    let stored = read_all(&lib.get_file(field(&v, "id")).await.unwrap()).await;
    assert_eq!(stored, small);
}

/// A download whose body arrives as views (and is cut once, then resumed from what was kept)
/// stores the asset's bytes exactly: its SHA-256 matches the record's and the file reads back
/// the same. Downloads resume on OPFS only.
pub async fn download_chunks_are_views(storage: &str) {
    let Some(lib) = open(storage).await else { return };
    let lib = lib.library();
    let data = bytes(1_700_001, 13);
    let id = opfs_media::platform::new_asset_id();
    let now = js_sys::Date::now();
    let remote = MediaAsset {
        id: id.clone(),
        handle_name: id.clone(),
        name: "remote.bin".into(),
        mime_type: "application/octet-stream".into(),
        size: data.len() as f64,
        created_at: now,
        updated_at: now,
        sha256: Some(sha_hex(&data)),
        tags: vec![],
        storage: StorageKind::Remote,
        sync_status: SyncStatus::Synced,
        cloud_id: Some(id.clone()),
        cloud_url: None,
        user_id: Some("alice".into()),
        cloud_version: Some(1),
        sync_error: None,
    };
    if !lib.resumable_download(&remote) {
        return;
    }
    lib.put_synced(&remote, opfs_media::store::ChangeKind::Import).await.unwrap();
    let cut = 700_013;
    let mut part = lib.partial_download(&remote).await.unwrap();
    let first =
        lib.continue_download(&remote, &mut part, &stream_of_views(&data[..cut], "error").into(), &mut |_| {}).await;
    assert!(first.is_err(), "the first body breaks");
    assert_eq!(part.len, cut as f64, "what arrived before the cut is kept");
    let mut part = lib.partial_download(&remote).await.unwrap();
    assert_eq!(part.len, cut as f64, "and found again, hashed, by the next attempt");
    let rest = stream_of_views(&data[cut..], "close");
    lib.continue_download(&remote, &mut part, &rest.into(), &mut |_| {}).await.unwrap();
    let done = lib.finish_download(&remote, part).await.expect("the SHA-256 of the stored bytes matches");
    assert_eq!(done.storage, StorageKind::Opfs);
    let stored = read_all(&lib.file(&id).await.unwrap()).await;
    assert_eq!(sha_hex(&stored), sha_hex(&data));
}

/// An upload's chunks are read into buffers it reuses (`checksum::read_into`): the bytes come
/// back exact, from the given buffer's memory, both where the engine's blob streams take a
/// BYOB reader (the buffer is transferred: the one passed in is detached) and where they do
/// not (a stream that is not a byte stream: each chunk is copied into the same buffer).
pub async fn chunk_reads_reuse_their_buffer() {
    let data = bytes(3 * 1024 * 1024 + 17, 21);
    let blob: web_sys::Blob = super::file(&data, "chunk.bin", "application/octet-stream").into();
    // The same bytes behind a stream that refuses BYOB readers.
    let plain: web_sys::Blob = js_sys::Function::new_with_args(
        "b",
        "const s = b.stream().pipeThrough(new TransformStream()); const c = b.slice(); c.stream = () => s; return c;",
    )
    .call1(&JsValue::NULL, &blob)
    .unwrap()
    .unchecked_into();
    for (what, source) in [("blob stream", &blob), ("default stream", &plain)] {
        let given = js_sys::ArrayBuffer::new(4 * 1024 * 1024);
        let got = opfs_media::store::checksum::read_into(source, Some(given.clone())).await.unwrap();
        assert_eq!(got.byte_length(), 4 * 1024 * 1024, "{what}: the given buffer's memory holds the chunk");
        assert!(
            js_sys::Object::is(&got, &given) || given.byte_length() == 0,
            "{what}: a new buffer was allocated instead of reusing (or transferring) the given one"
        );
        let head = Uint8Array::new_with_byte_offset_and_length(&got, 0, data.len() as u32).to_vec();
        assert!(head == data, "{what}: the chunk's bytes differ");
    }
    // A buffer too small for the chunk is not written past: a new one holds it.
    let small = js_sys::ArrayBuffer::new(1024);
    let got = opfs_media::store::checksum::read_into(&blob, Some(small)).await.unwrap();
    assert_eq!(got.byte_length() as usize, data.len());
    assert!(Uint8Array::new(&got).to_vec() == data, "bytes differ in a new buffer");
}

/// Hashing a chunk in the page lets the thread's other tasks run between slices (a 16 MiB
/// chunk hashed in one go was a ~100 ms long task); in a worker it runs at once. The digest
/// is the same either way.
pub async fn chunk_hashing_yields_in_a_page() {
    use opfs_media::store::checksum;
    let len = 16 * 1024 * 1024;
    let buf = Uint8Array::from(bytes(len, 5).as_slice()).buffer();
    // A task queued before the hashing: where there is `scheduler.postTask`, a user-blocking
    // one (`scheduler.yield()` continuations go before user-visible tasks and timers, not
    // before these, nor input); else a timer (the library yields with a timer there too).
    let ran = std::rc::Rc::new(std::cell::Cell::new(false));
    let flag = ran.clone();
    let task = wasm_bindgen::closure::Closure::once_into_js(move || flag.set(true));
    let scheduler = opfs_media::platform::get(&opfs_media::platform::global(), "scheduler");
    if opfs_media::platform::has_method(&scheduler, "postTask") {
        let opts = js_sys::Object::new();
        js_sys::Reflect::set(&opts, &"priority".into(), &"user-blocking".into()).unwrap();
        opfs_media::platform::call(&scheduler, "postTask", &[&task, &opts]).unwrap();
    } else {
        opfs_media::platform::call(&opfs_media::platform::global(), "setTimeout", &[&task, &0.into()]).unwrap();
    }
    let mut sliced = opfs_media::digest::Sha256State::new();
    checksum::feed_yielding(&mut sliced, &buf, len as u32).await;
    let in_page = !opfs_media::platform::is_worker();
    assert_eq!(ran.get(), in_page, "a task queued before the hashing ran during it: {}", ran.get());
    let mut whole = opfs_media::digest::Sha256State::new();
    checksum::feed(&mut whole, &buf);
    assert_eq!(sliced.finish(), whole.finish(), "sliced hashing changed the digest");
}
