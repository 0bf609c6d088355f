//! Streams a `Blob` or a `ReadableStream` of bytes into a sink chunk by chunk, hashing it
//! (SHA-256) when asked. Chunks stay JS `Uint8Array`s; only a copy for the hasher enters WASM memory.

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

/// What a copy reads: a `Blob` (through its `stream()`) or a caller's `ReadableStream`.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// A `File` or `Blob`.
    Blob(&'a Blob),
    /// A stream of byte chunks (`fetch` bodies, recordings); read once.
    Stream(&'a ReadableStream),
}

impl Source<'_> {
    /// The size of a source that can be read again (a `Blob`); `None` for a stream, which is
    /// read once.
    pub fn repeatable_size(&self) -> Option<f64> {
        match self {
            Source::Blob(b) => Some(b.size()),
            Source::Stream(_) => None,
        }
    }
}

impl<'a> From<&'a Blob> for Source<'a> {
    fn from(b: &'a Blob) -> Self {
        Source::Blob(b)
    }
}

impl Source<'_> {
    fn reader(&self) -> Result<ReadableStreamDefaultReader, CopyFailure> {
        match self {
            Source::Blob(b) => {
                if !platform::has_method(b, "stream") {
                    let e = js_sys::Error::new("Blob.stream() is not available in this browser");
                    return Err(CopyFailure::Read(e.into()));
                }
                Ok(b.stream().get_reader().unchecked_into())
            }
            Source::Stream(s) => match platform::call(s, "getReader", &[]) {
                Ok(r) => Ok(r.unchecked_into()),
                Err(e) => Err(CopyFailure::Locked(platform::error_parts(&e).1)),
            },
        }
    }
}

/// Where a copy failed: reading the source or writing the destination.
#[derive(Debug)]
pub enum CopyFailure {
    /// The source stream errored (e.g. `NotReadableError`).
    Read(JsValue),
    /// The source stream is locked to another reader (or was already consumed).
    Locked(String),
    /// The source stream yielded something that is not bytes (described).
    NotBytes(String),
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
        // A copy, always: the writable takes the chunk later than this call, and a producer
        // may reuse its buffer once it has handed a chunk over (a WASM producer's memory, a
        // recycled pool); the copy also gives WebKit a buffer of the chunk's own (`own_buffer`).
        Ok(Some(JsFuture::from(self.0.write_with_chunk(&chunk.slice(0, chunk.length())))))
    }
    async fn close(&mut self) -> Result<(), JsValue> {
        JsFuture::from(self.0.close()).await.map(drop)
    }
    /// Closes the writable when it can (its queued writes finish first), else aborts it: WebKit
    /// lets writes that were in flight at an `abort()` land after it resolved, re-creating a
    /// temp file the caller had already removed (seen on the webkit-opfs lane). The caller
    /// removes what was written either way.
    async fn abort(&mut self) {
        if JsFuture::from(self.0.close()).await.is_err() {
            let _ = JsFuture::from(self.0.abort()).await;
        }
    }
}

/// `chunk` itself when it spans its whole buffer, else a copy of its bytes into a buffer of
/// their own (made by the engine, not through WASM memory). WebKit (Safari, WebKitGTK 2.50)
/// writes the *whole backing buffer* of a typed-array view handed to a file writer: a chunk
/// that is a `subarray` (a caller's stream, a transform, a slice of a larger read) would be
/// stored with the bytes around it, silently. Chromium and Firefox honour the view; the copy
/// costs them one `memcpy` of such chunks only. (The sync access handle writes at once, so
/// a whole buffer needs no copy there; `WriterSink` copies every chunk.)
fn own_buffer(chunk: &Uint8Array) -> Uint8Array {
    let whole = platform::get(&chunk.buffer(), "byteLength").as_f64();
    if chunk.byte_offset() == 0 && whole == Some(f64::from(chunk.byte_length())) {
        chunk.clone()
    } else {
        chunk.slice(0, chunk.length())
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
        let written = self.handle.write_with_buffer_source_and_options(&own_buffer(chunk), &opts)?;
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
/// On failure the source is cancelled and the sink aborted before returning.
pub async fn copy<S: ChunkSink>(
    source: Source<'_>,
    sink: &mut S,
    hash: bool,
) -> Result<(f64, Option<String>), CopyFailure> {
    let mut hasher = hash.then(Sha256State::new);
    let mut reader = match source.reader() {
        Ok(r) => ChunkReader { reader: r, next: None },
        Err(e) => {
            sink.abort().await;
            return Err(e);
        }
    };
    let (total, _) = copy_some(&mut reader, sink, hasher.as_mut(), &mut |_| {}, None).await?;
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
            // Cancelling tells the source (a fetch, a recorder's pipe) that nobody reads any more.
            reader.cancel(match e {
                CopyFailure::Write(_) => "opfs-media: the copy failed while writing",
                CopyFailure::NotBytes(_) => "opfs-media: the stream yielded a chunk that is not bytes",
                _ => "opfs-media: the copy failed while reading",
            });
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
        let chunk = as_bytes(platform::get(&step, "value")).await?;
        self.next = Some(JsFuture::from(self.reader.read()));
        Ok(Some(chunk))
    }

    /// Gives up on the stream (a failed copy), telling the source why.
    pub fn cancel(&mut self, why: &str) {
        self.next = None;
        let _ = self.reader.cancel_with_reason(&js_sys::Error::new(why));
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

/// A chunk as a `Uint8Array` view (no copy), from a `Uint8Array`, another `ArrayBufferView`, an
/// `ArrayBuffer`, or a `Blob` (what a `MediaRecorder` hands out; read whole: such chunks are
/// small). Anything else is `NotBytes`: a string would otherwise be written as its UTF-8 text.
async fn as_bytes(v: JsValue) -> Result<Uint8Array, CopyFailure> {
    if let Some(u8s) = v.dyn_ref::<Uint8Array>() {
        return Ok(u8s.clone());
    }
    if let Some(buf) = v.dyn_ref::<js_sys::ArrayBuffer>() {
        return Ok(Uint8Array::new(buf));
    }
    if js_sys::ArrayBuffer::is_view(&v) {
        let buffer = platform::get(&v, "buffer");
        let at = platform::get(&v, "byteOffset").as_f64().unwrap_or(0.0) as u32;
        let len = platform::get(&v, "byteLength").as_f64().unwrap_or(0.0) as u32;
        return Ok(Uint8Array::new_with_byte_offset_and_length(&buffer, at, len));
    }
    if let Some(blob) = v.dyn_ref::<Blob>() {
        let buf = JsFuture::from(blob.array_buffer()).await.map_err(CopyFailure::Read)?;
        return Ok(Uint8Array::new(&buf));
    }
    let what = if v.is_null() {
        "null".to_owned()
    } else if v.is_undefined() {
        "undefined".to_owned()
    } else if let Some(s) = v.as_string() {
        format!("a string of {} characters", s.chars().count())
    } else {
        format!("a value of type {}", v.js_typeof().as_string().unwrap_or_default())
    };
    Err(CopyFailure::NotBytes(what))
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
