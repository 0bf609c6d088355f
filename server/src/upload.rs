//! `POST <prefix>/media/assets`: headers checked strictly, the (user, id) looked up before the
//! body is read, the body streamed to storage with a per-chunk idle timeout. An answer given
//! before the body is read drains it first (within a bound), so browsers see the answer.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures::StreamExt;
use object_store::{path::Path, WriteMultipart};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::body::{body_timeout, drain, drain_stream};
use crate::db::{AssetRow, Insert};
use crate::error::ApiError;
use crate::library::Library;
use crate::localfile::LocalWrite;
use crate::reply::{asset_json, with_etag};
use crate::request::{content_type, header, parse_id, pct_decode, safe_uint, valid_name, valid_tags};
use crate::{now_ms, AppState};

/// The metadata headers of an upload, validated.
struct UploadMeta {
    id: String,
    name: String,
    mime: String,
    claimed: String,
    tags: Vec<String>,
    created_at: i64,
    declared_len: Option<u64>,
}

fn meta(h: &HeaderMap) -> Result<UploadMeta, ApiError> {
    let id = parse_id(
        header(h, "x-asset-id", "INVALID_ID")?
            .ok_or_else(|| ApiError::bad_request("INVALID_ID", "X-Asset-Id is required"))?,
    )?;
    let name = header(h, "x-asset-name", "INVALID_NAME")?
        .ok_or_else(|| ApiError::bad_request("INVALID_NAME", "X-Asset-Name is required"))
        .and_then(|raw| {
            pct_decode(raw).ok_or_else(|| {
                ApiError::bad_request("INVALID_NAME", "X-Asset-Name must be percent-encoded UTF-8 (encodeURIComponent)")
            })
        })?;
    valid_name(&name)?;
    let mime = content_type(h)?.unwrap_or_else(|| "application/octet-stream".into());
    if mime.starts_with("multipart/") || mime.starts_with("application/x-www-form-urlencoded") {
        return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE", "send the raw bytes as the body with the asset's own Content-Type; multipart and form bodies are not accepted"));
    }
    let claimed = header(h, "x-content-sha256", "MISSING_CHECKSUM")?
        .map(str::to_ascii_lowercase)
        .filter(|x| x.len() == 64 && x.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| {
            ApiError::bad_request(
                "MISSING_CHECKSUM",
                "X-Content-SHA256 (64 hex digits of the body's SHA-256) is required",
            )
        })?;
    let bad_tags =
        || ApiError::bad_request("INVALID_TAGS", "X-Asset-Tags must be a percent-encoded JSON array of strings");
    let tags: Vec<String> = match header(h, "x-asset-tags", "INVALID_TAGS")? {
        None => vec![],
        Some(t) => serde_json::from_str(&pct_decode(t).ok_or_else(bad_tags)?).map_err(|_| bad_tags())?,
    };
    valid_tags(&tags)?;
    let created_at = match header(h, "x-asset-created-at", "BAD_REQUEST")? {
        None => now_ms(),
        Some(v) => safe_uint(v).ok_or_else(|| {
            ApiError::bad_request("BAD_REQUEST", "X-Asset-Created-At must be ms since the Unix epoch, 0 to 2^53-1")
        })?,
    };
    let declared_len = match header(h, "content-length", "BAD_REQUEST")? {
        None => None,
        Some(v) => Some(v.parse().map_err(|_| ApiError::bad_request("BAD_REQUEST", "bad Content-Length"))?),
    };
    Ok(UploadMeta { id, name, mime, claimed, tags, created_at, declared_len })
}

/// The handler.
pub async fn upload(
    State(s): State<AppState>,
    lib: Library,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let early = match meta(&headers) {
        Err(e) => Err(e),
        Ok(m) if m.declared_len.is_some_and(|n| n > s.max_upload_bytes) => Err(too_large(s.max_upload_bytes)),
        // Already here? Answer without storing anything (a retry after a lost response).
        Ok(m) => match s.db.get(&lib.key, &m.id).await? {
            Some(existing) => existing_answer(&lib.root, &existing, &m.claimed),
            None => return store(&s, lib, m, body).await,
        },
    };
    drain(body).await;
    early
}

async fn store(s: &AppState, lib: Library, m: UploadMeta, body: Body) -> Result<Response, ApiError> {
    let nonce = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let path = crate::storage::asset_path(&lib.key, &m.id, &nonce, &m.name);
    let (size, actual) = stream_to_store(s, &path, body).await?;
    if actual != m.claimed {
        let _ = s.store.delete(&path).await;
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "CHECKSUM_MISMATCH",
            "the body's SHA-256 differs from X-Content-SHA256; nothing was stored",
        )
        .with_details(json!({ "expected": m.claimed, "actual": actual })));
    }
    let new = NewAsset { id: m.id, name: m.name, mime: m.mime, tags: m.tags, created_at: m.created_at };
    commit(s, &lib, new, &path, size, actual, None).await
}

/// The metadata an asset is made of, from a POST's headers or an upload session's row.
pub(crate) struct NewAsset {
    pub id: String,
    pub name: String,
    pub mime: String,
    pub tags: Vec<String>,
    pub created_at: i64,
}

/// The commit both uploads end with (docs/protocol.md, POST step 5): the bytes, complete and
/// verified, are at `path`; the row goes in, or, when the id exists by now (a concurrent
/// upload won), the bytes go and the existing asset answers as a retry would. With `lease`,
/// the upload session held under it ends in the same transaction.
pub(crate) async fn commit(
    s: &AppState,
    lib: &Library,
    a: NewAsset,
    path: &Path,
    size: u64,
    sha256: String,
    lease: Option<&str>,
) -> Result<Response, ApiError> {
    let row = AssetRow {
        user_id: lib.key.clone(),
        id: a.id,
        name: a.name,
        mime_type: a.mime,
        size: size as i64,
        sha256,
        path: path.to_string(),
        tags: a.tags,
        created_at: a.created_at,
        updated_at: now_ms(),
        version: 1,
        seq: 0,
        deleted_at: None,
        thumb_path: None,
        thumb_failed: None,
        updated_by: lib.by.clone(),
    };
    match s.db.insert_finishing(&row, lease).await {
        Ok(Insert::Created(created)) => Ok(with_etag(&lib.root, StatusCode::CREATED, &created)),
        Ok(Insert::Exists(existing)) => {
            let _ = s.store.delete(path).await;
            existing_answer(&lib.root, &existing, &row.sha256)
        }
        Ok(Insert::SessionGone) => {
            let _ = s.store.delete(path).await;
            Err(ApiError::upload_not_found())
        }
        Err(e) => {
            let _ = s.store.delete(path).await;
            Err(e.into())
        }
    }
}

pub(crate) fn too_large(max: u64) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", format!("uploads are limited to {max} bytes"))
        .with_details(json!({ "maxUploadBytes": max }))
}

pub(crate) fn existing_answer(prefix: &str, existing: &AssetRow, claimed: &str) -> Result<Response, ApiError> {
    if existing.deleted_at.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "ASSET_DELETED",
            "this id belongs to a deleted asset; import the file again under a new id",
        ));
    }
    if existing.sha256 == claimed {
        return Ok(with_etag(prefix, StatusCode::OK, existing));
    }
    Err(ApiError::new(StatusCode::CONFLICT, "ID_CONFLICT", "an asset with this id and different content exists")
        .with_details(asset_json(prefix, existing)))
}

/// `408 BODY_TIMEOUT`: the client stopped sending the body.
/// Where a POST's bytes go: a local file written and flushed by [`LocalWrite`], or any other
/// store's multipart upload.
enum Sink {
    Local(LocalWrite),
    Store(WriteMultipart),
}

impl Sink {
    async fn put(&mut self, chunk: bytes::Bytes) -> Result<(), ApiError> {
        match self {
            Sink::Local(w) => w.put(chunk).await.map_err(ApiError::internal),
            Sink::Store(w) => {
                w.wait_for_capacity(4).await?;
                w.put(chunk);
                Ok(())
            }
        }
    }

    async fn abort(self) {
        match self {
            Sink::Local(w) => w.abort().await,
            Sink::Store(w) => {
                let _ = w.abort().await;
            }
        }
    }

    /// Every byte stored (for local files: flushed to disk under the object's name).
    async fn finish(self) -> Result<(), ApiError> {
        match self {
            Sink::Local(w) => w.finish().await.map_err(ApiError::internal),
            Sink::Store(w) => w.finish().await.map(drop).map_err(Into::into),
        }
    }
}

/// Streams the body into `path`, hashing and counting; memory stays at one part buffer (two
/// write batches for local files). A body that breaks off, stalls or grows too large aborts
/// the upload (its staging data goes).
async fn stream_to_store(s: &AppState, path: &Path, body: Body) -> Result<(u64, String), ApiError> {
    let mut sink = match &s.local_root {
        Some(root) => Sink::Local(LocalWrite::new(root, path.as_ref())),
        None => Sink::Store(WriteMultipart::new(s.store.put_multipart(path).await?)),
    };
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut stream = body.into_data_stream();
    loop {
        let failed = match tokio::time::timeout(s.body_idle_timeout, stream.next()).await {
            Err(_) => body_timeout(s.body_idle_timeout),
            Ok(None) => break,
            Ok(Some(Err(_))) => ApiError::bad_request("BAD_REQUEST", "the upload body broke off"),
            Ok(Some(Ok(chunk))) => {
                size += chunk.len() as u64;
                hasher.update(&chunk);
                if size > s.max_upload_bytes {
                    // Answered before the body ended (a chunked body, no Content-Length to
                    // refuse up front): drain the rest, or closing the connection with unread
                    // bytes resets it and the client never reads the 413 (seen in
                    // server-faults.mjs, 3 runs in 8).
                    sink.abort().await;
                    drain_stream(stream).await;
                    return Err(too_large(s.max_upload_bytes));
                } else {
                    match sink.put(chunk).await {
                        Ok(()) => continue,
                        Err(e) => e,
                    }
                }
            }
        };
        sink.abort().await;
        return Err(failed);
    }
    sink.finish().await?;
    Ok((size, hex::encode(hasher.finalize())))
}
