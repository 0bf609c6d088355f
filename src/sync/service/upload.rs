//! Resumable uploads on the wire: runs the sans-IO `chunked::ChunkedUpload` machine with real
//! I/O. Chunks are `File.slice`s of the stored file, sent as they are (the browser streams
//! them); each chunk is read once into JS memory for its `Content-Digest` (into one of two
//! buffers reused for the whole upload) and fed to the whole-file SHA-256 while it is in
//! flight, through a bounded WASM scratch buffer, in slices that leave a page's main thread
//! free between them. What the server confirmed is written to the outbox entry after every
//! chunk.

use futures_util::future::join;
use web_sys::{AbortSignal, Blob};

use crate::digest::Sha256State;
use crate::error::LibraryError;
use crate::store::checksum;
use crate::sync::chunked::{self, Action, ChunkedUpload, Reply, UploadProgress};
use crate::sync::engine::{Outcome, Request};
use crate::sync::http;
use crate::sync::protocol::{self, HttpRequest};

use super::progress::Direction;
use super::*;

/// An upload's file, opened (and hashed, for records imported without a checksum) ahead of
/// its request.
pub(super) type OpenFile = futures_util::future::Shared<LocalBoxFuture<'static, Result<Opened, LibraryError>>>;
/// What an upload sends, read from its record.
#[derive(Clone)]
pub(super) struct Opened {
    /// The stored bytes (not wrapped in a `File`: the headers carry name, type and time).
    pub(super) body: web_sys::Blob,
    pub(super) mime: String,
    pub(super) created_at: f64,
    /// The checksum computed for it (`None`: the record has one).
    pub(super) sha: Option<String>,
}

/// Reads `from..to` of the file as chunks to hash: bounded, so a rehash of a large prefix
/// never holds more than this in JS memory.
const REHASH_STEP: u64 = 8 * 1024 * 1024;

/// One attempt at the upload of `req` (an `Upload`) in `chunk`-byte chunks. Ends as a single
/// `POST` would: the asset, a failure, or a network error the engine retries (the next
/// attempt resumes from what the server confirmed).
pub(super) async fn in_chunks(
    svc: &Shared,
    generation: u64,
    req: &Request,
    up: &Opened,
    chunk: u64,
    token: Option<&str>,
    abort: Option<&AbortSignal>,
) -> Outcome {
    let Some(id) = req.asset_id() else { return Outcome::Network };
    let size = up.body.size() as u64;
    let outcome = run(svc, generation, req, up, chunk, token, abort).await;
    let outcome = match outcome {
        // The server dropped the extension since its capabilities were read: the next
        // attempt goes in one POST (the engine retries it at once).
        Ok(Outcome::Failed { code, .. }) if code == chunked::EXTENSION_GONE => {
            svc.limits.borrow_mut().sessions = None;
            Outcome::Network
        }
        Ok(o) => o,
        Err(e) => Outcome::Failed { status: 0, code: e.code().to_owned(), current: None, retry_after: None },
    };
    if matches!(outcome, Outcome::Ok(_)) {
        svc.transfer_progress(id, Direction::Upload, size as f64, size as f64);
    }
    svc.transfer_ended(id, &outcome);
    outcome
}

async fn run(
    svc: &Shared,
    generation: u64,
    req: &Request,
    up: &Opened,
    chunk: u64,
    token: Option<&str>,
    abort: Option<&AbortSignal>,
) -> Result<Outcome, LibraryError> {
    let Request::Upload { id, meta, .. } = req else { return Ok(Outcome::Network) };
    let size = up.body.size() as u64;
    // Resume from what the outbox kept: the confirmed offset and the hash state there.
    let saved = svc.lib.catalog().outbox_entry(id).await?.and_then(|e| e.upload);
    let restored =
        saved.and_then(|p| Sha256State::restore(&p.checkpoint).filter(|h| h.len() == p.offset).map(|h| (p, h)));
    let (progress, mut hash) = match restored {
        Some((p, h)) => (Some(p), h),
        None => (None, Sha256State::new()),
    };
    let mut m = ChunkedUpload::new(size, chunk, progress.as_ref());
    if m.resume_offset() != hash.len() {
        hash = Sha256State::new();
        m = ChunkedUpload::new(size, chunk, None);
    }
    svc.transfer_progress(id, Direction::Upload, m.confirmed() as f64, size as f64);
    // The next chunk, read and digested while the current one is on the wire.
    let mut ahead: Option<Prepared> = None;
    // Two chunk buffers serve the whole upload: the one on the wire and the one read ahead.
    let mut spare: Option<js_sys::ArrayBuffer> = None;
    let mut action = m.next_action();
    loop {
        if abort.is_some_and(AbortSignal::aborted) || svc.generation.get() != generation {
            // stop(), a new leadership: the confirmed offset is saved; resume later.
            return Ok(Outcome::Network);
        }
        let followup = match action {
            Action::Create { with_sha } => {
                let sha = with_sha.then(|| hash.clone().finish_hex());
                let create = chunked::create_request(id, meta, &up.mime, size, up.created_at as i64, sha.as_deref());
                let reply = exchange(svc, &create, req, token, None, abort).await;
                m.on_reply(reply)
            }
            Action::Rehash { from, to, reset } => {
                if reset {
                    hash = Sha256State::new();
                }
                let mut at = from;
                while at < to {
                    let end = (at + REHASH_STEP).min(to);
                    let bytes = checksum::read_all(&slice(&up.body, at, end)?).await?;
                    checksum::feed_yielding(&mut hash, &bytes, bytes.byte_length()).await;
                    at = end;
                }
                m.rehashed(to);
                None
            }
            Action::Persist { offset } => {
                if let Some(checkpoint) = hash.checkpoint() {
                    let p = UploadProgress { size, offset, checkpoint };
                    svc.lib.catalog().set_upload_progress(id, &p).await?;
                }
                m.persisted(offset);
                svc.chunk_confirmed(id, offset as f64, size as f64);
                None
            }
            Action::Append { offset, len, last } => {
                let p = match ahead.take() {
                    Some(p) if p.offset == offset && p.len == len => p,
                    other => Prepared::read(&up.body, offset, len, other.map(|o| o.bytes).or(spare.take())).await?,
                };
                let mut aside = hash.clone();
                let reply = if last {
                    // The final chunk carries the whole file's digest: hash it first.
                    checksum::feed_yielding(&mut aside, &p.bytes, p.len as u32).await;
                    let whole = aside.clone().finish_hex();
                    let append = chunked::append_request(id, offset, &p.digest, Some(&whole));
                    exchange(svc, &append, req, token, Some(&p.part), abort).await
                } else {
                    // While the chunk is on the wire (the request starts on first poll): hash
                    // it, and read and digest the next one, so its request can leave at once.
                    let append = chunked::append_request(id, offset, &p.digest, None);
                    let sending = exchange(svc, &append, req, token, Some(&p.part), abort);
                    let next = offset + len;
                    let reuse = spare.take();
                    let meanwhile = async {
                        checksum::feed_yielding(&mut aside, &p.bytes, p.len as u32).await;
                        Prepared::read(&up.body, next, chunk.min(size - next), reuse).await.ok()
                    };
                    let (reply, prepared) = join(sending, meanwhile).await;
                    ahead = prepared;
                    reply
                };
                let next = m.on_reply(reply);
                if m.commit_chunk(offset, len) {
                    hash = aside;
                }
                // Its buffer takes the chunk after the next one.
                spare = Some(p.bytes);
                next
            }
            Action::Wait { ms } => Some(Action::Wait { ms }),
            Action::Done(o) => return Ok(o),
        };
        action = match followup {
            Some(Action::Done(o)) => return Ok(o),
            Some(Action::Wait { ms }) => {
                platform::sleep(ms as f64).await;
                m.waited();
                m.next_action()
            }
            _ => m.next_action(),
        };
    }
}

/// A chunk read into JS memory with its SHA-256, ready to send.
struct Prepared {
    offset: u64,
    len: u64,
    part: Blob,
    /// Holds the chunk in its first `len` bytes (a reused buffer can be longer).
    bytes: js_sys::ArrayBuffer,
    digest: [u8; 32],
}

impl Prepared {
    /// Reads `offset..offset + len` of `body` into `reuse` (a buffer an earlier chunk is done
    /// with) or a new buffer, and digests it.
    async fn read(
        body: &Blob,
        offset: u64,
        len: u64,
        reuse: Option<js_sys::ArrayBuffer>,
    ) -> Result<Self, LibraryError> {
        let part = slice(body, offset, offset + len)?;
        let bytes = checksum::read_into(&part, reuse).await?;
        let digest = checksum::digest_of(&bytes, len as u32).await?;
        Ok(Self { offset, len, part, bytes, digest })
    }
}

fn slice(body: &Blob, from: u64, to: u64) -> Result<Blob, LibraryError> {
    body.slice_with_f64_and_f64(from as f64, to as f64)
        .map_err(|e| LibraryError::SourceUnreadable(platform::error_parts(&e).1))
}

/// Sends a session request; decodes the answer (`req` says what a failure means for the
/// asset, as for a single `POST`).
async fn exchange(
    svc: &Shared,
    http_req: &HttpRequest,
    req: &Request,
    token: Option<&str>,
    body: Option<&Blob>,
    abort: Option<&AbortSignal>,
) -> Reply {
    let body = body.map(|b| (b, chunked::APPEND_TYPE));
    let Ok(reply) = http::send(&svc.cfg.endpoint, http_req, token, body, abort).await else {
        return Reply::Other(Outcome::Network);
    };
    let Ok(bytes) = reply.bytes().await else { return Reply::Other(Outcome::Network) };
    let (status, retry_after) = (reply.status, reply.retry_after);
    chunked::reply(status, retry_after, &bytes, || protocol::outcome(req, status, retry_after, &bytes))
}
