//! HTTP handlers for the opfs-media protocol (docs/protocol.md). Short: extractors and
//! `ApiError` carry the HTTP concerns, `Db` and the object store do the work.

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use futures::StreamExt;
use object_store::{path::Path, GetOptions, GetRange, WriteMultipart};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::auth::User;
use crate::db::{AssetRow, Insert};
use crate::error::ApiError;
use crate::{thumb, AppState, PROTOCOL, PROTOCOL_VERSION};

/// Most items in one page of a listing.
pub const MAX_PAGE: i64 = 1000;
const DEFAULT_PAGE: i64 = 100;
/// Largest metadata patch body.
const PATCH_MAX_BYTES: usize = 64 * 1024;

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Parses a canonical (lowercase, hyphenated) UUID; anything else is 400 INVALID_ID.
pub fn parse_id(id: &str) -> Result<String, ApiError> {
    let bad = || ApiError::bad_request("INVALID_ID", "asset ids are lowercase hyphenated UUIDs");
    let u = uuid::Uuid::try_parse(id).map_err(|_| bad())?;
    let canonical = u.hyphenated().to_string();
    if canonical != id {
        return Err(bad());
    }
    Ok(canonical)
}

fn valid_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.trim().is_empty()
        && name.len() <= 255
        && !name.chars().any(char::is_control)
        && !name.contains(['/', '\\'])
        && name != "."
        && name != "..";
    ok.then_some(()).ok_or_else(|| {
        ApiError::bad_request(
            "INVALID_NAME",
            "names are 1-255 bytes of UTF-8 without control characters or path separators",
        )
    })
}

fn valid_tags(tags: &[String]) -> Result<(), ApiError> {
    let ok = tags.len() <= 64
        && tags.iter().all(|t| !t.trim().is_empty() && t.len() <= 64 && !t.chars().any(char::is_control));
    ok.then_some(()).ok_or_else(|| {
        ApiError::bad_request("INVALID_TAGS", "at most 64 tags of 1-64 bytes without control characters")
    })
}

fn valid_mime(t: &str) -> bool {
    let essence = t.split(';').next().unwrap_or_default().trim();
    let tok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
    matches!(essence.split_once('/'), Some((a, b)) if tok(a) && tok(b)) && t.len() <= 255
}

/// The JSON form of an asset (docs/protocol.md, "Asset").
pub fn asset_json(prefix: &str, a: &AssetRow) -> Value {
    let mut v = json!({
        "id": a.id, "name": a.name, "type": a.mime_type, "size": a.size, "sha256": a.sha256,
        "createdAt": a.created_at, "updatedAt": a.updated_at, "version": a.version, "tags": a.tags,
        "path": a.path, "url": format!("{prefix}/media/assets/{}", a.id),
    });
    if thumb::is_image(&a.mime_type) {
        v["thumbnailUrl"] = json!(format!("{prefix}/media/assets/{}/thumbnail", a.id));
    }
    v
}

fn change_json(prefix: &str, a: &AssetRow) -> Value {
    match a.deleted_at {
        Some(at) => json!({ "id": a.id, "deleted": true, "deletedAt": at, "version": a.version }),
        None => json!({ "id": a.id, "deleted": false, "asset": asset_json(prefix, a) }),
    }
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

fn with_etag(prefix: &str, status: StatusCode, a: &AssetRow) -> Response {
    let mut res = (status, Json(asset_json(prefix, a))).into_response();
    res.headers_mut().insert(header::ETAG, etag(a.version));
    res
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// `If-Match: "<version>"` (or a bare number).
fn if_match(h: &HeaderMap) -> Result<Option<i64>, ApiError> {
    match header_str(h, "if-match") {
        None => Ok(None),
        Some(v) => {
            v.trim().trim_start_matches("W/").trim_matches('"').parse().map(Some).map_err(|_| {
                ApiError::bad_request("BAD_REQUEST", "If-Match must be the asset's version ETag, e.g. \"3\"")
            })
        }
    }
}

fn encode_cursor(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("v1:{s}"))
}

fn decode_cursor(c: &str) -> Result<String, ApiError> {
    let bad =
        || ApiError::bad_request("INVALID_CURSOR", "the cursor is not one this server issued; start again without it");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).map_err(|_| bad())?;
    String::from_utf8(raw).ok().and_then(|s| s.strip_prefix("v1:").map(str::to_owned)).ok_or_else(bad)
}

fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::bad_request("BAD_REQUEST", format!("limit must be 1-{MAX_PAGE}"))),
    }
}

/// `GET /api/media/capabilities` (no auth).
pub async fn capabilities(State(s): State<AppState>) -> Json<Value> {
    Json(json!({
        "protocol": PROTOCOL, "versions": [PROTOCOL_VERSION], "maxUploadBytes": s.max_upload_bytes,
        "pageMax": MAX_PAGE, "thumbnails": { "maxSize": thumb::MAX_SIZE, "type": "image/png" },
        "auth": ["bearer", "cookie"], "checksum": "sha256",
        "features": ["idempotent-upload", "changes", "tombstones", "metadata-versions", "range", "thumbnails"],
        "rateLimitPerSecond": s.rate_limit,
    }))
}

/// `POST /api/media/assets`: the raw bytes as the body, metadata in headers.
pub async fn upload(
    State(s): State<AppState>,
    user: User,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = parse_id(
        header_str(&headers, "x-asset-id")
            .ok_or_else(|| ApiError::bad_request("INVALID_ID", "X-Asset-Id is required"))?,
    )?;
    let name_raw = header_str(&headers, "x-asset-name")
        .ok_or_else(|| ApiError::bad_request("INVALID_NAME", "X-Asset-Name is required"))?;
    let name = percent_encoding::percent_decode_str(name_raw)
        .decode_utf8()
        .map_err(|_| ApiError::bad_request("INVALID_NAME", "X-Asset-Name must be percent-encoded UTF-8"))?
        .into_owned();
    valid_name(&name)?;
    let mime = header_str(&headers, "content-type").unwrap_or("application/octet-stream").to_ascii_lowercase();
    if mime.starts_with("multipart/") || mime.starts_with("application/x-www-form-urlencoded") {
        return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE", "send the raw bytes as the body with the asset's own Content-Type; multipart and form bodies are not accepted"));
    }
    if !valid_mime(&mime) {
        return Err(ApiError::bad_request("INVALID_TYPE", "Content-Type must be a MIME type such as image/png"));
    }
    let claimed = header_str(&headers, "x-content-sha256")
        .map(str::to_ascii_lowercase)
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| {
            ApiError::bad_request(
                "MISSING_CHECKSUM",
                "X-Content-SHA256 (64 hex digits of the body's SHA-256) is required",
            )
        })?;
    let tags: Vec<String> = match header_str(&headers, "x-asset-tags") {
        None => vec![],
        Some(t) => {
            let decoded = percent_encoding::percent_decode_str(t).decode_utf8().map_err(|_| {
                ApiError::bad_request("INVALID_TAGS", "X-Asset-Tags must be a percent-encoded JSON array of strings")
            })?;
            serde_json::from_str(&decoded).map_err(|_| {
                ApiError::bad_request("INVALID_TAGS", "X-Asset-Tags must be a percent-encoded JSON array of strings")
            })?
        }
    };
    valid_tags(&tags)?;
    let created_at = match header_str(&headers, "x-asset-created-at") {
        None => now_ms(),
        Some(v) => v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::bad_request("BAD_REQUEST", "X-Asset-Created-At must be ms since the Unix epoch")
        })?,
    };
    let declared_len: Option<u64> = header_str(&headers, "content-length").and_then(|v| v.parse().ok());
    if declared_len.is_some_and(|n| n > s.max_upload_bytes) {
        return Err(too_large(s.max_upload_bytes));
    }

    // Already here? Answer without storing anything (a retry after a lost response).
    if let Some(existing) = s.db.get(&user.0, &id).await? {
        return existing_answer(&s.api_prefix, &existing, &claimed);
    }

    let nonce = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let path = crate::storage::asset_path(&user.0, &id, &nonce, &name);
    let (size, actual) = stream_to_store(&s, &path, body).await?;
    if actual != claimed {
        let _ = s.store.delete(&path).await;
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "CHECKSUM_MISMATCH",
            "the body's SHA-256 differs from X-Content-SHA256; nothing was stored",
        )
        .with_details(json!({ "expected": claimed, "actual": actual })));
    }
    let row = AssetRow {
        user_id: user.0.clone(),
        id,
        name,
        mime_type: mime,
        size: size as i64,
        sha256: actual,
        path: path.to_string(),
        tags,
        created_at,
        updated_at: now_ms(),
        version: 1,
        seq: 0,
        deleted_at: None,
        thumb_path: None,
    };
    match s.db.insert(&row).await {
        Ok(Insert::Created(created)) => Ok(with_etag(&s.api_prefix, StatusCode::CREATED, &created)),
        Ok(Insert::Exists(existing)) => {
            let _ = s.store.delete(&path).await;
            existing_answer(&s.api_prefix, &existing, &claimed)
        }
        Err(e) => {
            let _ = s.store.delete(&path).await;
            Err(e.into())
        }
    }
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", format!("uploads are limited to {max} bytes"))
        .with_details(json!({ "maxUploadBytes": max }))
}

fn existing_answer(prefix: &str, existing: &AssetRow, claimed: &str) -> Result<Response, ApiError> {
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

/// Streams the body into `path`, hashing and counting; memory stays at one part buffer.
async fn stream_to_store(s: &AppState, path: &Path, body: Body) -> Result<(u64, String), ApiError> {
    let upload = s.store.put_multipart(path).await?;
    let mut writer = WriteMultipart::new(upload);
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let _ = writer.abort().await;
                return Err(ApiError::bad_request("BAD_REQUEST", format!("the upload body broke off: {e}")));
            }
        };
        size += chunk.len() as u64;
        if size > s.max_upload_bytes {
            let _ = writer.abort().await;
            return Err(too_large(s.max_upload_bytes));
        }
        hasher.update(&chunk);
        if let Err(e) = writer.wait_for_capacity(4).await {
            return Err(e.into());
        }
        writer.put(chunk);
    }
    writer.finish().await?;
    Ok((size, hex::encode(hasher.finalize())))
}

#[derive(Deserialize)]
pub struct PageQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/media/assets`: live assets, ordered by id, paged.
pub async fn list(State(s): State<AppState>, user: User, Query(q): Query<PageQuery>) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(q.limit)?;
    let after = q.cursor.as_deref().map(decode_cursor).transpose()?.unwrap_or_default();
    let mut rows = s.db.list(&user.0, &after, limit + 1).await?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = rows.last().map(|r| encode_cursor(&r.id));
    Ok(Json(
        json!({ "assets": rows.iter().map(|a| asset_json(&s.api_prefix, a)).collect::<Vec<_>>(), "nextCursor": next, "hasMore": has_more }),
    ))
}

/// `GET /api/media/changes`: live assets and tombstones changed after the cursor.
pub async fn changes(
    State(s): State<AppState>,
    user: User,
    Query(q): Query<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(q.limit)?;
    let after: i64 = match q.cursor.as_deref().map(decode_cursor).transpose()? {
        None => 0,
        Some(c) => c
            .parse()
            .map_err(|_| ApiError::bad_request("INVALID_CURSOR", "the cursor is not one this server issued"))?,
    };
    let mut rows = s.db.changes(&user.0, after, limit + 1).await?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    // An empty page keeps the caller's position, so polling never loses its place.
    let next = rows.last().map_or(after, |r| r.seq);
    Ok(Json(
        json!({ "changes": rows.iter().map(|a| change_json(&s.api_prefix, a)).collect::<Vec<_>>(), "nextCursor": encode_cursor(&next.to_string()), "hasMore": has_more }),
    ))
}

async fn live(s: &AppState, user: &User, id: &str) -> Result<AssetRow, ApiError> {
    let id = parse_id(id)?;
    match s.db.get(&user.0, &id).await? {
        Some(a) if a.deleted_at.is_none() => Ok(a),
        _ => Err(ApiError::not_found()),
    }
}

/// `GET /api/media/assets/:id`: the bytes, with ETag (the SHA-256), Range and safe headers.
pub async fn download(
    State(s): State<AppState>,
    user: User,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let a = live(&s, &user, &id).await?;
    let tag = format!("\"{}\"", a.sha256);
    if header_str(&headers, "if-none-match").is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*")) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response());
    }
    let size = a.size as u64;
    let range = match header_str(&headers, "range") {
        None => None,
        Some(r) => match parse_range(r, size) {
            Some(r) => Some(r),
            None => {
                let e = ApiError::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "RANGE_NOT_SATISFIABLE",
                    "use a single range `bytes=start-end` within the file",
                )
                .with_details(json!({ "size": size }));
                let mut res = e.into_response();
                res.headers_mut().insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes */{size}")).map_err(ApiError::internal)?,
                );
                return Ok(res);
            }
        },
    };
    let opts = GetOptions { range: range.clone().map(GetRange::Bounded), ..Default::default() };
    let got = s.store.get_opts(&Path::from(a.path.as_str()), opts).await?;
    let body = Body::from_stream(got.into_stream());
    let mut res = Response::new(body);
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&a.mime_type).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::ETAG, HeaderValue::from_str(&tag).map_err(ApiError::internal)?);
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_DISPOSITION, content_disposition(&a.name));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    match range {
        Some(r) => {
            *res.status_mut() = StatusCode::PARTIAL_CONTENT;
            let h = res.headers_mut();
            h.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {}-{}/{size}", r.start, r.end - 1))
                    .map_err(ApiError::internal)?,
            );
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(r.end - r.start));
        }
        None => {
            res.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(size));
        }
    }
    Ok(res)
}

/// A single `bytes=` range, as a half-open range within `size`.
pub fn parse_range(h: &str, size: u64) -> Option<std::ops::Range<u64>> {
    let spec = h.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let r = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            if n == 0 {
                return None;
            }
            size.saturating_sub(n)..size
        }
        (start, "") => start.parse().ok()?..size,
        (start, end) => {
            let (s, e): (u64, u64) = (start.parse().ok()?, end.parse().ok()?);
            if e < s {
                return None;
            }
            s..(e + 1).min(size)
        }
    };
    (r.start < r.end && r.start < size).then_some(r)
}

/// `attachment; filename="<ascii>"; filename*=UTF-8''<pct>` (RFC 6266), never a raw name.
pub fn content_disposition(name: &str) -> HeaderValue {
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let pct = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).to_string();
    HeaderValue::from_str(&format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{pct}"))
        .unwrap_or(HeaderValue::from_static("attachment"))
}

/// `DELETE /api/media/assets/:id`: tombstones the asset, then removes its bytes. Idempotent.
pub async fn delete(
    State(s): State<AppState>,
    user: User,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let want = if_match(&headers)?;
    match s.db.delete(&user.0, &id, want, now_ms()).await? {
        None => Err(ApiError::not_found()),
        Some(Err(current)) => Err(stale(&s.api_prefix, &current)),
        Some(Ok(tomb)) => {
            // Bytes go after the tombstone commits; a failure here leaves an orphan the sweep removes.
            let _ = s.store.delete(&Path::from(tomb.path.as_str())).await;
            if let Some(t) = &tomb.thumb_path {
                let _ = s.store.delete(&Path::from(t.as_str())).await;
            }
            Ok(StatusCode::NO_CONTENT.into_response())
        }
    }
}

fn stale(prefix: &str, current: &AssetRow) -> ApiError {
    ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "PRECONDITION_FAILED",
        "the asset changed since you read it; merge with the current record and retry",
    )
    .with_details(asset_json(prefix, current))
}

/// `GET /api/media/assets/:id/metadata`.
pub async fn get_meta(
    State(s): State<AppState>,
    user: User,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    Ok(with_etag(&s.api_prefix, StatusCode::OK, &live(&s, &user, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaPatch {
    name: Option<String>,
    tags: Option<Vec<String>>,
}

/// `PATCH /api/media/assets/:id/metadata` with `If-Match: "<version>"` (required).
pub async fn patch_meta(
    State(s): State<AppState>,
    user: User,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let is_json = header_str(&headers, "content-type").is_some_and(|t| t.starts_with("application/json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the patch as application/json",
        ));
    }
    let body = axum::body::to_bytes(body, PATCH_MAX_BYTES).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("metadata patches are limited to {PATCH_MAX_BYTES} bytes"),
        )
    })?;
    let patch: MetaPatch = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("INVALID_JSON", format!("the body is not a valid patch: {e}")))?;
    let cur = live(&s, &user, &id).await?;
    let want = if_match(&headers)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "PRECONDITION_REQUIRED",
            "send If-Match with the version you edited (the ETag of the metadata)",
        )
    })?;
    let name = patch.name.unwrap_or(cur.name.clone());
    valid_name(&name)?;
    let tags = patch.tags.unwrap_or(cur.tags.clone());
    valid_tags(&tags)?;
    match s.db.update_meta(&user.0, &cur.id, want, &name, &tags, now_ms().max(cur.updated_at + 1)).await? {
        None => Err(ApiError::not_found()),
        Some(Err(current)) => Err(stale(&s.api_prefix, &current)),
        Some(Ok(updated)) => Ok(with_etag(&s.api_prefix, StatusCode::OK, &updated)),
    }
}

/// `GET /api/media/assets/:id/thumbnail`: a PNG at most `thumb::MAX_SIZE` px, made once.
pub async fn thumbnail(
    State(s): State<AppState>,
    user: User,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let a = live(&s, &user, &id).await?;
    let png = thumb::get_or_make(&s, &a).await?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/png")),
            (header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=86400")),
        ],
        png,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(0..10));
        assert_eq!(parse_range("bytes=90-", 100), Some(90..100));
        assert_eq!(parse_range("bytes=-10", 100), Some(90..100));
        assert_eq!(parse_range("bytes=95-200", 100), Some(95..100));
        for bad in ["bytes=100-", "bytes=5-1", "bytes=0-1,3-4", "items=0-1", "bytes=-0", "bytes=a-b"] {
            assert_eq!(parse_range(bad, 100), None, "{bad}");
        }
    }

    #[test]
    fn ids_must_be_canonical() {
        assert!(parse_id("0190f0c2-7a0e-7cc0-8000-000000000001").is_ok());
        for bad in ["0190F0C2-7A0E-7CC0-8000-000000000001", "../etc", "0190f0c27a0e7cc08000000000000001", ""] {
            assert!(parse_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn content_disposition_is_safe() {
        let v = content_disposition("evil\"\r\nx.png");
        let s = v.to_str().unwrap();
        assert!(!s.contains('\r') && !s.contains('\n'));
        assert!(s.starts_with("attachment; filename=\"evil__"));
        assert!(s.contains("filename*=UTF-8''evil%22%0D%0Ax%2Epng"));
    }
}
