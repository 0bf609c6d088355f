//! The protocol's wire format (docs/protocol.md) for the sync engine: engine `Request`s
//! become HTTP request descriptions, HTTP responses become engine `Outcome`s. Plain Rust
//! and serde: the browser service and native tests share it.

use serde::Deserialize;

use super::engine::{Change, Meta, Outcome, RemoteAsset, Reply, Request};
use super::json;

/// An asset as the server sends it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WireAsset {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// MIME type.
    #[serde(rename = "type")]
    pub mime_type: String,
    /// Bytes.
    pub size: u64,
    /// Hex SHA-256.
    pub sha256: String,
    /// ms since epoch.
    pub created_at: i64,
    /// ms since epoch.
    pub updated_at: i64,
    /// Metadata version.
    pub version: i64,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Download URL, relative to the server.
    pub url: String,
    /// Thumbnail URL, for images.
    #[serde(default)]
    pub thumbnail_url: Option<String>,
    /// Who made the last change (servers with spaces send it on a space's assets).
    #[serde(default)]
    pub updated_by: Option<String>,
}

impl From<WireAsset> for RemoteAsset {
    fn from(w: WireAsset) -> Self {
        RemoteAsset {
            id: w.id,
            sha256: w.sha256,
            meta: Meta { name: w.name, tags: w.tags },
            version: w.version,
            updated_at: w.updated_at,
            updated_by: w.updated_by,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireChange {
    id: String,
    deleted: bool,
    #[serde(default)]
    asset: Option<WireAsset>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireChangePage {
    changes: Vec<WireChange>,
    next_cursor: String,
    has_more: bool,
}

/// The protocol's error body: `{ "error": { "code", "message", "details"? } }`.
#[derive(Deserialize)]
pub(crate) struct WireErrorBody {
    pub(crate) error: WireError,
}

#[derive(Deserialize)]
pub(crate) struct WireError {
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) details: Option<json::Raw>,
}

/// The part of `GET /api/media/capabilities` the client uses.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// Largest accepted upload body, in bytes.
    #[serde(default)]
    pub max_upload_bytes: Option<f64>,
    /// The resumable-upload extension's limits (absent: no extension). Read on its own
    /// (`session_limits`), so a malformed one disables the extension, not the whole document.
    #[serde(default)]
    pub resumable_uploads: Option<json::Raw>,
}

impl Capabilities {
    /// The resumable-upload limits, if the server advertises usable ones.
    pub fn session_limits(&self) -> Option<SessionLimits> {
        self.resumable_uploads.clone().and_then(json::from_raw)
    }
}

/// The server's `resumableUploads` capability.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SessionLimits {
    /// Files of at least this size go through a session.
    pub min_bytes: u64,
    /// Bounds of a non-final chunk.
    pub chunk_min_bytes: u64,
    /// Bounds of any chunk.
    pub chunk_max_bytes: u64,
}

/// What to put in the request body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// No body.
    Empty,
    /// A JSON document.
    Json(String),
    /// The bytes of this asset (the service streams them from local storage), with the
    /// asset's MIME type as `Content-Type`.
    AssetBytes(String),
}

/// An HTTP request to make, relative to the API base URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `POST`, `PATCH` or `DELETE`.
    pub method: &'static str,
    /// Path and query under the API root, e.g. `/media/changes?cursor=...`.
    pub path: String,
    /// Headers besides auth and `Content-Type` of asset bytes.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Body,
}

/// `encodeURIComponent`: everything but `A-Z a-z 0-9 - _ . ! ~ * ' ( )` percent-encoded.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The API root a client's `apiBaseUrl` names, from the URL's origin and path (query and
/// fragment already dropped): requests go to `<root>/media/...`. A bare origin (`""` or `/`
/// path) means the default mount, `<origin>/api`; any other path is the root itself, without
/// its trailing slashes (`/api/` and `/api` are the same root).
pub fn api_root(origin: &str, path: &str) -> String {
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        format!("{origin}/api")
    } else {
        format!("{origin}{path}")
    }
}

/// The page size the engine asks the changes feed for.
pub const CHANGES_PAGE: u32 = 200;

/// The HTTP form of an engine request.
pub fn to_http(req: &Request) -> HttpRequest {
    match req {
        Request::Upload { id, sha256, meta } => {
            let tags = serde_json::to_string(&meta.tags).unwrap_or_else(|_| "[]".into());
            HttpRequest {
                method: "POST",
                path: "/media/assets".into(),
                headers: vec![
                    ("X-Asset-Id", id.clone()),
                    ("X-Asset-Name", encode_component(&meta.name)),
                    ("X-Asset-Tags", encode_component(&tags)),
                    ("X-Content-SHA256", sha256.clone()),
                ],
                body: Body::AssetBytes(id.clone()),
            }
        }
        Request::Patch { id, if_match, meta } => HttpRequest {
            method: "PATCH",
            path: format!("/media/assets/{id}/metadata"),
            headers: vec![("If-Match", format!("\"{if_match}\"")), ("Content-Type", "application/json".into())],
            body: Body::Json(serde_json::json!({ "name": meta.name, "tags": meta.tags }).to_string()),
        },
        Request::Delete { id } => {
            HttpRequest { method: "DELETE", path: format!("/media/assets/{id}"), headers: vec![], body: Body::Empty }
        }
        Request::Changes { cursor } => {
            let mut path = format!("/media/changes?limit={CHANGES_PAGE}");
            if let Some(c) = cursor {
                path.push_str("&cursor=");
                path.push_str(&encode_component(c));
            }
            HttpRequest { method: "GET", path, headers: vec![], body: Body::Empty }
        }
    }
}

/// The live assets of a changes page as the server sent them (the engine keeps only what it
/// decides on; new local records need the rest: type, size, dates). Empty if it does not parse.
pub fn live_assets(body: &[u8]) -> Vec<WireAsset> {
    json::from_slice::<WireChangePage>(body)
        .map(|p| p.changes.into_iter().filter(|c| !c.deleted).filter_map(|c| c.asset).collect())
        .unwrap_or_default()
}

/// The engine outcome of an HTTP response to `req`. A body that does not match the
/// protocol is reported as a `502 PROTOCOL_ERROR` failure (retryable: a proxy or a
/// half-deployed server may be answering), never a panic.
pub fn outcome(req: &Request, status: u16, retry_after: Option<u64>, body: &[u8]) -> Outcome {
    let protocol_error =
        || Outcome::Failed { status: 502, code: "PROTOCOL_ERROR".into(), current: None, retry_after: None };
    if (200..300).contains(&status) {
        return match req {
            Request::Delete { .. } => Outcome::Ok(Reply::Deleted),
            Request::Upload { .. } | Request::Patch { .. } => match json::from_slice::<WireAsset>(body) {
                Some(a) => Outcome::Ok(Reply::Asset(a.into())),
                None => protocol_error(),
            },
            Request::Changes { .. } => match json::from_slice::<WireChangePage>(body) {
                Some(p) => {
                    let mut changes = Vec::with_capacity(p.changes.len());
                    for c in p.changes {
                        match (c.deleted, c.asset) {
                            (true, _) => changes.push(Change::Tombstone { id: c.id }),
                            (false, Some(a)) if a.id == c.id => changes.push(Change::Live(a.into())),
                            _ => return protocol_error(),
                        }
                    }
                    Outcome::Ok(Reply::Changes { changes, next_cursor: p.next_cursor, has_more: p.has_more })
                }
                None => protocol_error(),
            },
        };
    }
    let (code, details) = match json::from_slice::<WireErrorBody>(body) {
        // Codes are the protocol's UPPER_SNAKE identifiers; an empty or free-form one (found
        // by tests/fuzz_parsing.rs: `[{"code":""}]` parses) must not become the asset's error.
        Some(b) if is_error_code(&b.error.code) => (b.error.code, b.error.details),
        Some(b) => (format!("HTTP_{status}"), b.error.details),
        // Proxies and load balancers answer without our JSON body: keep the status.
        None => (format!("HTTP_{status}"), None),
    };
    let current = details.and_then(json::from_raw::<WireAsset>).map(RemoteAsset::from);
    Outcome::Failed { status, code, current, retry_after }
}

/// The first byte of a `Content-Range: bytes <first>-<last>/<size>` header.
pub fn content_range_start(v: &str) -> Option<u64> {
    let range = v.trim().strip_prefix("bytes ")?;
    let (span, _size) = range.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let first: u64 = first.parse().ok()?;
    let last: u64 = last.parse().ok()?;
    (first <= last).then_some(first)
}

/// An error code as the protocol writes them: 1-64 of `A-Z 0-9 _`, starting with a letter.
fn is_error_code(c: &str) -> bool {
    c.len() <= 64
        && c.starts_with(|ch: char| ch.is_ascii_uppercase())
        && c.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_protocol_shaped_codes_are_kept() {
        use super::{outcome, Outcome, Request};
        let del = Request::Delete { id: "a".into() };
        let code = |body: &str| match outcome(&del, 409, None, body.as_bytes()) {
            Outcome::Failed { code, .. } => code,
            other => panic!("{other:?}"),
        };
        assert_eq!(code(r#"{"error":{"code":"ASSET_DELETED","message":"m"}}"#), "ASSET_DELETED");
        assert_eq!(code(r#"[{"code":""}]"#), "HTTP_409", "serde takes a struct from an array");
        assert_eq!(code(r#"{"error":{"code":"","message":"m"}}"#), "HTTP_409");
        assert_eq!(code(r#"{"error":{"code":"not a code","message":"m"}}"#), "HTTP_409");
        assert_eq!(code(r#"{"error":{"code":"9LIVES","message":"m"}}"#), "HTTP_409");
    }

    #[test]
    fn content_range_names_where_a_partial_body_starts() {
        use super::content_range_start;
        assert_eq!(content_range_start("bytes 100-999/1000"), Some(100));
        assert_eq!(content_range_start("bytes 0-0/1"), Some(0));
        for bad in ["bytes */1000", "bytes 5-4/9", "items 0-1/2", "bytes 1-2", "bytes -1-2/3", ""] {
            assert_eq!(content_range_start(bad), None, "{bad}");
        }
    }

    #[test]
    fn api_root_rule() {
        use super::api_root;
        let o = "https://media.example.com";
        assert_eq!(api_root(o, ""), "https://media.example.com/api", "a bare origin means /api");
        assert_eq!(api_root(o, "/"), "https://media.example.com/api");
        assert_eq!(api_root(o, "/api"), "https://media.example.com/api", "the seed's form");
        assert_eq!(api_root(o, "/api/"), "https://media.example.com/api");
        assert_eq!(api_root(o, "/v2/media-sync"), "https://media.example.com/v2/media-sync");
        assert_eq!(api_root(o, "//"), "https://media.example.com/api");
    }

    use super::*;

    fn meta(name: &str) -> Meta {
        Meta { name: name.into(), tags: vec!["a b".into()] }
    }

    #[test]
    fn upload_headers_are_encoded() {
        let r = to_http(&Request::Upload { id: "i".into(), sha256: "s".into(), meta: meta("Été/1.jpg") });
        assert_eq!(r.method, "POST");
        assert!(r.headers.contains(&("X-Asset-Name", "%C3%89t%C3%A9%2F1.jpg".into())));
        assert!(r.headers.contains(&("X-Asset-Tags", "%5B%22a%20b%22%5D".into())));
        assert_eq!(r.body, Body::AssetBytes("i".into()));
    }

    #[test]
    fn responses_map_to_outcomes() {
        let up = Request::Upload { id: "i".into(), sha256: "s".into(), meta: meta("n") };
        let asset = br#"{"id":"i","name":"n","type":"t","size":1,"sha256":"s","createdAt":1,"updatedAt":2,"version":3,"tags":[],"url":"/u"}"#;
        match outcome(&up, 201, None, asset) {
            Outcome::Ok(Reply::Asset(a)) => assert_eq!((a.version, a.updated_at), (3, 2)),
            o => panic!("{o:?}"),
        }
        let stale = format!(
            r#"{{"error":{{"code":"PRECONDITION_FAILED","message":"m","details":{}}}}}"#,
            std::str::from_utf8(asset).unwrap()
        );
        match outcome(&up, 412, None, stale.as_bytes()) {
            Outcome::Failed { status: 412, code, current: Some(c), .. } => {
                assert_eq!((code.as_str(), c.version), ("PRECONDITION_FAILED", 3))
            }
            o => panic!("{o:?}"),
        }
        assert_eq!(
            outcome(&up, 503, Some(7), b"<html>bad gateway</html>"),
            Outcome::Failed { status: 503, code: "HTTP_503".into(), current: None, retry_after: Some(7) }
        );
    }

    #[test]
    fn a_server_speaking_the_protocol_wrong_is_a_protocol_error() {
        let pull = Request::Changes { cursor: None };
        for body in
            [&b"{}"[..], b"not json", br#"{"changes":[{"id":"x","deleted":false}],"nextCursor":"c","hasMore":false}"#]
        {
            assert!(matches!(outcome(&pull, 200, None, body), Outcome::Failed { status: 502, .. }), "{body:?}");
        }
        let ok =
            br#"{"changes":[{"id":"x","deleted":true,"deletedAt":1,"version":2}],"nextCursor":"c","hasMore":true}"#;
        assert_eq!(
            outcome(&pull, 200, None, ok),
            Outcome::Ok(Reply::Changes {
                changes: vec![Change::Tombstone { id: "x".into() }],
                next_cursor: "c".into(),
                has_more: true
            })
        );
    }
}
