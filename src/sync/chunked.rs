//! Resumable uploads (docs/protocol.md, "Resumable uploads"), sans-IO: which request to
//! send next for one large file, and what a reply means. No clocks, no I/O: the service
//! (`service/upload.rs`) reads the file, hashes, persists and sends; the seeded simulation
//! (tests/chunked_sim.rs) drives the same machine against a faulty server.
//!
//! Rules the machine keeps:
//! - the session is found (or made) by creating it again: create is idempotent on the asset
//!   id, so a lost reply, a reload or a restarted browser all start with the same request, and
//!   the offset comes from the server (asked, never assumed);
//! - the whole-file SHA-256 runs as chunks are confirmed; its state at the confirmed offset is
//!   persisted with the offset (`UploadProgress`), so a resume re-reads nothing it sent;
//! - a confirmed offset is never sent again while its session lives; a server that reports a
//!   smaller offset (the session expired and was made again) is believed, and the hash starts
//!   over from the file's start.

use serde::Deserialize;

use super::engine::{Meta, Outcome, RemoteAsset, Reply as EngineReply};
use super::json;
pub use super::protocol::SessionLimits;
use super::protocol::{Body, HttpRequest, WireAsset, WireErrorBody};
pub use crate::store::outbox::UploadProgress;

/// The chunk size this client aims for (clamped to the server's bounds): large enough that
/// per-request costs vanish (1 GB = 64 requests), small enough that a cut costs little.
pub const PREFERRED_CHUNK: u64 = 16 * 1024 * 1024;

/// The chunk length for a file of `size` bytes, or `None` when it goes in one `POST` (small,
/// or the server's bounds are unusable).
pub fn plan(size: u64, limits: Option<&SessionLimits>) -> Option<u64> {
    let l = limits?;
    if size == 0 || size < l.min_bytes || l.chunk_max_bytes < 64 || l.chunk_min_bytes > l.chunk_max_bytes {
        return None;
    }
    let min = l.chunk_min_bytes.div_ceil(64) * 64;
    let max = l.chunk_max_bytes / 64 * 64;
    if min > max {
        return None;
    }
    Some(PREFERRED_CHUNK.clamp(min, max))
}

/// The next thing to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// `POST /media/uploads`: finds or makes the session (or the committed asset). With
    /// `sha256` (the whole file, once hashed) the server compares it with a committed asset.
    Create {
        /// Send the whole-file digest.
        with_sha: bool,
    },
    /// Bring the hash state from `from` to `to` by reading the file (no network); `reset`
    /// first starts a new hash (then `from` is 0).
    Rehash {
        /// Start.
        from: u64,
        /// End.
        to: u64,
        /// Start a new hash first.
        reset: bool,
    },
    /// `PATCH /media/uploads/:id` with bytes `offset..offset + len`; `last` carries the
    /// whole-file digest and commits.
    Append {
        /// Where.
        offset: u64,
        /// How much.
        len: u64,
        /// The final chunk.
        last: bool,
    },
    /// Persist `UploadProgress { offset, checkpoint of the current hash state }`.
    Persist {
        /// The confirmed offset.
        offset: u64,
    },
    /// Wait this long, then continue (the session is busy with another append).
    Wait {
        /// Milliseconds.
        ms: u64,
    },
    /// Finished: the outcome for the engine, as a single `POST` would have ended.
    Done(Outcome),
}

/// A reply to `Create` or `Append`, decoded.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// The session, with the server's offset.
    Session {
        /// Bytes the server holds.
        offset: u64,
        /// Another append holds the session (`appending`): wait before sending.
        busy: bool,
    },
    /// The asset is committed (a create for a finished upload, or the final append).
    Asset(RemoteAsset),
    /// `409 OFFSET_MISMATCH`: the server holds `offset` bytes.
    OffsetMismatch {
        /// Bytes the server holds.
        offset: u64,
    },
    /// `404 UPLOAD_NOT_FOUND`: no open session (expired, cancelled or completed).
    NotFound,
    /// `409 UPLOAD_LOCKED`: another append is running.
    Locked {
        /// `Retry-After`, seconds.
        retry_after: Option<u64>,
    },
    /// `422 DIGEST_MISMATCH`: the chunk arrived damaged; nothing was appended.
    DigestMismatch,
    /// `422 CHECKSUM_MISMATCH` on the final chunk: the session is gone.
    ChecksumMismatch,
    /// Anything else, as the engine should see it (failures, network errors).
    Other(Outcome),
}

/// The code an attempt ends with when the server no longer has the extension (a `404` to a
/// create): the caller falls back to a single `POST`.
pub const EXTENSION_GONE: &str = "RESUMABLE_UPLOADS_UNAVAILABLE";

/// How many times one attempt re-learns the offset before handing back to the engine's
/// backoff (a server that keeps moving the offset must not spin the client).
const MAX_RESYNCS: u32 = 4;

/// Waits for a busy session within one attempt (doubling from `BUSY_WAIT_MS`: 0.2 s to 3.2 s,
/// ~9 s in all) before handing back to the engine's backoff.
const MAX_WAITS: u32 = 6;
const BUSY_WAIT_MS: u64 = 200;

/// One attempt at one file's upload. Build it from the persisted progress; feed it replies.
#[derive(Clone, Debug)]
pub struct ChunkedUpload {
    size: u64,
    chunk: u64,
    /// The offset last persisted (never re-sent while its session lives).
    persisted: u64,
    /// The offset the hash state covers.
    hashed: u64,
    /// The server's offset, once known this attempt.
    server: Option<u64>,
    /// The asset may be committed: hash the whole file and let `Create` carry the digest.
    verify_committed: bool,
    /// Whether the last `Create` carried the whole-file digest.
    create_had_sha: bool,
    /// The append in flight, if any.
    appending: Option<(u64, u64)>,
    resyncs: u32,
    waits: u32,
    digest_retries: u32,
    restarted: bool,
    done: bool,
}

impl ChunkedUpload {
    /// An attempt for a file of `size` bytes in `chunk`-byte chunks, resuming from `progress`
    /// (its hash state restored by the caller; `None` when there is none or it does not fit).
    pub fn new(size: u64, chunk: u64, progress: Option<&UploadProgress>) -> Self {
        let from = progress.filter(|p| p.size == size && p.offset <= size).map_or(0, |p| p.offset);
        Self {
            size,
            chunk: chunk.max(64),
            persisted: from,
            hashed: from,
            server: None,
            verify_committed: false,
            create_had_sha: false,
            appending: None,
            resyncs: 0,
            waits: 0,
            digest_retries: 0,
            restarted: false,
            done: false,
        }
    }

    /// The offset the hash state must be at when the attempt starts (restore the checkpoint).
    pub fn resume_offset(&self) -> u64 {
        self.hashed
    }

    /// Bytes the server confirmed this attempt (for progress), else what was persisted.
    pub fn confirmed(&self) -> u64 {
        self.server.unwrap_or(self.persisted)
    }

    /// What to do next. Call again after feeding the result of the previous action.
    pub fn next_action(&mut self) -> Action {
        if self.done {
            return Action::Done(Outcome::Network);
        }
        let Some(server) = self.server else {
            self.create_had_sha = self.hashed == self.size;
            return Action::Create { with_sha: self.create_had_sha };
        };
        if self.verify_committed || server == self.size {
            // The asset is committed, or all bytes are there: hash the rest, then let the
            // server compare (its answer to a create with the digest is the asset or a 409).
            self.verify_committed = true;
            if self.hashed < self.size {
                return self.rehash_to(self.size);
            }
            self.server = None;
            self.create_had_sha = true;
            return Action::Create { with_sha: true };
        }
        if self.hashed != server {
            return self.rehash_to(server);
        }
        if self.persisted != server {
            return Action::Persist { offset: server };
        }
        let len = self.chunk.min(self.size - server);
        self.appending = Some((server, len));
        Action::Append { offset: server, len, last: server + len == self.size }
    }

    fn rehash_to(&mut self, to: u64) -> Action {
        if to >= self.hashed {
            Action::Rehash { from: self.hashed, to, reset: false }
        } else {
            Action::Rehash { from: 0, to, reset: true }
        }
    }

    /// The caller brought the hash state to `to` (after `Rehash`).
    pub fn rehashed(&mut self, to: u64) {
        self.hashed = to;
    }

    /// The caller persisted `offset` (after `Persist`).
    pub fn persisted(&mut self, offset: u64) {
        self.persisted = offset;
    }

    /// The caller waited (after `Wait`): learn the offset again.
    pub fn waited(&mut self) {
        self.server = None;
    }

    fn finish(&mut self, o: Outcome) -> Option<Action> {
        self.done = true;
        Some(Action::Done(o))
    }

    /// Feeds the reply to the last `Create` or `Append`. Returns `Some(Done)` when the attempt
    /// is over. After an `Append`, `commit_chunk()` says whether the chunk's bytes now belong
    /// in the hash state.
    pub fn on_reply(&mut self, reply: Reply) -> Option<Action> {
        let sent = self.appending.take();
        match reply {
            Reply::Session { offset, .. } if offset > self.size => self.protocol_error(),
            Reply::Session { busy: true, .. } if sent.is_none() => {
                // An append (ours, cut a moment ago, that the server has not noticed yet) holds
                // the session: a chunk now would be drained for nothing. Wait, then ask again.
                self.waits += 1;
                if self.waits > MAX_WAITS {
                    return self.finish(Outcome::Network);
                }
                Some(Action::Wait { ms: BUSY_WAIT_MS << (self.waits - 1).min(4) })
            }
            Reply::Session { offset, .. } => match sent {
                Some((at, len)) if offset == at + len && at + len < self.size => {
                    self.hashed = offset;
                    self.server = Some(offset);
                    None
                }
                Some(_) => self.resync(offset),
                None => {
                    self.server = Some(offset);
                    None
                }
            },
            Reply::Asset(_) if sent.is_none() && !self.create_had_sha => {
                // Committed already (a final append whose reply was lost, another tab): the
                // server compares the digest once the file is hashed (next() asks for it).
                self.verify_committed = true;
                self.server = Some(self.size);
                None
            }
            Reply::Asset(remote) => self.finish(Outcome::Ok(EngineReply::Asset(remote))),
            Reply::OffsetMismatch { offset } if offset > self.size => self.protocol_error(),
            Reply::OffsetMismatch { offset } => self.resync(offset),
            Reply::NotFound if sent.is_none() => {
                // The endpoint itself is missing: the server dropped the extension.
                self.finish(failed(404, EXTENSION_GONE))
            }
            Reply::NotFound => {
                // Expired, cancelled, or committed by an append whose reply was lost.
                self.resyncs += 1;
                self.server = None;
                if self.resyncs > MAX_RESYNCS {
                    return self.finish(Outcome::Network);
                }
                None
            }
            Reply::Locked { retry_after } => {
                self.resyncs += 1;
                if self.resyncs > MAX_RESYNCS {
                    return self.finish(Outcome::Failed {
                        status: 409,
                        code: "UPLOAD_LOCKED".into(),
                        current: None,
                        retry_after,
                    });
                }
                Some(Action::Wait { ms: retry_after.unwrap_or(1).clamp(1, 60) * 1000 })
            }
            Reply::DigestMismatch => {
                self.digest_retries += 1;
                if self.digest_retries > 1 {
                    return self.finish(failed(422, "DIGEST_MISMATCH"));
                }
                None
            }
            Reply::ChecksumMismatch => {
                // The server dropped the session. Our hash or the file disagreed: start over
                // once, hashing from the first byte; a second mismatch is permanent.
                if self.restarted {
                    return self.finish(failed(422, "CHECKSUM_MISMATCH"));
                }
                self.restarted = true;
                self.hashed = u64::MAX;
                self.server = None;
                None
            }
            Reply::Other(o) => self.finish(o),
        }
    }

    /// Whether the chunk just confirmed goes into the hash state (the caller hashed it
    /// aside while it was in flight).
    pub fn commit_chunk(&self, offset: u64, len: u64) -> bool {
        self.hashed == offset + len && self.server == Some(offset + len)
    }

    fn resync(&mut self, offset: u64) -> Option<Action> {
        self.resyncs += 1;
        if self.resyncs > MAX_RESYNCS {
            return self.finish(Outcome::Network);
        }
        self.server = Some(offset);
        if offset < self.persisted {
            // The session was made again (expired): what we persisted is gone with it.
            self.persisted = offset;
        }
        None
    }

    fn protocol_error(&mut self) -> Option<Action> {
        self.finish(failed(502, "PROTOCOL_ERROR"))
    }
}

fn failed(status: u16, code: &str) -> Outcome {
    Outcome::Failed { status, code: code.into(), current: None, retry_after: None }
}

#[derive(Deserialize)]
struct WireUpload {
    offset: u64,
    #[serde(default)]
    appending: bool,
}

/// Decodes a reply to a create or an append. `engine_outcome` is what the same status and
/// body mean for a `POST` (the caller passes `protocol::outcome` for it).
pub fn reply(status: u16, retry_after: Option<u64>, body: &[u8], engine_outcome: impl FnOnce() -> Outcome) -> Reply {
    let value: Option<json::Raw> = json::from_slice(body);
    if (200..300).contains(&status) {
        if value.as_ref().is_some_and(|v| json::has(v, "offset")) {
            return match value.and_then(json::from_raw::<WireUpload>) {
                Some(u) => Reply::Session { offset: u.offset, busy: u.appending },
                None => Reply::Other(failed(502, "PROTOCOL_ERROR")),
            };
        }
        return match value.and_then(json::from_raw::<WireAsset>) {
            Some(a) => Reply::Asset(a.into()),
            None => Reply::Other(failed(502, "PROTOCOL_ERROR")),
        };
    }
    let err = value.and_then(json::from_raw::<WireErrorBody>).map(|b| b.error);
    let code = err.as_ref().map(|e| e.code.as_str()).unwrap_or("");
    match (status, code) {
        (409, "OFFSET_MISMATCH") => {
            let offset = err.and_then(|e| e.details).and_then(|d| json::get_u64(&d, "offset"));
            match offset {
                Some(offset) => Reply::OffsetMismatch { offset },
                None => Reply::Other(failed(502, "PROTOCOL_ERROR")),
            }
        }
        (404, "UPLOAD_NOT_FOUND") => Reply::NotFound,
        (404, _) => Reply::NotFound,
        (409, "UPLOAD_LOCKED") => Reply::Locked { retry_after },
        (422, "DIGEST_MISMATCH") => Reply::DigestMismatch,
        (422, "CHECKSUM_MISMATCH") => Reply::ChecksumMismatch,
        _ => Reply::Other(engine_outcome()),
    }
}

/// `POST /media/uploads`.
pub fn create_request(
    id: &str,
    meta: &Meta,
    mime: &str,
    size: u64,
    created_at: i64,
    sha256: Option<&str>,
) -> HttpRequest {
    let mut body = serde_json::json!({
        "id": id, "name": meta.name, "type": mime, "size": size, "tags": meta.tags, "createdAt": created_at,
    });
    if let Some(sha) = sha256 {
        body["sha256"] = sha.into();
    }
    HttpRequest {
        method: "POST",
        path: "/media/uploads".into(),
        headers: vec![("Content-Type", "application/json".into())],
        body: Body::Json(body.to_string()),
    }
}

/// The media type of an append's body.
pub const APPEND_TYPE: &str = "application/offset+octet-stream";

/// `PATCH /media/uploads/:id` headers for a chunk at `offset` whose SHA-256 is `chunk_sha`
/// (raw 32 bytes); the final chunk carries the whole file's hex digest.
pub fn append_request(id: &str, offset: u64, chunk_sha: &[u8], whole_sha: Option<&str>) -> HttpRequest {
    use base64::Engine as _;
    let mut headers = vec![
        ("Upload-Offset", offset.to_string()),
        ("Content-Digest", format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD.encode(chunk_sha))),
    ];
    if let Some(sha) = whole_sha {
        headers.push(("X-Content-SHA256", sha.to_owned()));
    }
    HttpRequest { method: "PATCH", path: format!("/media/uploads/{id}"), headers, body: Body::AssetBytes(id.into()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn limits(min: u64, cmin: u64, cmax: u64) -> SessionLimits {
        SessionLimits { min_bytes: min, chunk_min_bytes: cmin, chunk_max_bytes: cmax }
    }

    fn asset() -> RemoteAsset {
        RemoteAsset {
            id: "a".into(),
            sha256: "s".into(),
            meta: Meta { name: "n".into(), tags: vec![] },
            version: 1,
            updated_at: 1,
            updated_by: None,
        }
    }

    #[test]
    fn plan_follows_the_servers_bounds() {
        let l = limits(8 * MIB, 5 * MIB, 64 * MIB);
        assert_eq!(plan(8 * MIB - 1, Some(&l)), None, "small files keep POST");
        assert_eq!(plan(8 * MIB, Some(&l)), Some(PREFERRED_CHUNK));
        assert_eq!(plan(100 * MIB, None), None, "no extension");
        assert_eq!(plan(100 * MIB, Some(&limits(1, 100, 200))), Some(192), "a multiple of 64 within bounds");
        assert_eq!(plan(100 * MIB, Some(&limits(1, 32 * MIB, 64 * MIB))), Some(32 * MIB));
        assert_eq!(plan(100 * MIB, Some(&limits(1, 65, 100))), None, "no multiple of 64 fits");
        assert_eq!(plan(0, Some(&limits(0, 64, 128))), None, "an empty file goes in one POST");
    }

    /// Runs the machine against a perfect server; returns the actions it took.
    fn run_clean(size: u64, chunk: u64, server_has: u64, progress: Option<UploadProgress>) -> Vec<Action> {
        let mut m = ChunkedUpload::new(size, chunk, progress.as_ref());
        let mut held = server_has;
        let mut seen = Vec::new();
        for _ in 0..100 {
            let a = m.next_action();
            seen.push(a.clone());
            let r = match a {
                Action::Create { .. } => m.on_reply(Reply::Session { offset: held, busy: false }),
                Action::Rehash { to, .. } => {
                    m.rehashed(to);
                    None
                }
                Action::Persist { offset } => {
                    m.persisted(offset);
                    None
                }
                Action::Append { offset, len, last } => {
                    held = offset + len;
                    if last {
                        m.on_reply(Reply::Asset(asset()))
                    } else {
                        m.on_reply(Reply::Session { offset: held, busy: false })
                    }
                }
                Action::Wait { .. } => {
                    m.waited();
                    None
                }
                Action::Done(_) => return seen,
            };
            if let Some(Action::Done(o)) = r {
                seen.push(Action::Done(o));
                return seen;
            }
        }
        panic!("no end: {seen:?}")
    }

    #[test]
    fn a_fresh_upload_creates_appends_and_persists_each_confirmed_chunk() {
        let seen = run_clean(250, 64, 0, None);
        let appends: Vec<_> = seen
            .iter()
            .filter_map(
                |a| if let Action::Append { offset, len, last } = a { Some((*offset, *len, *last)) } else { None },
            )
            .collect();
        assert_eq!(appends, vec![(0, 64, false), (64, 64, false), (128, 64, false), (192, 58, true)]);
        let persists: Vec<_> =
            seen.iter().filter_map(|a| if let Action::Persist { offset } = a { Some(*offset) } else { None }).collect();
        assert_eq!(persists, vec![64, 128, 192]);
        assert!(matches!(seen.last(), Some(Action::Done(Outcome::Ok(_)))));
        assert!(!seen.iter().any(|a| matches!(a, Action::Rehash { .. })), "{seen:?}");
    }

    #[test]
    fn resuming_asks_the_server_and_hashes_only_what_it_has_beyond_the_checkpoint() {
        let p = UploadProgress { size: 256, offset: 64, checkpoint: "c".into() };
        // The server got one more chunk than we persisted (its reply was lost).
        let seen = run_clean(256, 64, 128, Some(p.clone()));
        assert_eq!(seen[0], Action::Create { with_sha: false });
        assert_eq!(seen[1], Action::Rehash { from: 64, to: 128, reset: false });
        assert_eq!(seen[2], Action::Persist { offset: 128 });
        assert_eq!(seen[3], Action::Append { offset: 128, len: 64, last: false });
        // The session expired: the server has nothing; start over, hash from zero.
        let seen = run_clean(256, 64, 0, Some(p.clone()));
        assert_eq!(seen[1], Action::Rehash { from: 0, to: 0, reset: true });
        assert_eq!(seen[2], Action::Persist { offset: 0 });
        assert_eq!(seen[3], Action::Append { offset: 0, len: 64, last: false });
        // Progress of another file (another size) is ignored.
        let other = UploadProgress { size: 999, ..p };
        assert_eq!(ChunkedUpload::new(256, 64, Some(&other)).resume_offset(), 0);
    }

    #[test]
    fn a_committed_asset_is_compared_by_the_server_once_the_file_is_hashed() {
        let mut m = ChunkedUpload::new(128, 64, None);
        assert_eq!(m.next_action(), Action::Create { with_sha: false });
        assert_eq!(m.on_reply(Reply::Asset(asset())), None);
        assert_eq!(m.next_action(), Action::Rehash { from: 0, to: 128, reset: false });
        m.rehashed(128);
        assert_eq!(m.next_action(), Action::Create { with_sha: true });
        assert!(matches!(m.on_reply(Reply::Asset(asset())), Some(Action::Done(Outcome::Ok(_)))));
        // A different file under that id: the server's 409 ends it as POST's would.
        let mut m = ChunkedUpload::new(128, 64, None);
        m.next_action();
        m.on_reply(Reply::Asset(asset()));
        m.next_action();
        m.rehashed(128);
        m.next_action();
        let conflict = Outcome::Failed { status: 409, code: "ID_CONFLICT".into(), current: None, retry_after: None };
        assert_eq!(m.on_reply(Reply::Other(conflict.clone())), Some(Action::Done(conflict)));
    }

    #[test]
    fn mismatches_and_lost_sessions_resync_a_bounded_number_of_times() {
        let mut m = ChunkedUpload::new(256, 64, None);
        m.next_action();
        m.on_reply(Reply::Session { offset: 0, busy: false });
        assert_eq!(m.next_action(), Action::Append { offset: 0, len: 64, last: false });
        // A duplicate of our own append got there first: the server is ahead.
        assert_eq!(m.on_reply(Reply::OffsetMismatch { offset: 64 }), None);
        assert_eq!(m.next_action(), Action::Rehash { from: 0, to: 64, reset: false });
        m.rehashed(64);
        assert_eq!(m.next_action(), Action::Persist { offset: 64 });
        m.persisted(64);
        assert_eq!(m.next_action(), Action::Append { offset: 64, len: 64, last: false });
        assert_eq!(m.on_reply(Reply::NotFound), None, "expired under us: create again");
        assert_eq!(m.next_action(), Action::Create { with_sha: false });
        for _ in 0..3 {
            m.on_reply(Reply::OffsetMismatch { offset: 64 });
        }
        assert_eq!(m.on_reply(Reply::OffsetMismatch { offset: 64 }), Some(Action::Done(Outcome::Network)));
    }

    #[test]
    fn damaged_chunks_retry_once_and_a_whole_file_mismatch_restarts_once() {
        let mut m = ChunkedUpload::new(128, 64, None);
        m.next_action();
        m.on_reply(Reply::Session { offset: 0, busy: false });
        m.next_action();
        assert_eq!(m.on_reply(Reply::DigestMismatch), None);
        assert_eq!(m.next_action(), Action::Append { offset: 0, len: 64, last: false });
        assert_eq!(m.on_reply(Reply::DigestMismatch), Some(Action::Done(failed(422, "DIGEST_MISMATCH"))));

        let mut m =
            ChunkedUpload::new(128, 64, Some(&UploadProgress { size: 128, offset: 64, checkpoint: "c".into() }));
        m.next_action();
        m.on_reply(Reply::Session { offset: 64, busy: false });
        assert_eq!(m.next_action(), Action::Append { offset: 64, len: 64, last: true });
        assert_eq!(m.on_reply(Reply::ChecksumMismatch), None);
        assert_eq!(m.next_action(), Action::Create { with_sha: false });
        m.on_reply(Reply::Session { offset: 0, busy: false });
        assert_eq!(m.next_action(), Action::Rehash { from: 0, to: 0, reset: true }, "the hash starts over");
        m.rehashed(0);
        assert_eq!(m.next_action(), Action::Persist { offset: 0 });
        m.persisted(0);
        m.next_action();
        m.on_reply(Reply::Session { offset: 64, busy: false });
        m.next_action();
        m.persisted(64);
        assert_eq!(m.next_action(), Action::Append { offset: 64, len: 64, last: true });
        assert_eq!(m.on_reply(Reply::ChecksumMismatch), Some(Action::Done(failed(422, "CHECKSUM_MISMATCH"))));
    }

    #[test]
    fn a_session_another_append_holds_is_waited_for_not_sent_to() {
        let mut m = ChunkedUpload::new(128, 64, None);
        m.next_action();
        assert_eq!(m.on_reply(Reply::Session { offset: 0, busy: true }), Some(Action::Wait { ms: 200 }));
        m.waited();
        assert_eq!(m.next_action(), Action::Create { with_sha: false });
        assert_eq!(m.on_reply(Reply::Session { offset: 0, busy: true }), Some(Action::Wait { ms: 400 }));
        m.waited();
        m.next_action();
        assert_eq!(m.on_reply(Reply::Session { offset: 0, busy: false }), None);
        assert_eq!(m.next_action(), Action::Append { offset: 0, len: 64, last: false });
        // A session that stays busy hands back to the engine's backoff.
        let mut m = ChunkedUpload::new(128, 64, None);
        let mut last = None;
        for _ in 0..=MAX_WAITS {
            m.next_action();
            last = m.on_reply(Reply::Session { offset: 0, busy: true });
            m.waited();
        }
        assert_eq!(last, Some(Action::Done(Outcome::Network)));
    }

    #[test]
    fn a_busy_session_waits_and_asks_again() {
        let mut m = ChunkedUpload::new(128, 64, None);
        m.next_action();
        m.on_reply(Reply::Session { offset: 0, busy: false });
        m.next_action();
        assert_eq!(m.on_reply(Reply::Locked { retry_after: Some(2) }), Some(Action::Wait { ms: 2000 }));
        m.waited();
        assert_eq!(m.next_action(), Action::Create { with_sha: false });
    }

    #[test]
    fn replies_decode_by_status_and_code() {
        let post = || failed(500, "X");
        assert_eq!(
            reply(201, None, br#"{"id":"a","size":9,"offset":0,"expiresAt":1}"#, post),
            Reply::Session { offset: 0, busy: false }
        );
        let busy = br#"{"id":"a","size":9,"offset":64,"expiresAt":1,"appending":true}"#;
        assert_eq!(reply(200, None, busy, post), Reply::Session { offset: 64, busy: true });
        let asset = br#"{"id":"a","name":"n","type":"t","size":1,"sha256":"s","createdAt":1,"updatedAt":2,"version":3,"tags":[],"url":"/u"}"#;
        assert!(matches!(reply(200, None, asset, post), Reply::Asset(_)));
        let mism = br#"{"error":{"code":"OFFSET_MISMATCH","message":"m","details":{"offset":64}}}"#;
        assert_eq!(reply(409, None, mism, post), Reply::OffsetMismatch { offset: 64 });
        assert_eq!(
            reply(409, None, br#"{"error":{"code":"OFFSET_MISMATCH","message":"m"}}"#, post),
            Reply::Other(failed(502, "PROTOCOL_ERROR"))
        );
        assert_eq!(reply(404, None, br#"{"error":{"code":"UPLOAD_NOT_FOUND","message":"m"}}"#, post), Reply::NotFound);
        assert_eq!(
            reply(409, Some(3), br#"{"error":{"code":"UPLOAD_LOCKED","message":"m"}}"#, post),
            Reply::Locked { retry_after: Some(3) }
        );
        assert_eq!(
            reply(422, None, br#"{"error":{"code":"DIGEST_MISMATCH","message":"m"}}"#, post),
            Reply::DigestMismatch
        );
        assert_eq!(
            reply(422, None, br#"{"error":{"code":"CHECKSUM_MISMATCH","message":"m"}}"#, post),
            Reply::ChecksumMismatch
        );
        assert_eq!(
            reply(409, None, br#"{"error":{"code":"ID_CONFLICT","message":"m"}}"#, post),
            Reply::Other(failed(500, "X"))
        );
        assert_eq!(reply(200, None, b"<html>", post), Reply::Other(failed(502, "PROTOCOL_ERROR")));
        assert_eq!(reply(200, None, br#"{"offset":-1}"#, post), Reply::Other(failed(502, "PROTOCOL_ERROR")));
    }

    #[test]
    fn requests_carry_the_contract_headers() {
        let r = append_request("a", 64, &[0u8; 32], Some("ff"));
        assert_eq!(r.method, "PATCH");
        assert_eq!(r.path, "/media/uploads/a");
        assert!(r.headers.contains(&("Upload-Offset", "64".into())));
        assert!(r
            .headers
            .contains(&("Content-Digest", "sha-256=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:".into())));
        assert!(r.headers.contains(&("X-Content-SHA256", "ff".into())));
        let c = create_request("a", &Meta { name: "n".into(), tags: vec!["t".into()] }, "video/mp4", 9, 5, None);
        let Body::Json(j) = c.body else { panic!() };
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v, serde_json::json!({"id":"a","name":"n","type":"video/mp4","size":9,"tags":["t"],"createdAt":5}));
    }
}
