//! SHA-256 of stored bytes, computed off the import path: by the sync service before an
//! upload (normally in a worker) or on request (`MediaLibrary.checksum`).
//!
//! Measured (docs/library.md, "Checksums"): SHA-256 in WASM runs at ~120-170 MB/s in
//! Chromium, and hashing while importing made a 100 MB import ~1.4x a plain `pipeTo`; without
//! it the import is ~1.0x. WebCrypto's native digest is several times faster but takes the
//! whole buffer, so it is used for blobs up to `NATIVE_MAX_BYTES`; larger ones stream through
//! the WASM hasher in chunks, so memory stays bounded.

use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::Blob;

use super::copy::{copy, hex, HashOnly};
use super::opfs;
use crate::error::LibraryError;
use crate::platform::{self, error_parts};

/// Largest blob read whole into (JS, never WASM) memory for the native digest.
pub const NATIVE_MAX_BYTES: f64 = 16.0 * 1024.0 * 1024.0;

/// Lowercase hex SHA-256 of `blob`.
pub async fn sha256_of(blob: &Blob) -> Result<String, LibraryError> {
    if blob.size() <= NATIVE_MAX_BYTES {
        if let Some(subtle) = subtle_crypto() {
            return native(&subtle, blob).await;
        }
    }
    let (_, sha) = copy(blob.into(), &mut HashOnly, true).await.map_err(opfs::copy_err)?;
    Ok(sha.unwrap_or_default())
}

/// `crypto.subtle` when it has `digest` (absent in insecure contexts and some engines).
fn subtle_crypto() -> Option<JsValue> {
    let subtle = platform::get(&platform::get(&platform::global(), "crypto"), "subtle");
    platform::has_method(&subtle, "digest").then_some(subtle)
}

async fn native(subtle: &JsValue, blob: &Blob) -> Result<String, LibraryError> {
    let bytes = read_all(blob).await?;
    Ok(hex(&native_digest(subtle, &bytes.into()).await?))
}

/// A failed read of a blob, as the library reports it.
fn unreadable(e: JsValue) -> LibraryError {
    let (name, msg) = error_parts(&e);
    LibraryError::SourceUnreadable(format!("{name}: {msg}"))
}

/// The bytes of `blob` in JS memory (an `ArrayBuffer`).
pub async fn read_all(blob: &Blob) -> Result<ArrayBuffer, LibraryError> {
    let bytes = JsFuture::from(blob.array_buffer()).await.map_err(unreadable)?;
    bytes.dyn_into().map_err(|v| LibraryError::SourceUnreadable(format!("Blob.arrayBuffer() answered {v:?}")))
}

/// Reads all of `blob` into the start of `buf` (when it is at least `blob.size()` bytes
/// long; a new buffer otherwise) and returns the buffer holding them: the same memory serves
/// every chunk of a large upload instead of a fresh buffer per chunk, which the garbage
/// collector freed late (hundreds of MB of growth over a 1 GB upload). Where the engine's blob
/// streams are byte streams a BYOB reader fills `buf` directly (it is transferred: use the
/// returned buffer, `buf` is detached); elsewhere each chunk read is copied in.
pub async fn read_into(blob: &Blob, buf: Option<ArrayBuffer>) -> Result<ArrayBuffer, LibraryError> {
    let size = blob.size();
    let buf = match buf {
        Some(b) if f64::from(b.byte_length()) >= size => b,
        _ => ArrayBuffer::new(size as u32),
    };
    let stream = blob.stream();
    let opts = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&opts, &"mode".into(), &"byob".into());
    let byob = platform::call(&stream, "getReader", &[&opts]).ok();
    let reader = match &byob {
        Some(r) => r.clone(),
        None => platform::call(&stream, "getReader", &[]).map_err(unreadable)?,
    };
    let (mut buf, mut filled) = (buf, 0u32);
    let want = size as u32;
    while filled < want {
        let step = match &byob {
            Some(_) => {
                let view = Uint8Array::new_with_byte_offset_and_length(&buf, filled, want - filled);
                platform::call_async(&reader, "read", &[&view]).await.map_err(unreadable)?
            }
            None => platform::call_async(&reader, "read", &[]).await.map_err(unreadable)?,
        };
        if platform::get(&step, "done").as_bool().unwrap_or(true) {
            break;
        }
        let chunk: Uint8Array = platform::get(&step, "value").unchecked_into();
        let n = chunk.byte_length();
        if byob.is_some() {
            buf = chunk.buffer();
        } else if filled + n <= want {
            Uint8Array::new(&buf).set(&chunk, filled);
        } else {
            filled += n;
            break;
        }
        filled += n;
    }
    let _ = platform::call(&reader, "cancel", &[]);
    if filled != want {
        return Err(LibraryError::SourceUnreadable(format!("read {filled} bytes of a {want}-byte file")));
    }
    Ok(buf)
}

async fn native_digest(subtle: &JsValue, bytes: &JsValue) -> Result<Vec<u8>, LibraryError> {
    let digest = platform::call_async(subtle, "digest", &[&"SHA-256".into(), bytes]).await.map_err(|e| {
        let (name, msg) = error_parts(&e);
        LibraryError::Storage { op: "hashing the file", detail: format!("{name}: {msg}") }
    })?;
    let digest: ArrayBuffer = digest.dyn_into().map_err(|v| LibraryError::Storage {
        op: "hashing the file",
        detail: format!("crypto.subtle.digest answered {v:?}"),
    })?;
    Ok(Uint8Array::new(&digest).to_vec())
}

/// The raw SHA-256 of the first `len` bytes of a buffer: the native digest where there is
/// one, else the WASM hasher.
pub async fn digest_of(bytes: &ArrayBuffer, len: u32) -> Result<[u8; 32], LibraryError> {
    if let Some(subtle) = subtle_crypto() {
        let view = Uint8Array::new_with_byte_offset_and_length(bytes, 0, len);
        let d = native_digest(&subtle, &view).await?;
        if let Ok(d) = <[u8; 32]>::try_from(d.as_slice()) {
            return Ok(d);
        }
    }
    let mut h = crate::digest::Sha256State::new();
    feed_range(&mut h, bytes, 0, len);
    Ok(h.finish())
}

/// Feeds `bytes` (JS memory) to `h`, through a bounded scratch buffer in WASM memory.
pub fn feed(h: &mut crate::digest::Sha256State, bytes: &ArrayBuffer) {
    feed_range(h, bytes, 0, bytes.byte_length());
}

/// Bytes hashed between two yields on a page's main thread: ~12 ms at the ~170 MB/s the
/// WASM SHA-256 runs here, a few times that on a slow phone, well under the 50 ms of a long
/// task. (A 16 MiB chunk hashed in one go was a ~100 ms long task per chunk.)
const MAIN_THREAD_SLICE: u32 = 2 << 20;

/// `feed` of the first `len` bytes, letting a page's other tasks (input, rendering) run
/// between slices of hashing; in a worker, nothing else waits on the thread and it runs at once.
pub async fn feed_yielding(h: &mut crate::digest::Sha256State, bytes: &ArrayBuffer, len: u32) {
    if platform::is_worker() {
        return feed_range(h, bytes, 0, len);
    }
    let mut at = 0;
    while at < len {
        let n = MAIN_THREAD_SLICE.min(len - at);
        feed_range(h, bytes, at, at + n);
        at += n;
        if at < len {
            platform::yield_now().await;
        }
    }
}

fn feed_range(h: &mut crate::digest::Sha256State, bytes: &ArrayBuffer, from: u32, to: u32) {
    const STEP: u32 = 1 << 20;
    let mut scratch = vec![0u8; STEP.min(to - from) as usize];
    let mut at = from;
    while at < to {
        let n = STEP.min(to - at);
        Uint8Array::new_with_byte_offset_and_length(bytes, at, n).copy_to(&mut scratch[..n as usize]);
        h.update(&scratch[..n as usize]);
        at += n;
    }
}
