//! What a request carries, read strictly: headers (present but unreadable is a 400 with the
//! header's code, never "absent"), the asset id in the path, and the paging query.

use axum::extract::FromRequestParts;
use axum::http::{request::Parts, HeaderMap};

use crate::error::ApiError;
use crate::AppState;

/// Largest integer a JSON number carries exactly (times, versions).
pub const MAX_SAFE_INT: i64 = (1 << 53) - 1;

/// One header's value: `None` if absent; a 400 with `code` if it is repeated or not visible
/// ASCII (raw UTF-8, control characters), so a header is never silently ignored.
pub fn header<'a>(h: &'a HeaderMap, name: &str, code: &'static str) -> Result<Option<&'a str>, ApiError> {
    let mut all = h.get_all(name).iter();
    let Some(v) = all.next() else { return Ok(None) };
    if all.next().is_some() {
        return Err(ApiError::bad_request(code, format!("{name} must be sent once")));
    }
    v.to_str().map(Some).map_err(|_| {
        ApiError::bad_request(code, format!("{name} must be visible ASCII (percent-encode anything else)"))
    })
}

/// Decodes `%XX` escapes strictly: a `%` not followed by two hex digits, or bytes that are not
/// UTF-8 once decoded (lone surrogates included), are `None`.
pub fn pct_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A canonical non-negative decimal below 2^53: digits only, no sign, no leading zero.
pub fn safe_uint(s: &str) -> Option<i64> {
    let canonical = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse::<i64>().ok()).flatten().filter(|n| *n <= MAX_SAFE_INT)
}

/// `If-Match: "<version>"` (also `W/"<version>"` and a bare `<version>`); the version is a
/// canonical decimal. Anything else (`+3`, `"01"`, lists, `*`) is `400 BAD_REQUEST`.
pub fn if_match(h: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let bad = || ApiError::bad_request("BAD_REQUEST", "If-Match must be one version ETag, e.g. \"3\"");
    let Some(v) = header(h, "if-match", "BAD_REQUEST")? else { return Ok(None) };
    let v = v.trim();
    let v = v.strip_prefix("W/").unwrap_or(v);
    let inner = match v.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"').ok_or_else(bad)?,
        None => v,
    };
    safe_uint(inner).map(Some).ok_or_else(bad)
}

/// A MIME type as stored: trimmed and ASCII-lowercased, parameters kept. An empty value is
/// absent (`None`); a malformed one is `400 INVALID_TYPE`.
pub fn content_type(h: &HeaderMap) -> Result<Option<String>, ApiError> {
    match header(h, "content-type", "INVALID_TYPE")? {
        None => Ok(None),
        Some(v) => mime_type(v),
    }
}

/// A MIME type as stored (the rules of [`content_type`]), from wherever it was sent (an
/// upload session's JSON `type`): `None` if empty, `400 INVALID_TYPE` if malformed.
pub fn mime_type(v: &str) -> Result<Option<String>, ApiError> {
    let bad = || ApiError::bad_request("INVALID_TYPE", "the type must be a MIME type such as image/png");
    if !v.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)) {
        return Err(bad());
    }
    let v = v.trim().to_ascii_lowercase();
    if v.is_empty() {
        return Ok(None);
    }
    let tok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
    let ok = v.len() <= 255 && matches!(essence(&v).split_once('/'), Some((a, b)) if tok(a) && tok(b));
    ok.then_some(Some(v)).ok_or_else(bad)
}

/// Whether the request's `Content-Type` has the essence `want` (any case, parameters ignored).
/// Absent or unreadable is not a match (the endpoint's `415`).
pub fn has_type(h: &HeaderMap, want: &str) -> bool {
    header(h, "content-type", "UNSUPPORTED_MEDIA_TYPE")
        .ok()
        .flatten()
        .is_some_and(|t| essence(&t.to_ascii_lowercase()) == want)
}

/// The `type/subtype` of a MIME type, without parameters.
pub fn essence(mime: &str) -> &str {
    mime.split(';').next().unwrap_or_default().trim()
}

/// The asset id in the path: a canonical (lowercase, hyphenated) UUID, else `400 INVALID_ID`
/// (also for any percent-escape, such as `%ff` or `%64`: the path is matched as sent).
pub struct AssetId(pub String);

/// Parses a canonical UUID; anything else is 400 INVALID_ID.
pub fn parse_id(id: &str) -> Result<String, ApiError> {
    let bad = || ApiError::bad_request("INVALID_ID", "asset ids are lowercase hyphenated UUIDs");
    let u = uuid::Uuid::try_parse(id).map_err(|_| bad())?;
    let canonical = u.hyphenated().to_string();
    (canonical == id).then_some(canonical).ok_or_else(bad)
}

impl FromRequestParts<AppState> for AssetId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // The segment as sent: paths are not percent-decoded (docs/protocol.md, "Paths"), so
        // an escape in the id position is not a canonical id.
        // Every route with an id is `<prefix>/media/<collection>/<id>[/...]`.
        let bad = || ApiError::bad_request("INVALID_ID", "asset ids are lowercase hyphenated UUIDs");
        let rest = parts.uri.path().strip_prefix(&*state.api_prefix).ok_or_else(bad)?;
        parse_id(rest.split('/').nth(3).ok_or_else(bad)?).map(AssetId)
    }
}

/// `?cursor=…&limit=…` of list and changes. Each parameter at most once; `limit` a canonical
/// integer; an empty `cursor=` is a cursor no server issues (`400 INVALID_CURSOR`).
pub struct Page {
    /// The raw cursor, if sent.
    pub cursor: Option<String>,
    /// Requested page size (unchecked against the maximum).
    pub limit: Option<i64>,
}

impl FromRequestParts<AppState> for Page {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        let mut page = Page { cursor: None, limit: None };
        let query = parts.uri.query().unwrap_or("");
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            let twice = || ApiError::bad_request("BAD_REQUEST", format!("query parameter {k} must appear once"));
            match &*k {
                "cursor" if page.cursor.is_some() => return Err(twice()),
                "cursor" => page.cursor = Some(v.into_owned()),
                "limit" if page.limit.is_some() => return Err(twice()),
                "limit" => {
                    page.limit = Some(safe_uint(&v).ok_or_else(|| {
                        ApiError::bad_request("BAD_REQUEST", "limit must be an integer from 1 to pageMax")
                    })?)
                }
                _ => {}
            }
        }
        Ok(page)
    }
}

/// Whether `s` is only Unicode White_Space (or empty): such names and tags are refused.
fn blank(s: &str) -> bool {
    s.chars().all(char::is_whitespace)
}

/// Checks a name against the protocol's limits (400 INVALID_NAME).
pub fn valid_name(name: &str) -> Result<(), ApiError> {
    let ok = !blank(name)
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

/// Checks tags against the protocol's limits (400 INVALID_TAGS).
pub fn valid_tags(tags: &[String]) -> Result<(), ApiError> {
    let ok = tags.len() <= 64 && tags.iter().all(|t| !blank(t) && t.len() <= 64 && !t.chars().any(char::is_control));
    ok.then_some(()).ok_or_else(|| {
        ApiError::bad_request("INVALID_TAGS", "at most 64 tags of 1-64 bytes without control characters")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn percent_decoding_is_strict() {
        assert_eq!(pct_decode("%C3%A9t%C3%A9.png").as_deref(), Some("été.png"));
        assert_eq!(pct_decode("a+b").as_deref(), Some("a+b"));
        for bad in ["%", "%z", "%zz", "a%4", "%ED%A0%80", "%ff", "%+1"] {
            assert_eq!(pct_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn integers_are_canonical_and_safe() {
        assert_eq!(safe_uint("0"), Some(0));
        assert_eq!(safe_uint("9007199254740991"), Some(MAX_SAFE_INT));
        for bad in ["", "01", "+3", "-1", " 3", "9007199254740992", "18446744073709551616", "1e3"] {
            assert_eq!(safe_uint(bad), None, "{bad}");
        }
    }

    #[test]
    fn if_match_forms() {
        let h = |v: &[u8]| {
            let mut m = HeaderMap::new();
            m.insert("if-match", HeaderValue::from_bytes(v).unwrap());
            if_match(&m)
        };
        assert_eq!(h(b"\"3\"").unwrap(), Some(3));
        assert_eq!(h(b"W/\"3\"").unwrap(), Some(3));
        assert_eq!(h(b"3").unwrap(), Some(3));
        assert_eq!(h(b"\"0\"").unwrap(), Some(0));
        for bad in [&b"\"01\""[..], b"+3", b"-1", b"\"\"3\"\"", b"*", b"\"1\", \"2\"", b"\"\xe9\"", b"\"3"] {
            assert!(h(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn content_types() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert("content-type", HeaderValue::from_str(v).unwrap());
            content_type(&m)
        };
        assert_eq!(h(" Image/PNG; X=Y ").unwrap().as_deref(), Some("image/png; x=y"));
        assert_eq!(h("").unwrap(), None);
        for bad in ["png", "image/", "/png", "image/p g"] {
            assert!(h(bad).is_err(), "{bad}");
        }
    }
}
