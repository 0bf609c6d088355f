//! The resumable-upload extension (docs/protocol.md, "Resumable uploads"): sessions keyed by
//! the asset id, atomic chunks appended at an offset under a lease, completion by the final chunk.

mod append;
pub mod db;
pub mod rules;
pub mod store;

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use opfs_media::digest::Sha256State;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::body::drain;
use crate::error::ApiError;
use crate::library::Library;
use crate::request::{has_type, mime_type, parse_id, valid_name, valid_tags, AssetId};
use crate::upload::{existing_answer, too_large, NewAsset};
use crate::{now_ms, AppState};
pub use append::append;
use db::SessionRow;
use rules::Limits;
use store::Staging;

/// The extension's configuration and storage (absent from [`AppState`] when turned off).
pub struct Resumable {
    /// Advertised chunk bounds.
    pub limits: Limits,
    /// A session expires this long after its creation or last append.
    pub lifetime: Duration,
    /// Open sessions per user.
    pub max_sessions: u32,
    /// How long an append's lease lasts without renewal (a crashed instance's lease frees
    /// after this); a live append renews it every third of it.
    pub lease: Duration,
    /// Where session bytes wait.
    pub staging: Staging,
}

/// The S3 multipart limits: parts (but the last) of at least 5 MiB, at most 10,000 parts.
pub const S3_MIN_PART: u64 = 5 * 1024 * 1024;
const S3_MAX_PARTS: u64 = 10_000;

impl Resumable {
    /// Checks a configuration against the protocol's rules and the storage's.
    pub fn new(
        limits: Limits,
        lifetime: Duration,
        max_sessions: u32,
        lease: Duration,
        staging: Staging,
        max_upload_bytes: u64,
    ) -> Result<Self, String> {
        if limits.chunk_min < 64 || limits.chunk_min % 64 != 0 {
            return Err(format!("--chunk-min-bytes {} must be a positive multiple of 64", limits.chunk_min));
        }
        if limits.chunk_max < limits.chunk_min {
            return Err(format!(
                "--chunk-max-bytes {} is below --chunk-min-bytes {}",
                limits.chunk_max, limits.chunk_min
            ));
        }
        if staging.is_s3() && limits.chunk_min < S3_MIN_PART {
            return Err(format!(
                "--chunk-min-bytes {} is below 5 MiB ({S3_MIN_PART}): with S3 each chunk is a multipart part",
                limits.chunk_min
            ));
        }
        if staging.is_s3() && max_upload_bytes.div_ceil(limits.chunk_min) > S3_MAX_PARTS {
            return Err(format!(
                "with S3 an upload has at most {S3_MAX_PARTS} parts: raise --chunk-min-bytes to at least {}",
                max_upload_bytes.div_ceil(S3_MAX_PARTS).next_multiple_of(64)
            ));
        }
        if lifetime.as_secs() == 0 || max_sessions == 0 || lease.as_secs() == 0 {
            return Err(
                "--upload-session-lifetime-secs, --max-upload-sessions and --upload-lease-secs must be at least 1"
                    .into(),
            );
        }
        Ok(Self { limits, lifetime, max_sessions, lease, staging })
    }

    /// The capabilities field `resumableUploads`.
    pub fn capabilities(&self) -> Value {
        json!({
            "minBytes": self.limits.min_bytes, "chunkMinBytes": self.limits.chunk_min,
            "chunkMaxBytes": self.limits.chunk_max, "sessionLifetimeMs": self.lifetime.as_millis() as u64,
            "maxSessions": self.max_sessions,
        })
    }

    fn expiry(&self, now: i64) -> i64 {
        now + self.lifetime.as_millis() as i64
    }
}

/// `404 UPLOAD_NOT_FOUND`: no open session for (user, id).
pub fn not_found() -> ApiError {
    ApiError::upload_not_found()
}

fn ext(s: &AppState) -> Result<&Resumable, ApiError> {
    // The routes exist only with the extension on; this is a guard, not a branch.
    s.resumable.as_deref().ok_or_else(not_found)
}

/// An Upload response: the session JSON, `Upload-Offset`, `Cache-Control: no-store`.
/// `appending` says another append holds the session (an unexpired lease): a client that
/// sent a chunk now would have its body drained and get `409 UPLOAD_LOCKED`, so it waits.
fn upload_response(status: StatusCode, s: &SessionRow) -> Response {
    let mut res = (status, Json(upload_json(s))).into_response();
    res.headers_mut().insert("upload-offset", HeaderValue::from(s.offset));
    res
}

/// The Upload resource; `appending` is always sent.
fn upload_json(s: &SessionRow) -> Value {
    let appending = s.lease_until.is_some_and(|until| until > now_ms());
    json!({ "id": s.id, "size": s.size, "offset": s.offset, "expiresAt": s.expires_at, "appending": appending })
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Every session answer, errors included, is `no-store`.
fn answer(r: Result<Response, ApiError>) -> Response {
    no_store(r.unwrap_or_else(IntoResponse::into_response))
}

/// The body of `POST <prefix>/media/uploads`: every field read as JSON first, so a wrong
/// type gets the field's own error code; unknown or repeated keys are `INVALID_JSON`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    id: Option<Value>,
    name: Option<Value>,
    #[serde(rename = "type")]
    mime: Option<Value>,
    size: Option<Value>,
    tags: Option<Value>,
    #[serde(rename = "createdAt")]
    created_at: Option<Value>,
    sha256: Option<Value>,
}

struct Create {
    asset: NewAsset,
    size: u64,
    sha256: Option<String>,
}

fn validate(b: CreateBody, max_upload_bytes: u64) -> Result<Create, ApiError> {
    let id = match &b.id {
        Some(Value::String(id)) => parse_id(id)?,
        _ => return Err(ApiError::bad_request("INVALID_ID", "`id` (the asset's UUID) is required")),
    };
    let name = match b.name {
        Some(Value::String(n)) => n,
        _ => return Err(ApiError::bad_request("INVALID_NAME", "`name` (a string) is required")),
    };
    valid_name(&name)?;
    let mime = match &b.mime {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => mime_type(t)?,
        Some(_) => return Err(ApiError::bad_request("INVALID_TYPE", "`type` must be a MIME type string")),
    }
    .unwrap_or_else(|| "application/octet-stream".into());
    let sha256 = match &b.sha256 {
        None | Some(Value::Null) => None,
        Some(Value::String(h)) if h.len() == 64 && h.bytes().all(|c| c.is_ascii_hexdigit()) => {
            Some(h.to_ascii_lowercase())
        }
        Some(_) => {
            return Err(ApiError::bad_request("MISSING_CHECKSUM", "`sha256` must be 64 hex digits when present"))
        }
    };
    let tags: Vec<String> = match b.tags {
        None | Some(Value::Null) => vec![],
        Some(t) => serde_json::from_value(t)
            .map_err(|_| ApiError::bad_request("INVALID_TAGS", "`tags` must be an array of strings"))?,
    };
    valid_tags(&tags)?;
    let created_at = match &b.created_at {
        None | Some(Value::Null) => now_ms(),
        Some(v) => v.as_i64().filter(|n| (0..=crate::request::MAX_SAFE_INT).contains(n)).ok_or_else(|| {
            ApiError::bad_request("BAD_REQUEST", "`createdAt` must be ms since the Unix epoch, 0 to 2^53-1")
        })?,
    };
    let size = b
        .size
        .as_ref()
        .and_then(Value::as_u64)
        .filter(|n| *n >= 1 && *n <= crate::request::MAX_SAFE_INT as u64)
        .ok_or_else(|| ApiError::bad_request("BAD_REQUEST", "`size` must be an integer of at least 1"))?;
    if size > max_upload_bytes {
        return Err(too_large(max_upload_bytes));
    }
    Ok(Create { asset: NewAsset { id, name, mime, tags, created_at }, size, sha256 })
}

/// `POST <prefix>/media/uploads`: creates a session, or finds the one (or the asset) this id
/// already names.
pub async fn create(State(s): State<AppState>, lib: Library, headers: HeaderMap, body: Body) -> Response {
    answer(create_inner(&s, &lib, &headers, body).await)
}

async fn create_inner(s: &AppState, lib: &Library, headers: &HeaderMap, body: Body) -> Result<Response, ApiError> {
    let r = ext(s)?;
    if !has_type(headers, "application/json") {
        drain(body).await;
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the session's metadata as application/json",
        ));
    }
    let raw = crate::body::read_json_body(s, body).await?;
    let parsed: CreateBody = serde_json::from_slice(&raw).map_err(|_| {
        ApiError::bad_request(
            "INVALID_JSON",
            "the body must be a JSON object with only id, name, type, size, tags, createdAt and sha256, each key once",
        )
    })?;
    let c = validate(parsed, s.max_upload_bytes)?;
    // 1. The id names an asset already: answer as a POST of it would.
    if let Some(existing) = s.db.get(&lib.key, &c.asset.id).await? {
        let claimed = c.sha256.as_deref().unwrap_or(&existing.sha256).to_owned();
        return existing_answer(&lib.root, &existing, &claimed);
    }
    let now = now_ms();
    // 2. A session for it is open: a retried create.
    match s.db.session(&lib.key, &c.asset.id).await? {
        Some(open) if open.open_at(now) && open.created_by.as_deref() != lib.by() => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "ID_CONFLICT",
                "another member's upload session holds this id; use a new id",
            ))
        }
        Some(open) if open.open_at(now) => return same_session(open, c.size),
        Some(expired) => end_session(s, r, &expired).await,
        None => {}
    }
    // 3. The per-user limit.
    let (open, first_expiry) = s.db.open_sessions(&lib.key, now).await?;
    if open >= i64::from(r.max_sessions) {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_UPLOADS",
            format!("at most {} open upload sessions per user; finish or cancel one", r.max_sessions),
        )
        .with_details(json!({ "maxSessions": r.max_sessions }));
        e.retry_after = Some(first_expiry.map_or(1, |t| ((t - now).max(0) as u64).div_ceil(1000).max(1)));
        return Err(e);
    }
    // 4. A new session.
    let nonce = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let path = crate::storage::asset_path(&lib.key, &c.asset.id, &nonce, &c.asset.name).to_string();
    let handle = r.staging.begin(&lib.key, &c.asset.id, &nonce, &path).await?;
    let row = SessionRow {
        user_id: lib.key.clone(),
        id: c.asset.id,
        name: c.asset.name,
        mime_type: c.asset.mime,
        size: c.size as i64,
        tags: c.asset.tags,
        created_at: c.asset.created_at,
        offset: 0,
        hash_state: Sha256State::new().checkpoint().unwrap_or_default(),
        path,
        handle,
        parts: vec![],
        lease_token: None,
        lease_until: None,
        expires_at: r.expiry(now),
        created_by: lib.by.clone(),
    };
    let inserted = s.db.insert_session(&row).await;
    if !matches!(inserted, Ok(true)) {
        let _ = r.staging.discard(&row.path, &row.handle).await;
        inserted?;
        // A concurrent create of the same id won: this is its retry.
        return match s.db.open_session(&lib.key, &row.id, now_ms()).await? {
            Some(open) if open.created_by == row.created_by => same_session(open, row.size as u64),
            Some(_) => Err(ApiError::new(
                StatusCode::CONFLICT,
                "ID_CONFLICT",
                "another member's upload session holds this id; use a new id",
            )),
            None => Err(ApiError::internal("a concurrent session vanished during create")),
        };
    }
    let mut res = upload_response(StatusCode::CREATED, &row);
    let location = format!("{}/media/uploads/{}", lib.root, row.id);
    res.headers_mut().insert(header::LOCATION, HeaderValue::from_str(&location).map_err(ApiError::internal)?);
    Ok(res)
}

/// An open session, if the requester may see it: in a space, only the member who opened it
/// does (to the others it is `404 UPLOAD_NOT_FOUND`, as if it did not exist).
pub(crate) fn own(row: Option<SessionRow>, lib: &Library) -> Result<SessionRow, ApiError> {
    row.filter(|r| r.created_by.as_deref() == lib.by()).ok_or_else(not_found)
}

fn same_session(open: SessionRow, size: u64) -> Result<Response, ApiError> {
    if open.size as u64 == size {
        return Ok(upload_response(StatusCode::OK, &open));
    }
    // The details are the Upload, so the answer carries its `Upload-Offset` too.
    let mut res = ApiError::new(
        StatusCode::CONFLICT,
        "ID_CONFLICT",
        "an upload session with this id and another size is open; cancel it or use a new id",
    )
    .with_details(upload_json(&open))
    .into_response();
    res.headers_mut().insert("upload-offset", HeaderValue::from(open.offset));
    Ok(res)
}

/// Removes a session's bytes, then its row (a failure leaves it for the sweep to retry).
async fn end_session(s: &AppState, r: &Resumable, row: &SessionRow) {
    match r.staging.discard(&row.path, &row.handle).await {
        Ok(()) => {
            let _ = s.db.delete_session(row, None).await;
        }
        Err(e) => tracing::warn!(error = %e, "could not remove an upload session's bytes"),
    }
}

/// `GET <prefix>/media/uploads/:id`: the session's offset.
pub async fn offset(State(s): State<AppState>, lib: Library, AssetId(id): AssetId) -> Response {
    answer(
        async {
            ext(&s)?;
            let row = own(s.db.open_session(&lib.key, &id, now_ms()).await?, &lib)?;
            Ok(upload_response(StatusCode::OK, &row))
        }
        .await,
    )
}

/// `DELETE <prefix>/media/uploads/:id`: cancels the session and removes its bytes.
pub async fn cancel(State(s): State<AppState>, lib: Library, AssetId(id): AssetId) -> Response {
    answer(
        async {
            let r = ext(&s)?;
            let row = own(s.db.open_session(&lib.key, &id, now_ms()).await?, &lib)?;
            if !s.db.delete_session(&row, None).await? {
                return Err(not_found());
            }
            if let Err(e) = r.staging.discard(&row.path, &row.handle).await {
                // The row is gone: the bytes are an orphan now (local: the sweep's; S3: the
                // bucket's AbortIncompleteMultipartUpload rule).
                tracing::warn!(error = %e, "cancelled session's bytes not removed");
            }
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

/// Removes expired sessions no append holds (bytes first: a failure leaves the row, so the
/// next sweep retries), and local staging files no session names that are older than
/// `grace`. Returns how many it removed.
pub async fn sweep(db: &crate::db::Db, r: &Resumable, grace: Duration) -> Result<usize, String> {
    let mut removed = 0;
    loop {
        let expired = db.expired_sessions(now_ms(), 100).await.map_err(|e| e.to_string())?;
        let n = expired.len();
        for row in &expired {
            r.staging.discard(&row.path, &row.handle).await?;
            db.delete_session(row, None).await.map_err(|e| e.to_string())?;
            removed += 1;
        }
        if n < 100 {
            break;
        }
    }
    if let Staging::Local { root } = &r.staging {
        let dir = root.join(store::UPLOADS_DIR);
        let mut users = match tokio::fs::read_dir(&dir).await {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
            Err(e) => return Err(e.to_string()),
        };
        while let Some(user) = users.next_entry().await.map_err(|e| e.to_string())? {
            let Ok(mut files) = tokio::fs::read_dir(user.path()).await else { continue };
            while let Some(f) = files.next_entry().await.map_err(|e| e.to_string())? {
                let age = f.metadata().await.ok().and_then(|m| m.modified().ok()).and_then(|m| m.elapsed().ok());
                let handle = format!(
                    "{}/{}/{}",
                    store::UPLOADS_DIR,
                    user.file_name().to_string_lossy(),
                    f.file_name().to_string_lossy()
                );
                if age.unwrap_or_default() >= grace && !db.handle_in_use(&handle).await.map_err(|e| e.to_string())? {
                    tokio::fs::remove_file(f.path()).await.map_err(|e| e.to_string())?;
                    removed += 1;
                }
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Result<Create, ApiError> {
        validate(serde_json::from_value(v).map_err(|_| ApiError::bad_request("INVALID_JSON", ""))?, 1000)
    }

    fn code(v: Value) -> &'static str {
        body(v).err().map_or("OK", |e| e.code)
    }

    #[test]
    fn create_bodies_are_checked_field_by_field_in_order() {
        let id = "0190f0c2-7a0e-7cc0-8000-000000000001";
        let c = body(json!({ "id": id, "name": "a.bin", "size": 10, "type": " Video/MP4 " })).unwrap();
        assert_eq!((c.size, c.asset.mime.as_str(), c.sha256), (10, "video/mp4", None));
        assert_eq!(code(json!({ "name": 5, "size": 0 })), "INVALID_ID", "the id first");
        assert_eq!(code(json!({ "id": id, "name": "../x", "size": 0 })), "INVALID_NAME");
        assert_eq!(code(json!({ "id": id, "name": "a", "type": "png", "size": 0 })), "INVALID_TYPE");
        assert_eq!(code(json!({ "id": id, "name": "a", "sha256": "xyz", "size": 0 })), "MISSING_CHECKSUM");
        assert_eq!(code(json!({ "id": id, "name": "a", "tags": [1], "size": 0 })), "INVALID_TAGS");
        assert_eq!(code(json!({ "id": id, "name": "a", "createdAt": -1, "size": 0 })), "BAD_REQUEST");
        for size in [json!(0), json!(-1), json!(1.5), json!("5"), json!(null)] {
            assert_eq!(code(json!({ "id": id, "name": "a", "size": size })), "BAD_REQUEST", "{size}");
        }
        assert_eq!(code(json!({ "id": id, "name": "a", "size": 1001 })), "PAYLOAD_TOO_LARGE");
        assert_eq!(code(json!({ "id": id, "name": "a", "size": 1000 })), "OK");
        assert_eq!(code(json!({ "id": id, "name": "a", "size": 1, "colour": 1 })), "INVALID_JSON");
        let sha = "AB".repeat(32);
        assert_eq!(
            body(json!({ "id": id, "name": "a", "size": 1, "sha256": sha })).unwrap().sha256,
            Some("ab".repeat(32))
        );
    }
}
