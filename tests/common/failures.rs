//! Library tests of input at the edges and of what must fail cleanly: bad input, an empty
//! file, a quota that runs out part way, an unreadable source, orphans and missing bytes for
//! the sweep, old and corrupt records. A failure leaves no record, file or stray piece.

use super::*;

pub async fn bad_input_is_refused_cleanly(storage: &str) {
    let Some(lib) = open(storage).await else { return };
    let keep = asset_of(&lib.import_file(file(b"keep me", "keep.txt", "text/plain").into(), None).await.unwrap());
    for not_blob in [
        JsValue::from(3),
        JsValue::from("a string"),
        JsValue::NULL,
        JsValue::UNDEFINED,
        js_sys::Object::new().into(),
        Uint8Array::from(&b"raw"[..]).into(),
    ] {
        assert_js_error(lib.import_file(not_blob, None).await, "InvalidInputError", "NOT_A_BLOB");
    }
    let huge = "n".repeat(10 * 1024);
    for (name, code) in [
        ("", "EMPTY_NAME"),
        ("   ", "EMPTY_NAME"),
        ("../x", "NAME_IS_PATH"),
        ("a/b.png", "NAME_IS_PATH"),
        ("bell\u{7}.png", "NAME_HAS_CONTROL_CHARACTER"),
        ("new\nline.png", "NAME_HAS_CONTROL_CHARACTER"),
        (huge.as_str(), "NAME_TOO_LONG"),
    ] {
        assert_js_error(
            lib.import_file(file(b"data", name, "image/png").into(), None).await,
            "InvalidInputError",
            code,
        );
        // The same name passed as an option is refused the same way.
        let opts = js_sys::Object::new();
        Reflect::set(&opts, &"name".into(), &name.into()).unwrap();
        assert_js_error(
            lib.import_file(file(b"data", "ok.png", "").into(), Some(opts.into())).await,
            "InvalidInputError",
            code,
        );
    }
    let bad_opts = js_sys::JSON::parse(r#"{"name":"ok.png","colour":"red"}"#).unwrap();
    assert_js_error(
        lib.import_file(file(b"d", "ok.png", "").into(), Some(bad_opts)).await,
        "InvalidInputError",
        "INVALID_OPTIONS",
    );
    assert_js_error(
        lib.import_file(file(b"d", "ok.png", "").into(), Some(JsValue::from(5))).await,
        "InvalidInputError",
        "INVALID_OPTIONS",
    );
    let bad_type = js_sys::JSON::parse(r#"{"type":"not a type"}"#).unwrap();
    assert_js_error(
        lib.import_file(file(b"d", "ok.png", "").into(), Some(bad_type)).await,
        "InvalidInputError",
        "INVALID_TYPE",
    );
    let bad_tags = js_sys::JSON::parse(r#"{"tags":[""]}"#).unwrap();
    assert_js_error(
        lib.import_file(file(b"d", "ok.png", "").into(), Some(bad_tags)).await,
        "InvalidInputError",
        "INVALID_TAGS",
    );

    // Nothing half-written: one record, and (OPFS) exactly one file.
    let all = Array::from(&lib.list(None).await.unwrap());
    assert_eq!(all.length(), 1);
    assert_eq!(asset_of(&all.get(0)).id, keep.id);
    if lib.storage() == "opfs" {
        assert_eq!(opfs_names(lib.library()).await, vec![keep.id.clone()]);
    }
    assert_eq!(lib.library().sweep(0.0).await.unwrap(), Default::default());
}

pub async fn zero_byte_file_is_accepted(storage: &str) {
    let Some(lib) = open(storage).await else { return };
    let a = asset_of(&lib.import_file(file(b"", "empty.txt", "text/plain").into(), None).await.unwrap());
    assert_eq!(a.size, 0.0);
    let sha = lib.checksum(a.id.clone().into()).await.unwrap().as_string();
    assert_eq!(sha.as_deref(), Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    let f = lib.get_file(a.id.into()).await.unwrap();
    assert_eq!(f.size(), 0.0);
}

pub async fn quota_exhausted_part_way(storage: &str) {
    let Some(lib) = open(storage).await else { return };
    let first = bytes(200_000, 1);
    let kept = asset_of(&lib.import_file(file(&first, "first.bin", "").into(), None).await.unwrap());
    lib.library().simulate_quota_after(Some(300_000));
    let big = bytes(2_000_000, 2);
    assert_js_error(
        lib.import_file(file(&big, "big.bin", "").into(), None).await,
        "QuotaExceededError",
        "QUOTA_EXCEEDED",
    );
    lib.library().simulate_quota_after(None);

    let all = Array::from(&lib.list(None).await.unwrap());
    assert_eq!(all.length(), 1, "no record for the failed import");
    assert_eq!(read_all(&lib.get_file(kept.id.clone().into()).await.unwrap()).await, first, "earlier data intact");
    if lib.storage() == "opfs" {
        assert_eq!(opfs_names(lib.library()).await, vec![kept.id.clone()], "temp file removed");
    }
    assert_eq!(lib.library().sweep(0.0).await.unwrap(), Default::default());
    // And the library still works afterwards.
    let again = asset_of(&lib.import_file(file(&big, "big.bin", "").into(), None).await.unwrap());
    assert_eq!(again.size, 2_000_000.0);
}

/// A `Blob` whose stream yields `good_chunks` chunks and then fails like a file that changed
/// on disk (`NotReadableError`).
pub fn failing_blob(good_chunks: u32) -> JsValue {
    let make = js_sys::Function::new_with_args(
        "n",
        "class Failing extends Blob {
            stream() {
                let sent = 0;
                return new ReadableStream({ pull(c) {
                    if (sent++ < n) c.enqueue(new Uint8Array(65536).fill(7));
                    else c.error(new DOMException('the file changed on disk', 'NotReadableError'));
                } });
            }
        }
        return new Failing([new Uint8Array(10)], { type: 'image/png' });",
    );
    make.call1(&JsValue::NULL, &good_chunks.into()).unwrap()
}

/// A `File` read from OPFS before its file was rewritten, where this engine refuses to read
/// such a snapshot, and a function that removes the file (`None` where there is no OPFS
/// `createWritable` here, or the engine reads the snapshot anyway).
async fn stale_file() -> Option<(JsValue, js_sys::Function)> {
    let make = js_sys::Function::new_no_args(
        "return (async () => {
            const root = await globalThis.navigator?.storage?.getDirectory?.().catch(() => null);
            if (!root) return null;
            const name = 'stale-' + Math.random().toString(36).slice(2);
            const h = await root.getFileHandle(name, { create: true });
            const cleanup = () => root.removeEntry(name).catch(() => {});
            if (!h.createWritable) { await cleanup(); return null; }
            let w = await h.createWritable(); await w.write('first version'); await w.close();
            const stale = await h.getFile();
            w = await h.createWritable(); await w.write('second, longer version'); await w.close();
            try { await stale.arrayBuffer(); await cleanup(); return null; } catch { return [stale, cleanup]; }
        })()",
    );
    let v = JsFuture::from(js_sys::Promise::from(make.call0(&JsValue::NULL).unwrap())).await.unwrap();
    if v.is_null() {
        return None;
    }
    let pair = Array::from(&v);
    Some((pair.get(0), pair.get(1).unchecked_into()))
}

pub async fn unreadable_source_leaves_nothing(storage: &str) {
    let Some(lib) = open(storage).await else { return };
    for good_chunks in [0, 5] {
        let r = lib.import_file(failing_blob(good_chunks), None).await;
        assert_js_error(r, "InvalidInputError", "SOURCE_UNREADABLE");
    }
    // A real one: a File snapshot whose file changed since (the browser refuses to read it).
    // It goes through the browser's own copy (`write(blob)`), not a stream we read.
    if let Some((stale, cleanup)) = stale_file().await {
        let r = lib.import_file(stale, None).await;
        let _ = JsFuture::from(js_sys::Promise::from(cleanup.call0(&JsValue::NULL).unwrap())).await;
        assert_js_error(r, "InvalidInputError", "SOURCE_UNREADABLE");
    }
    assert_eq!(Array::from(&lib.list(None).await.unwrap()).length(), 0);
    if lib.storage() == "opfs" {
        assert!(opfs_names(lib.library()).await.is_empty(), "temp files removed");
    }
    assert_eq!(lib.library().sweep(0.0).await.unwrap(), Default::default());
}

pub async fn sweep_removes_orphans_and_reports_missing(storage: &str) {
    let Some(lib) = open(storage).await else { return };
    let keep = asset_of(&lib.import_file(file(b"keep", "keep.txt", "").into(), None).await.unwrap());
    let lost = asset_of(&lib.import_file(file(b"lost", "lost.txt", "").into(), None).await.unwrap());
    let orphan = "0190f0c2-7a0e-7cc0-8000-0000000000aa".to_owned();
    let temp = "0190f0c2-7a0e-7cc0-8000-0000000000bb.tmp".to_owned();
    let lost_events = js_sys::Array::new();
    let on_lost = js_sys::Function::new_with_args("e", "this.push(e.detail)").bind0(&lost_events);
    lib.add_event_listener("lost", &on_lost).unwrap();
    if lib.storage() == "opfs" {
        // A crash after the bytes were committed but before the record; a crash mid-write;
        // bytes lost behind a record's back.
        put_opfs_file(lib.library(), &orphan, b"orphan").await;
        put_opfs_file(lib.library(), &temp, b"half").await;
        JsFuture::from(opfs_dir(lib.library()).await.remove_entry(&lost.handle_name)).await.unwrap();
        // Fresh leftovers are left alone (another tab may be importing right now).
        let early = lib.library().sweep(3_600_000.0).await.unwrap();
        assert!(early.removed_orphans.is_empty() && early.removed_temp.is_empty());
    } else {
        let cat = lib.library().catalog();
        // An ArrayBuffer: the one value every engine stores (WebKit refuses Blobs in some sessions).
        cat.put_raw_bytes(&orphan, &Uint8Array::from(&b"orphan"[..]).buffer()).await.unwrap();
        delete_blob(cat, &lost.handle_name).await;
    }
    let report = lib.library().sweep(0.0).await.unwrap();
    assert_eq!(report.removed_orphans, vec![orphan]);
    assert_eq!(report.removed_temp, if lib.storage() == "opfs" { vec![temp] } else { vec![] });
    assert_eq!(report.missing_bytes, vec![lost.id.clone()]);
    // The record with missing bytes is kept, marked (its bytes never reached a server) and
    // reported: once by a sweep's `lost` event (the early one found it already), and on
    // every read.
    assert_eq!(Array::from(&lib.list(None).await.unwrap()).length(), 2);
    let marked = asset_of(&lib.get(lost.id.clone().into()).await.unwrap());
    assert_eq!(marked.sync_status, SyncStatus::Error);
    assert_eq!(marked.sync_error.map(|e| e.code).as_deref(), Some("LOCAL_BYTES_LOST"));
    assert_eq!(lost_events.length(), 1, "one lost event");
    assert_eq!(field(&lost_events.get(0), "id").as_string().as_deref(), Some(lost.id.as_str()));
    assert_eq!(field(&lost_events.get(0), "code").as_string().as_deref(), Some("LOCAL_BYTES_LOST"));
    assert_js_error(lib.get_file(lost.id.clone().into()).await, "NotFoundError", "LOCAL_BYTES_LOST");
    assert_eq!(lost_events.length(), 1, "reported once, not on every read");
    assert_eq!(read_all(&lib.get_file(keep.id.clone().into()).await.unwrap()).await, b"keep");
    lib.delete(lost.id.into()).await.unwrap();
    assert_eq!(lib.library().sweep(0.0).await.unwrap(), Default::default());
}

pub async fn old_and_corrupt_records(storage: &str) {
    let Some(lib) = open(storage).await else { return };
    let id = "0190f0c2-7a0e-7cc0-8000-0000000000cc";
    let old = js_sys::JSON::parse(&format!(
        r#"{{"id":"{id}","handleName":"{id}","name":"old.png","type":"image/png","size":4,
            "createdAt":"2023-11-14T22:13:20.000Z","updatedAt":1700000000000}}"#
    ))
    .unwrap();
    lib.library().catalog().put_raw(&old).await.unwrap();
    let a = asset_of(&lib.get(id.into()).await.unwrap());
    assert_eq!((a.sync_status, a.storage, a.cloud_id, a.sha256), (SyncStatus::Pending, StorageKind::Opfs, None, None));
    assert_eq!(a.created_at, 1_700_000_000_000.0);
    let up = asset_of(&lib.update(id.into(), js_sys::JSON::parse(r#"{"tags":["legacy"]}"#).unwrap()).await.unwrap());
    assert_eq!(up.tags, vec!["legacy"]);

    let bad_id = "0190f0c2-7a0e-7cc0-8000-0000000000dd";
    let corrupt = js_sys::JSON::parse(&format!(r#"{{"id":"{bad_id}","size":"huge"}}"#)).unwrap();
    lib.library().catalog().put_raw(&corrupt).await.unwrap();
    assert_js_error(lib.get(bad_id.into()).await, "CorruptRecordError", "CORRUPT_RECORD");
    assert_js_error(lib.list(None).await, "CorruptRecordError", "CORRUPT_RECORD");
    // The good record is still readable by id.
    assert_eq!(asset_of(&lib.get(id.into()).await.unwrap()).name, "old.png");
}
