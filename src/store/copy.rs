//! Streams a `Blob` into a sink chunk by chunk, hashing it (SHA-256) when asked.
//! Chunks stay JS `Uint8Array`s; only a copy for the hasher enters WASM memory.

use std::collections::VecDeque;

use js_sys::Uint8Array;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, FileSystemReadWriteOptions, FileSystemSyncAccessHandle, ReadableStream, ReadableStreamDefaultReader,
    WritableStreamDefaultWriter,
};

use crate::digest::Sha256State;
use crate::platform;

/// Where a copy failed: reading the source or writing the destination.
#[derive(Debug)]
pub enum CopyFailure {
    /// The source stream errored (e.g. `NotReadableError`).
    Read(JsValue),
    /// The sink refused a chunk (e.g. `QuotaExceededError`).
    Write(JsValue),
}

/// A destination for chunks. Implementations own the write side only; callers own cleanup.
// WASM is single-threaded here, so the futures need no `Send` bound.
#[allow(async_fn_in_trait)]
pub trait ChunkSink {
    /// Starts writing `chunk`; the returned future completes when the sink accepted it.
    /// The chunk must not be detached: the hasher reads it after the call, overlapping the
    /// write, and up to `WRITES_IN_FLIGHT` writes are pending at once.
    fn start_write(&mut self, chunk: &Uint8Array) -> Result<Option<JsFuture>, JsValue>;
    /// Makes the written bytes durable and releases the sink.
    async fn close(&mut self) -> Result<(), JsValue>;
    /// Discards what was written and releases the sink; never fails.
    async fn abort(&mut self);
}

/// Writes through a `WritableStream` writer (OPFS `createWritable`, main thread).
pub struct WriterSink(pub WritableStreamDefaultWriter);

impl ChunkSink for WriterSink {
    fn start_write(&mut self, chunk: &Uint8Array) -> Result<Option<JsFuture>, JsValue> {
        Ok(Some(JsFuture::from(self.0.write_with_chunk(chunk))))
    }
    async fn close(&mut self) -> Result<(), JsValue> {
        JsFuture::from(self.0.close()).await.map(drop)
    }
    async fn abort(&mut self) {
        let _ = JsFuture::from(self.0.abort()).await;
    }
}

/// Writes through an OPFS sync access handle (dedicated workers): synchronous writes.
pub struct SyncHandleSink {
    handle: FileSystemSyncAccessHandle,
    at: f64,
}

impl SyncHandleSink {
    /// Wraps an open handle; writing starts at offset 0.
    pub fn new(handle: FileSystemSyncAccessHandle) -> Self {
        Self { handle, at: 0.0 }
    }
}

impl ChunkSink for SyncHandleSink {
    fn start_write(&mut self, chunk: &Uint8Array) -> Result<Option<JsFuture>, JsValue> {
        let opts = FileSystemReadWriteOptions::new();
        opts.set_at(self.at);
        let written = self.handle.write_with_buffer_source_and_options(chunk, &opts)?;
        if written != f64::from(chunk.length()) {
            // A short write means the disk or quota ran out part-way. Chromium 156 does not
            // throw there: it writes what fits and returns a count that is not the chunk's
            // length (seen: 2^32 - 8 for a 6 MB write into 2 MB of quota), so anything but
            // the exact length is a failed write.
            let msg = format!("the sync access handle wrote {written} of {} bytes", chunk.length());
            return Err(web_sys::DomException::new_with_message_and_name(&msg, "QuotaExceededError")?.into());
        }
        self.at += written;
        Ok(None)
    }
    async fn close(&mut self) -> Result<(), JsValue> {
        let flushed = self.handle.flush();
        self.handle.close();
        flushed
    }
    async fn abort(&mut self) {
        self.handle.close();
    }
}

/// Accepts and drops every chunk: used where the Blob is stored whole (IndexedDB).
pub struct HashOnly;

impl ChunkSink for HashOnly {
    fn start_write(&mut self, _: &Uint8Array) -> Result<Option<JsFuture>, JsValue> {
        Ok(None)
    }
    async fn close(&mut self) -> Result<(), JsValue> {
        Ok(())
    }
    async fn abort(&mut self) {}
}

/// Fails like a full disk once more than `left` bytes were written: a fault injected
/// around a real sink (the `object_store` throttle idea), for quota tests.
pub struct Budget<S> {
    /// The real sink.
    pub inner: S,
    /// Bytes still allowed.
    pub left: u64,
}

impl<S: ChunkSink> ChunkSink for Budget<S> {
    fn start_write(&mut self, chunk: &Uint8Array) -> Result<Option<JsFuture>, JsValue> {
        let len = u64::from(chunk.length());
        if len > self.left {
            let msg = "simulated: the quota was exhausted part-way through the write";
            return Err(web_sys::DomException::new_with_message_and_name(msg, "QuotaExceededError")?.into());
        }
        self.left -= len;
        self.inner.start_write(chunk)
    }
    async fn close(&mut self) -> Result<(), JsValue> {
        self.inner.close().await
    }
    async fn abort(&mut self) {
        self.inner.abort().await
    }
}

/// Copies `source` into `sink` and returns `(bytes, lowercase hex SHA-256 if `hash`)`.
/// On failure the sink is aborted before returning.
pub async fn copy<S: ChunkSink>(source: &Blob, sink: &mut S, hash: bool) -> Result<(f64, Option<String>), CopyFailure> {
    if !platform::has_method(source, "stream") {
        return Err(CopyFailure::Read(js_sys::Error::new("Blob.stream() is not available in this browser").into()));
    }
    let mut hasher = hash.then(Sha256State::new);
    let total = copy_stream(&source.stream(), sink, hasher.as_mut(), &mut |_| {}).await?;
    Ok((total, hasher.map(Sha256State::finish_hex)))
}

/// Copies a byte stream into `sink`, feeding `hasher` and reporting the bytes copied so far to
/// `progress` after each chunk; returns the byte count. On failure the stream is cancelled
/// and the sink aborted before returning.
pub async fn copy_stream<S: ChunkSink>(
    stream: &ReadableStream,
    sink: &mut S,
    hasher: Option<&mut Sha256State>,
    progress: &mut dyn FnMut(f64),
) -> Result<f64, CopyFailure> {
    let mut reader = ChunkReader::new(stream);
    copy_some(&mut reader, sink, hasher, progress, None).await.map(|(n, _)| n)
}

/// Like `copy_stream`, but stops after the chunk that takes the copy to `stop_after` bytes or
/// more (the reader keeps its place, so the next call continues into another sink), and closes
/// the sink. Returns the bytes copied and whether the stream ended.
pub async fn copy_some<S: ChunkSink>(
    reader: &mut ChunkReader,
    sink: &mut S,
    hasher: Option<&mut Sha256State>,
    progress: &mut dyn FnMut(f64),
    stop_after: Option<f64>,
) -> Result<(f64, bool), CopyFailure> {
    match pump(reader, sink, hasher, progress, stop_after).await {
        Ok(done) => Ok(done),
        Err(e) => {
            reader.cancel();
            sink.abort().await;
            Err(e)
        }
    }
}

/// Reads a byte stream chunk by chunk, with the next read always under way while the caller
/// writes and hashes the current chunk.
pub struct ChunkReader {
    reader: ReadableStreamDefaultReader,
    next: Option<JsFuture>,
}

impl ChunkReader {
    /// Locks `stream` for reading.
    pub fn new(stream: &ReadableStream) -> Self {
        Self { reader: stream.get_reader().unchecked_into(), next: None }
    }

    /// The next chunk, or `None` at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<Uint8Array>, CopyFailure> {
        let pending = self.next.take().unwrap_or_else(|| JsFuture::from(self.reader.read()));
        let step = pending.await.map_err(CopyFailure::Read)?;
        if platform::get(&step, "done").as_bool().unwrap_or(true) {
            return Ok(None);
        }
        let chunk: Uint8Array = platform::get(&step, "value").dyn_into().map_err(|v| {
            CopyFailure::Read(js_sys::Error::new(&format!("stream yielded a non-byte chunk: {v:?}")).into())
        })?;
        self.next = Some(JsFuture::from(self.reader.read()));
        Ok(Some(chunk))
    }

    /// Gives up on the stream (a failed copy): the source stops producing.
    pub fn cancel(&mut self) {
        self.next = None;
        let _ = self.reader.cancel();
    }
}

/// Writes the sink may have in flight at once: like `pipeTo`, the copy does not wait for one
/// chunk to reach the disk before handing over the next (each write is an IPC round trip).
const WRITES_IN_FLIGHT: usize = 4;

/// Longest stretch of hashing before the copy lets the thread's other tasks run.
const YIELD_EVERY_MS: f64 = 25.0;

async fn pump<S: ChunkSink>(
    reader: &mut ChunkReader,
    sink: &mut S,
    mut hasher: Option<&mut Sha256State>,
    progress: &mut dyn FnMut(f64),
    stop_after: Option<f64>,
) -> Result<(f64, bool), CopyFailure> {
    let mut scratch: Vec<u8> = Vec::new();
    let mut total = 0f64;
    let mut last_yield = platform::now_ms();
    let mut writes: VecDeque<JsFuture> = VecDeque::with_capacity(WRITES_IN_FLIGHT);
    let mut ended = false;
    while stop_after.is_none_or(|max| total < max) {
        let Some(chunk) = reader.next_chunk().await? else {
            ended = true;
            break;
        };
        if writes.len() == WRITES_IN_FLIGHT {
            if let Some(oldest) = writes.pop_front() {
                oldest.await.map_err(CopyFailure::Write)?;
            }
        }
        writes.extend(sink.start_write(&chunk).map_err(CopyFailure::Write)?);
        let len = chunk.length() as usize;
        if let Some(hasher) = hasher.as_deref_mut() {
            hash_chunk(hasher, &chunk, &mut scratch);
            // Reads of a local Blob can resolve without leaving the task, so a long hash with
            // a sink that never waits (hash only; sync access handle) would block the thread
            // (measured: a 2.7 s long task for 200 MB): hand it back every few chunks.
            if platform::now_ms() - last_yield > YIELD_EVERY_MS {
                platform::yield_now().await;
                last_yield = platform::now_ms();
            }
        }
        total += len as f64;
        progress(total);
    }
    for write in writes {
        write.await.map_err(CopyFailure::Write)?;
    }
    sink.close().await.map_err(CopyFailure::Write)?;
    Ok((total, ended))
}

/// Feeds one chunk to the hasher through a reused WASM buffer. Not inlined: `pump` has one
/// copy per sink type, and the SHA-256 rounds are the bulk of the package's code size.
#[inline(never)]
fn hash_chunk(hasher: &mut Sha256State, chunk: &Uint8Array, scratch: &mut Vec<u8>) {
    let len = chunk.length() as usize;
    scratch.resize(len, 0);
    chunk.copy_to(&mut scratch[..len]);
    hasher.update(&scratch[..len]);
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    bytes.iter().flat_map(|b| [HEX[usize::from(b >> 4)] as char, HEX[usize::from(b & 15)] as char]).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_of_empty_sha256() {
        use sha2::Digest;
        assert_eq!(
            super::hex(&sha2::Sha256::digest(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
