//! Streamed imports into the IndexedDB fallback: the bytes go in bounded pieces
//! (`<key>.partNNNNNN`), each its own transaction, and a manifest under `<key>` that is written
//! with the record, so a stream never sits whole in memory and an unfinished one has no record.

use js_sys::{Array, Function, Promise, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, IdbDatabase};

use super::copy::ChunkSink;
use super::schema::BLOBS;

/// Bytes gathered before a piece is written: with up to four writes in flight, a stream's
/// import holds at most ~20 MiB of it in memory.
pub const PIECE_BYTES: u32 = 4 * 1024 * 1024;

/// The key of piece `n` of the bytes stored under `key` (zero-padded: keys sort in order).
pub fn piece_key(key: &str, n: u32) -> String {
    format!("{key}.part{n:06}")
}

/// The key a piece belongs to (`None` for a key that is not a piece's).
pub fn owner_of_piece(piece: &str) -> Option<&str> {
    let (owner, n) = piece.rsplit_once(".part")?;
    (n.len() == 6 && n.bytes().all(|b| b.is_ascii_digit())).then_some(owner)
}

/// The manifest stored under the key itself: `{ parts: n }`.
pub fn manifest(parts: u32) -> JsValue {
    let m = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&m, &"parts".into(), &parts.into());
    m.into()
}

/// The number of pieces if `v` is a manifest.
pub fn parts_of(v: &JsValue) -> Option<u32> {
    if v.is_instance_of::<Blob>() || v.is_instance_of::<js_sys::ArrayBuffer>() {
        return None;
    }
    crate::platform::get(v, "parts").as_f64().map(|n| n as u32)
}

/// Writes pieces of `PIECE_BYTES` as the chunks arrive; `abort` removes what it wrote.
pub struct PieceSink {
    db: IdbDatabase,
    key: String,
    /// Pieces written (or being written).
    pub parts: u32,
    pending: Vec<JsValue>,
    pending_len: u32,
    /// Store pieces as `Blob`s (else as `ArrayBuffer`s, where the engine refuses Blobs).
    blobs: bool,
    put: Function,
}

impl PieceSink {
    /// A sink for the bytes of `key` in `db`.
    pub fn new(db: IdbDatabase, key: &str, blobs: bool) -> Self {
        // A plain promise around one strict transaction (the `idb` crate's futures are not
        // 'static, and the copy keeps several writes in flight).
        let put = Function::new_with_args(
            "db, store, key, value",
            "return new Promise((resolve, reject) => {
                const tx = db.transaction([store], 'readwrite', { durability: 'strict' });
                tx.oncomplete = () => resolve();
                tx.onabort = () => reject(tx.error || new DOMException('the transaction was aborted', 'AbortError'));
                tx.objectStore(store).put(value, key);
            })",
        );
        Self { db, key: key.to_owned(), parts: 0, pending: Vec::new(), pending_len: 0, blobs, put }
    }

    fn flush(&mut self) -> Result<Option<JsFuture>, JsValue> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        let chunks: Array = self.pending.drain(..).collect();
        let value: JsValue = if self.blobs {
            Blob::new_with_blob_sequence(&chunks)?.into()
        } else {
            let whole = Uint8Array::new_with_length(self.pending_len);
            let mut at = 0;
            for c in chunks.iter() {
                let c: Uint8Array = c.unchecked_into();
                whole.set(&c, at);
                at += c.length();
            }
            whole.buffer().into()
        };
        self.pending_len = 0;
        let key = JsValue::from_str(&piece_key(&self.key, self.parts));
        self.parts += 1;
        let args = Array::of4(&self.db, &JsValue::from_str(BLOBS), &key, &value);
        let p: Promise = self.put.apply(&JsValue::NULL, &args)?.unchecked_into();
        Ok(Some(JsFuture::from(p)))
    }
}

impl ChunkSink for PieceSink {
    fn start_write(&mut self, chunk: &Uint8Array) -> Result<Option<JsFuture>, JsValue> {
        if chunk.length() == 0 {
            return Ok(None);
        }
        // Kept as a snapshot of the chunk's bytes, taken now: the piece is written later, and
        // the producer may reuse its buffer meanwhile. A `Blob` of one chunk holds exactly the
        // view's bytes (on every engine) and the piece is then a `Blob` of `Blob`s, no copy.
        let part: JsValue = if self.blobs {
            Blob::new_with_u8_array_sequence(&Array::of1(chunk))?.into()
        } else {
            chunk.slice(0, chunk.length()).into()
        };
        self.pending_len += chunk.length();
        self.pending.push(part);
        if self.pending_len >= PIECE_BYTES {
            return self.flush();
        }
        Ok(None)
    }
    async fn close(&mut self) -> Result<(), JsValue> {
        if let Some(last) = self.flush()? {
            last.await?;
        }
        Ok(())
    }
    async fn abort(&mut self) {
        self.pending.clear();
        let _ = delete_pieces(&self.db, &self.key).await;
    }
}

/// Removes every piece of `key` (one transaction; pieces are contiguous in key order).
pub async fn delete_pieces(db: &IdbDatabase, key: &str) -> Result<(), JsValue> {
    let del = Function::new_with_args(
        "db, store, lower, upper",
        "return new Promise((resolve, reject) => {
            const tx = db.transaction([store], 'readwrite', { durability: 'strict' });
            tx.oncomplete = () => resolve();
            tx.onabort = () => reject(tx.error);
            tx.objectStore(store).delete(IDBKeyRange.bound(lower, upper));
        })",
    );
    let (lower, upper) = piece_range(key);
    let args = Array::of4(db, &JsValue::from_str(BLOBS), &lower.into(), &upper.into());
    let p: Promise = del.apply(&JsValue::NULL, &args)?.unchecked_into();
    JsFuture::from(p).await.map(drop)
}

/// The inclusive key range holding every piece of `key`.
pub fn piece_range(key: &str) -> (String, String) {
    (format!("{key}.part"), format!("{key}.part\u{ffff}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_keys_sort_in_order_and_name_their_owner() {
        let id = "0190f0c2-7a0e-7cc0-8000-000000000001";
        let keys: Vec<String> = [0, 1, 2, 10, 100_000].iter().map(|&n| piece_key(id, n)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(owner_of_piece(&keys[3]), Some(id));
        assert_eq!(owner_of_piece(id), None);
        assert_eq!(owner_of_piece("x.part12"), None);
        let (lo, hi) = piece_range(id);
        assert!(keys.iter().all(|k| *k > lo && *k < hi));
        assert!(id < lo.as_str() && id.to_owned() + "x" > hi);
    }
}
