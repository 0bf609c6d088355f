//! HTTP handlers for the opfs-media protocol (docs/protocol.md). Short: extractors and
//! `ApiError` carry the HTTP concerns, `Db` and the object store do the work.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use object_store::{path::Path, GetOptions, GetRange};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::body::{read_json_body, JSON_MAX_BYTES};
use crate::cursor::Kind;
use crate::db::AssetRow;
use crate::error::ApiError;
use crate::library::Library;
use crate::reply::{asset_json, change_json, with_etag};
use crate::request::{has_type, if_match, valid_name, valid_tags, AssetId, Page};
use crate::{now_ms, thumb, AppState, PROTOCOL, PROTOCOL_VERSION};

pub use crate::request::parse_id;
pub use crate::upload::upload;

/// Most items in one page of a listing.
pub const MAX_PAGE: i64 = 1000;
const DEFAULT_PAGE: i64 = 100;

/// A header that follows plain HTTP semantics (Range, If-None-Match): unreadable means absent.
fn http_header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::bad_request("BAD_REQUEST", format!("limit must be 1-{MAX_PAGE}"))),
    }
}

/// `GET /api/media/capabilities` (no auth, never rate limited).
pub async fn capabilities(State(s): State<AppState>) -> Json<Value> {
    let mut features = vec!["idempotent-upload", "changes", "tombstones", "metadata-versions", "range", "thumbnails"];
    if s.resumable.is_some() {
        features.push("resumable-uploads");
    }
    if s.admin_secret.is_some() {
        features.push("spaces");
    }
    let mut caps = json!({
        "protocol": PROTOCOL, "versions": [PROTOCOL_VERSION], "maxUploadBytes": s.max_upload_bytes,
        "pageMax": MAX_PAGE,
        "thumbnails": {
            "maxSize": thumb::MAX_SIZE, "type": "image/png", "sourceTypes": thumb::SOURCE_TYPES,
            "maxSourceBytes": thumb::MAX_SOURCE_BYTES, "maxSourcePixels": thumb::MAX_SOURCE_PIXELS,
        },
        "auth": ["bearer", "cookie"], "cookieName": crate::auth::COOKIE, "checksum": "sha256",
        "features": features,
        "rateLimitPerSecond": s.rate_limit, "maxJsonBytes": JSON_MAX_BYTES, "chunkedUploads": true,
        "datasetId": s.dataset_id,
    });
    if let Some(r) = &s.resumable {
        caps["resumableUploads"] = r.capabilities();
    }
    if s.admin_secret.is_some() {
        caps["spaces"] = crate::library::capabilities(&s.api_prefix);
    }
    Json(caps)
}

/// `GET /api/media/assets`: live assets, ordered by id, paged.
pub async fn list(State(s): State<AppState>, lib: Library, q: Page) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(q.limit)?;
    let after = q.cursor.as_deref().map(|c| s.cursors.decode(&lib.key, Kind::List, c)).transpose()?.unwrap_or_default();
    let mut rows = s.db.list(&lib.key, &after, limit + 1).await?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = rows.last().map(|r| s.cursors.encode(&lib.key, Kind::List, &r.id));
    Ok(Json(
        json!({ "assets": rows.iter().map(|a| asset_json(&lib.root, a)).collect::<Vec<_>>(), "nextCursor": next, "hasMore": has_more }),
    ))
}

/// `GET /api/media/changes`: live assets and tombstones changed after the cursor.
pub async fn changes(State(s): State<AppState>, lib: Library, q: Page) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(q.limit)?;
    let after: i64 = match q.cursor.as_deref().map(|c| s.cursors.decode(&lib.key, Kind::Changes, c)).transpose()? {
        None => 0,
        Some(c) => c
            .parse()
            .map_err(|_| ApiError::bad_request("INVALID_CURSOR", "the cursor is not one this server issued"))?,
    };
    let mut rows = s.db.changes(&lib.key, after, limit + 1).await?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    // An empty page keeps the caller's position, so polling never loses its place.
    let next = rows.last().map_or(after, |r| r.seq);
    Ok(Json(
        json!({ "changes": rows.iter().map(|a| change_json(&lib.root, a)).collect::<Vec<_>>(), "nextCursor": s.cursors.encode(&lib.key, Kind::Changes, &next.to_string()), "hasMore": has_more }),
    ))
}

async fn live(s: &AppState, lib: &Library, id: &str) -> Result<AssetRow, ApiError> {
    match s.db.get(&lib.key, id).await? {
        Some(a) if a.deleted_at.is_none() => Ok(a),
        _ => Err(ApiError::not_found()),
    }
}

/// `GET /api/media/assets/:id`: the bytes, with ETag (the SHA-256), Range and safe headers.
pub async fn download(
    State(s): State<AppState>,
    lib: Library,
    AssetId(id): AssetId,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let a = live(&s, &lib, &id).await?;
    let tag = format!("\"{}\"", a.sha256);
    // If-None-Match compares weakly (RFC 9110 13.1.2): `W/"<sha>"` matches too.
    let matches = |t: &str| {
        let t = t.trim();
        t == "*" || t.strip_prefix("W/").unwrap_or(t) == tag
    };
    if http_header(&headers, "if-none-match").is_some_and(|v| v.split(',').any(matches)) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response());
    }
    let size = a.size as u64;
    // A Range that is not one well-formed `bytes=` range is ignored (RFC 9110 14.2): 200.
    // Range is a singleton field: a repeated one is malformed, hence ignored.
    let range_field = (headers.get_all(header::RANGE).iter().count() == 1).then(|| http_header(&headers, "range"));
    let range = match range_field.flatten().and_then(parse_range) {
        None => None,
        Some(spec) => match spec.within(size) {
            Some(r) => Some(r),
            None => return unsatisfiable(size),
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

fn unsatisfiable(size: u64) -> Result<Response, ApiError> {
    let e = ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "RANGE_NOT_SATISFIABLE",
        "the range starts beyond the end of the file; ask for `bytes=start-end` within it",
    )
    .with_details(json!({ "size": size }));
    let mut res = e.into_response();
    res.headers_mut()
        .insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes */{size}")).map_err(ApiError::internal)?);
    Ok(res)
}

/// One well-formed byte range, before it meets the file's size.
#[derive(Debug, PartialEq)]
pub enum RangeSpec {
    /// `bytes=first-` or `bytes=first-last` (`last` clamped to `u64::MAX` if larger).
    From(u64, Option<u64>),
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

impl RangeSpec {
    /// The half-open byte range this selects of a `size`-byte file, or `None` if unsatisfiable
    /// (first ≥ size, or a zero suffix).
    pub fn within(&self, size: u64) -> Option<std::ops::Range<u64>> {
        match *self {
            RangeSpec::From(first, _) if first >= size => None,
            RangeSpec::From(first, last) => Some(first..last.map_or(size, |l| l.saturating_add(1).min(size))),
            RangeSpec::Suffix(0) => None,
            RangeSpec::Suffix(_) if size == 0 => None,
            RangeSpec::Suffix(n) => Some(size.saturating_sub(n)..size),
        }
    }
}

/// Parses `bytes=<first>-[<last>]` or `bytes=-<suffix>`: one range, digits only, leading
/// zeros allowed (values past `u64::MAX` saturate); the unit in any case (RFC 9110 14.1).
/// Anything else (other units, lists, `last < first`) is `None`.
pub fn parse_range(h: &str) -> Option<RangeSpec> {
    let (unit, spec) = h.trim().split_once('=')?;
    if !unit.eq_ignore_ascii_case("bytes") {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let num = |s: &str| {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())).then(|| s.parse::<u64>().unwrap_or(u64::MAX))
    };
    match (a.trim(), b.trim()) {
        ("", suffix) => num(suffix).map(RangeSpec::Suffix),
        (first, "") => num(first).map(|f| RangeSpec::From(f, None)),
        (first, last) => {
            let (f, l) = (num(first)?, num(last)?);
            (l >= f).then_some(RangeSpec::From(f, Some(l)))
        }
    }
}

/// Bytes `filename*` encodes: all but RFC 8187 attr-chars (`A-Z a-z 0-9 ! # $ & + - . ^ _ ` | ~`).
const FILENAME_STAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `attachment; filename="<ascii>"; filename*=UTF-8''<pct>` (RFC 6266), never a raw name.
pub fn content_disposition(name: &str) -> HeaderValue {
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let pct = percent_encoding::utf8_percent_encode(name, FILENAME_STAR).to_string();
    HeaderValue::from_str(&format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{pct}"))
        .unwrap_or(HeaderValue::from_static("attachment"))
}

/// `DELETE /api/media/assets/:id`: tombstones the asset, then removes its bytes. Idempotent.
pub async fn delete(
    State(s): State<AppState>,
    lib: Library,
    AssetId(id): AssetId,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let want = if_match(&headers)?;
    match s.db.delete(&lib.key, &id, want, now_ms(), lib.by()).await? {
        None => Err(ApiError::not_found()),
        Some(Err(current)) => Err(stale(&lib.root, &current)),
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
pub async fn get_meta(State(s): State<AppState>, lib: Library, AssetId(id): AssetId) -> Result<Response, ApiError> {
    Ok(with_etag(&lib.root, StatusCode::OK, &live(&s, &lib, &id).await?))
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
    lib: Library,
    AssetId(id): AssetId,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if !has_type(&headers, "application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the patch as application/json",
        ));
    }
    let body = read_json_body(&s, body).await?;
    let patch: MetaPatch = serde_json::from_slice(&body)
        .map_err(|_| ApiError::bad_request("INVALID_JSON", "the body must be a JSON object with only `name` (a string) and `tags` (an array of strings), each key once"))?;
    let cur = live(&s, &lib, &id).await?;
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
    match s.db.update_meta(&lib.key, &cur.id, want, &name, &tags, now_ms().max(cur.updated_at + 1), lib.by()).await? {
        None => Err(ApiError::not_found()),
        Some(Err(current)) => Err(stale(&lib.root, &current)),
        Some(Ok(updated)) => Ok(with_etag(&lib.root, StatusCode::OK, &updated)),
    }
}

/// `GET /api/media/assets/:id/thumbnail`: a PNG at most `thumb::MAX_SIZE` px, made once.
pub async fn thumbnail(State(s): State<AppState>, lib: Library, AssetId(id): AssetId) -> Result<Response, ApiError> {
    let a = live(&s, &lib, &id).await?;
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
        let r = |h: &str, size| parse_range(h).map(|spec| spec.within(size));
        assert_eq!(r("bytes=0-9", 100), Some(Some(0..10)));
        assert_eq!(r("bytes=90-", 100), Some(Some(90..100)));
        assert_eq!(r("bytes=-10", 100), Some(Some(90..100)));
        assert_eq!(r("bytes=-500", 100), Some(Some(0..100)), "a suffix longer than the file is all of it");
        assert_eq!(r("bytes=95-200", 100), Some(Some(95..100)));
        assert_eq!(r("bytes=0-18446744073709551615", 100), Some(Some(0..100)));
        assert_eq!(r("bytes=0-99999999999999999999999", 100), Some(Some(0..100)));
        for unsatisfiable in ["bytes=100-", "bytes=-0", "bytes=99999999999999999999-"] {
            assert_eq!(r(unsatisfiable, 100), Some(None), "{unsatisfiable}");
        }
        assert_eq!(r("bytes=-5", 0), Some(None), "nothing of an empty file");
        assert_eq!(r("BYTES=0-0", 100), Some(Some(0..1)), "the unit is case-insensitive");
        assert_eq!(r("Bytes=007-009", 100), Some(Some(7..10)), "leading zeros are digits");
        for ignored in ["bytes=5-1", "bytes=0-1,3-4", "items=0-1", "bytes=a-b", "bytes=+1-2", "bytes=-", "bytes"] {
            assert_eq!(parse_range(ignored), None, "{ignored}");
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
        assert!(s.contains("filename*=UTF-8''evil%22%0D%0Ax.png"));
    }
}
