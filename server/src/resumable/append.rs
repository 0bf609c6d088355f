//! The append of the resumable-upload extension (`PATCH <prefix>/media/uploads/:id`): headers,
//! offset and length checks in the documented order, the lease, and the chunk stored whole or not at all.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use opfs_media::digest::Sha256State;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::AsyncSeekExt;

use super::db::SessionRow;
use super::rules::{self, Chunk, ChunkError};
use super::store::Staging;
use super::{answer, ext, not_found, upload_response, Resumable};
use crate::body::{body_timeout, drain};
use crate::error::ApiError;
use crate::library::Library;
use crate::localfile::BatchedAppend;
use crate::request::{has_type, header as strict_header, safe_uint, AssetId};
use crate::upload::NewAsset;
use crate::{now_ms, AppState};

fn offset_mismatch(current: i64) -> Response {
    let mut res = ApiError::new(
        StatusCode::CONFLICT,
        "OFFSET_MISMATCH",
        format!("the session is at offset {current}; send the chunk that starts there"),
    )
    .with_details(json!({ "offset": current }))
    .into_response();
    res.headers_mut().insert("upload-offset", HeaderValue::from(current));
    res
}

/// How long an append waits for another append's hold on the session to end before it
/// answers `409 UPLOAD_LOCKED`, and how often it looks.
const LEASE_WAIT: Duration = Duration::from_secs(2);
const LEASE_POLL: Duration = Duration::from_millis(25);

fn locked() -> ApiError {
    let mut e = ApiError::new(
        StatusCode::CONFLICT,
        "UPLOAD_LOCKED",
        "another append to this session is in progress; retry after Retry-After, then ask the offset",
    );
    e.retry_after = Some(1);
    e
}

/// What an append's headers say, checked.
struct AppendHead {
    offset: u64,
    len: u64,
    digest: [u8; 32],
    /// The whole file's SHA-256 (final chunk only).
    whole: Option<String>,
    kind: Chunk,
}

/// Step 2: the headers' syntax. The chunk's place in the file is judged only after the
/// offset check ([`chunk_rules`]), so a stale `Upload-Offset` is always `409 OFFSET_MISMATCH`.
fn append_head(h: &HeaderMap) -> Result<AppendHead, ApiError> {
    let offset = strict_header(h, "upload-offset", "BAD_REQUEST")?
        .and_then(safe_uint)
        .ok_or_else(|| ApiError::bad_request("BAD_REQUEST", "Upload-Offset (a canonical decimal) is required"))?
        as u64;
    if !has_type(h, "application/offset+octet-stream") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send a chunk as Content-Type: application/offset+octet-stream",
        ));
    }
    let len = strict_header(h, "content-length", "BAD_REQUEST")?
        .map(|v| safe_uint(v).ok_or_else(|| ApiError::bad_request("BAD_REQUEST", "bad Content-Length")))
        .transpose()?
        .ok_or_else(|| {
            ApiError::new(StatusCode::LENGTH_REQUIRED, "LENGTH_REQUIRED", "a chunk needs a Content-Length")
        })? as u64;
    let digest = strict_header(h, "content-digest", "MISSING_CHECKSUM")?
        .and_then(rules::content_digest_sha256)
        .ok_or_else(|| {
            ApiError::bad_request(
                "MISSING_CHECKSUM",
                "Content-Digest: sha-256=:<base64 SHA-256 of the chunk>: is required",
            )
        })?;
    Ok(AppendHead { offset, len, digest, whole: None, kind: Chunk::Middle })
}

/// Steps 4 and 5, at the session's own offset: the length rules, then the final chunk's
/// `X-Content-SHA256`.
fn chunk_rules(h: &HeaderMap, r: &Resumable, size: u64, head: AppendHead) -> Result<AppendHead, ApiError> {
    let AppendHead { offset, len, digest, .. } = head;
    let kind = r.limits.chunk(size, offset, len).map_err(|e| match e {
        ChunkError::TooLarge { max } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", e.to_string())
                .with_details(json!({ "chunkMaxBytes": max }))
        }
        other => ApiError::bad_request("INVALID_CHUNK", other.to_string()),
    })?;
    let whole = match kind == Chunk::Final {
        false => None,
        true => Some(
            strict_header(h, "x-content-sha256", "MISSING_CHECKSUM")?
                .filter(|x| x.len() == 64 && x.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(str::to_ascii_lowercase)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "MISSING_CHECKSUM",
                        "the final chunk needs X-Content-SHA256 (64 hex digits of the whole file's SHA-256)",
                    )
                })?,
        ),
    };
    Ok(AppendHead { offset, len, digest, whole, kind })
}

/// An append's hold on its session: renewed in the background every third of the lease; on
/// drop (any early return, a dropped connection) the renewal stops and the lease is given back.
struct Lease {
    db: crate::db::Db,
    user: String,
    id: String,
    token: String,
    lost: Arc<AtomicBool>,
    renewal: tokio::task::JoinHandle<()>,
    done: bool,
}

impl Lease {
    fn start(s: &AppState, r: &Resumable, user: &str, id: &str, token: String) -> Self {
        let lost = Arc::new(AtomicBool::new(false));
        let (db, u, i, t, flag, lease) =
            (s.db.clone(), user.to_owned(), id.to_owned(), token.clone(), lost.clone(), r.lease);
        let renewal = tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                let until = now_ms() + lease.as_millis() as i64;
                if !matches!(db.renew_lease(&u, &i, &t, until).await, Ok(true)) {
                    flag.store(true, Ordering::SeqCst);
                    return;
                }
            }
        });
        Self { db: s.db.clone(), user: user.into(), id: id.into(), token, lost, renewal, done: false }
    }

    /// Whether the lease still holds (checked before each write).
    fn held(&self) -> Result<(), ApiError> {
        match self.lost.load(Ordering::SeqCst) {
            true => Err(locked()),
            false => Ok(()),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
        if !self.done {
            let (db, u, i, t) = (self.db.clone(), self.user.clone(), self.id.clone(), self.token.clone());
            tokio::spawn(async move {
                let _ = db.release_lease(&u, &i, &t).await;
            });
        }
    }
}

/// `PATCH <prefix>/media/uploads/:id`: appends one chunk at the session's offset; the final
/// chunk completes the upload.
pub async fn append(
    State(s): State<AppState>,
    lib: Library,
    AssetId(id): AssetId,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let start = async {
        let r = ext(&s)?;
        let row = super::own(s.db.open_session(&lib.key, &id, now_ms()).await?, &lib)?;
        let head = append_head(&headers)?;
        if head.offset != row.offset as u64 {
            return Ok(Err(offset_mismatch(row.offset)));
        }
        let head = chunk_rules(&headers, r, row.size as u64, head)?;
        let token = uuid::Uuid::new_v4().simple().to_string();
        let waiting_since = std::time::Instant::now();
        loop {
            let now = now_ms();
            if s.db.take_lease(&lib.key, &id, row.offset, &token, now + r.lease.as_millis() as i64, now).await? {
                break;
            }
            match s.db.open_session(&lib.key, &id, now_ms()).await? {
                None => return Err(not_found()),
                Some(cur) if cur.offset != row.offset => return Ok(Err(offset_mismatch(cur.offset))),
                // The holder is most often an append whose connection just broke and whose
                // handler has not given the session back yet, while the client (or its
                // browser, which retries a reset request by itself) sends the same chunk
                // again: waiting a moment, before reading the body, saves that chunk.
                Some(_) if waiting_since.elapsed() < LEASE_WAIT => tokio::time::sleep(LEASE_POLL).await,
                Some(_) => return Err(locked()),
            }
        }
        let lease = Lease::start(&s, r, &lib.key, &id, token);
        Ok(Ok((r, row, head, lease)))
    };
    // Early answers drain the body first, as POST's do, so the client can read them.
    let res = match start.await {
        Ok(Ok((r, row, head, lease))) => {
            let handle = row.handle.clone();
            match append_chunk(&s, &lib, r, row, head, lease, body).await {
                // Cancelled meanwhile (a DELETE does not wait for a running append): the
                // session is gone, so this append answers as any append to it would.
                Err(e) if e.code != "UPLOAD_NOT_FOUND" && e.status != StatusCode::UNPROCESSABLE_ENTITY => {
                    match s.db.session(&lib.key, &id).await {
                        Ok(Some(cur)) if cur.handle == handle => Err(e),
                        Ok(_) => Err(not_found()),
                        Err(db) => Err(db.into()),
                    }
                }
                other => other,
            }
        }
        Ok(Err(mismatch)) => {
            drain(body).await;
            Ok(mismatch)
        }
        Err(e) => {
            drain(body).await;
            Err(e)
        }
    };
    answer(res)
}

/// Where an append's bytes go while it streams: the staging file at the offset (written in
/// batches, as a `POST` is), or memory (one chunk, at most `chunkMaxBytes`) until it becomes
/// an S3 part.
enum Sink {
    File(BatchedAppend),
    Memory(Vec<Bytes>),
}

async fn append_chunk(
    s: &AppState,
    lib: &Library,
    r: &Resumable,
    row: SessionRow,
    head: AppendHead,
    mut lease: Lease,
    body: Body,
) -> Result<Response, ApiError> {
    let mut whole = Sha256State::restore(&row.hash_state)
        .filter(|h| h.len() == row.offset as u64)
        .ok_or_else(|| ApiError::internal(format!("session {} has a bad hash checkpoint", row.id)))?;
    let mut sink = match &r.staging {
        Staging::S3 { .. } => Sink::Memory(Vec::new()),
        Staging::Local { root } => match open_at(&Staging::local_file(root, &row.handle), head.offset).await? {
            Some(f) => Sink::File(BatchedAppend::new(f, head.offset)),
            None => {
                // The staging file lost bytes the session confirmed: it cannot complete.
                lease.done = s.db.delete_session(&row, Some(&lease.token)).await?;
                let _ = r.staging.discard(&row.path, &row.handle).await;
                tracing::error!(id = %row.id, "staging file shorter than the session's offset; session removed");
                return Err(not_found());
            }
        },
    };
    let mut chunk_hash = Sha256::new();
    let mut got: u64 = 0;
    let mut stream = body.into_data_stream();
    let streamed: Result<(), ApiError> = async {
        loop {
            let data = match tokio::time::timeout(s.body_idle_timeout, stream.next()).await {
                Err(_) => return Err(body_timeout(s.body_idle_timeout)),
                Ok(None) => break,
                Ok(Some(Err(_))) => {
                    return Err(ApiError::bad_request(
                        "BAD_REQUEST",
                        "the chunk's body broke off; nothing was appended",
                    ))
                }
                Ok(Some(Ok(d))) => d,
            };
            got += data.len() as u64;
            if got > head.len {
                return Err(ApiError::bad_request("BAD_REQUEST", "the body is longer than its Content-Length"));
            }
            chunk_hash.update(&data);
            whole.update(&data);
            lease.held()?;
            match &mut sink {
                Sink::File(f) => f.put(data).await.map_err(ApiError::internal)?,
                Sink::Memory(parts) => parts.push(data),
            }
        }
        if got != head.len {
            return Err(ApiError::bad_request("BAD_REQUEST", "the body is shorter than its Content-Length"));
        }
        Ok(())
    }
    .await;
    let actual: [u8; 32] = chunk_hash.finalize().into();
    let refused = match streamed {
        Err(e) => Some(e),
        Ok(()) if actual != head.digest => Some(
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "DIGEST_MISMATCH",
                "the chunk's SHA-256 differs from its Content-Digest; nothing was appended, send it again",
            )
            .with_details(json!({
                "expected": rules::content_digest_value(&head.digest),
                "actual": rules::content_digest_value(&actual),
            })),
        ),
        Ok(()) => None,
    };
    if let Some(e) = refused {
        if let Sink::File(f) = sink {
            // Back to the confirmed offset: the chunk is appended whole or not at all.
            if let Ok((f, _)) = f.into_parts().await {
                let _ = tokio::task::spawn_blocking(move || f.set_len(head.offset)).await;
            }
        }
        return Err(e);
    }
    lease.held()?;
    // A cancel may have removed the session while the body streamed: never store for it.
    if !s.db.renew_lease(&row.user_id, &row.id, &lease.token, now_ms() + r.lease.as_millis() as i64).await? {
        return Err(locked());
    }
    let mut parts = row.parts.clone();
    let data = match sink {
        Sink::File(f) => {
            f.finish().await.map_err(ApiError::internal)?;
            None
        }
        Sink::Memory(d) => Some(d),
    };
    match head.kind {
        Chunk::Middle => {
            if let Some(d) = data {
                parts.push(r.staging.put_part(&row.path, &row.handle, row.parts.len(), d).await?);
            }
            let checkpoint = whole.checkpoint().ok_or_else(|| ApiError::internal("chunk off a block boundary"))?;
            let new_offset = (head.offset + head.len) as i64;
            let expires_at = r.expiry(now_ms());
            if !s.db.advance(&row.user_id, &row.id, &lease.token, new_offset, &checkpoint, &parts, expires_at).await? {
                return Err(match s.db.open_session(&row.user_id, &row.id, now_ms()).await? {
                    None => not_found(),
                    Some(_) => locked(),
                });
            }
            lease.done = true;
            Ok(upload_response(
                StatusCode::OK,
                &SessionRow { offset: new_offset, parts, expires_at, lease_until: None, ..row },
            ))
        }
        Chunk::Final => {
            let claimed = head.whole.unwrap_or_default();
            let actual = whole.finish_hex();
            if actual != claimed {
                lease.done = s.db.delete_session(&row, Some(&lease.token)).await?;
                if let Err(e) = r.staging.discard(&row.path, &row.handle).await {
                    tracing::warn!(error = %e, "a failed session's bytes were not removed");
                }
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "CHECKSUM_MISMATCH",
                    "the file's SHA-256 differs from X-Content-SHA256; the session and its bytes were removed",
                )
                .with_details(json!({ "expected": claimed, "actual": actual })));
            }
            if let Some(d) = data {
                parts.push(r.staging.put_part(&row.path, &row.handle, row.parts.len(), d).await?);
            }
            r.staging.complete(&row.path, &row.handle, &parts).await?;
            let asset = NewAsset {
                id: row.id.clone(),
                name: row.name.clone(),
                mime: row.mime_type.clone(),
                tags: row.tags.clone(),
                created_at: row.created_at,
            };
            let path = Path::from(row.path.as_str());
            let res = crate::upload::commit(s, lib, asset, &path, row.size as u64, actual, Some(&lease.token)).await;
            // Unless the database failed (the session stays, to be retried), it is over.
            if !matches!(&res, Err(e) if e.status == StatusCode::INTERNAL_SERVER_ERROR) {
                lease.done = true;
                if let Staging::Local { .. } = r.staging {
                    let _ = r.staging.discard(&row.path, &row.handle).await;
                }
            }
            res
        }
    }
}

/// The staging file opened for writing at `offset`, cut back to it (a crashed append may
/// have left a partial chunk past it); `None` if it holds fewer than `offset` bytes.
async fn open_at(file: &std::path::Path, offset: u64) -> Result<Option<std::fs::File>, ApiError> {
    let mut f = match tokio::fs::OpenOptions::new().write(true).open(file).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ApiError::internal(e)),
    };
    let len = f.metadata().await.map_err(ApiError::internal)?.len();
    if len < offset {
        return Ok(None);
    }
    f.set_len(offset).await.map_err(ApiError::internal)?;
    f.seek(std::io::SeekFrom::Start(offset)).await.map_err(ApiError::internal)?;
    Ok(Some(f.into_std().await))
}
