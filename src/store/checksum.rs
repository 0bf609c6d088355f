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
    Ok(hex(&native_digest(subtle, &bytes).await?))
}

/// The bytes of `blob` in JS memory (an `ArrayBuffer`).
pub async fn read_all(blob: &Blob) -> Result<ArrayBuffer, LibraryError> {
    let unreadable = |e: JsValue| {
        let (name, msg) = error_parts(&e);
        LibraryError::SourceUnreadable(format!("{name}: {msg}"))
    };
    let bytes = JsFuture::from(blob.array_buffer()).await.map_err(unreadable)?;
    bytes.dyn_into().map_err(|v| LibraryError::SourceUnreadable(format!("Blob.arrayBuffer() answered {v:?}")))
}

async fn native_digest(subtle: &JsValue, bytes: &ArrayBuffer) -> Result<Vec<u8>, LibraryError> {
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

/// The raw SHA-256 of a buffer: the native digest where there is one, else the WASM hasher.
pub async fn digest_of(bytes: &ArrayBuffer) -> Result<[u8; 32], LibraryError> {
    if let Some(subtle) = subtle_crypto() {
        let d = native_digest(&subtle, bytes).await?;
        if let Ok(d) = <[u8; 32]>::try_from(d.as_slice()) {
            return Ok(d);
        }
    }
    let mut h = crate::digest::Sha256State::new();
    feed(&mut h, bytes);
    Ok(h.finish())
}

/// Feeds `bytes` (JS memory) to `h`, through a bounded scratch buffer in WASM memory.
pub fn feed(h: &mut crate::digest::Sha256State, bytes: &ArrayBuffer) {
    const STEP: u32 = 1 << 20;
    let len = bytes.byte_length();
    let mut scratch = vec![0u8; STEP.min(len) as usize];
    let mut at = 0;
    while at < len {
        let n = STEP.min(len - at);
        Uint8Array::new_with_byte_offset_and_length(bytes, at, n).copy_to(&mut scratch[..n as usize]);
        h.update(&scratch[..n as usize]);
        at += n;
    }
}
