//! Reference server for the opfs-media sync protocol (docs/protocol.md).
//! SQLite + a local directory by default; PostgreSQL + S3-compatible storage by configuration.

pub mod admin;
pub mod api;
pub mod auth;
pub mod body;
pub mod cursor;
pub mod db;
pub mod error;
pub mod groupcommit;
pub mod library;
pub mod localfile;
pub mod members;
pub mod ratelimit;
pub mod reply;
pub mod request;
pub mod resumable;
pub mod rows;
pub mod serve;
pub mod storage;
pub mod thumb;
pub mod upload;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use futures::TryFutureExt;
use object_store::ObjectStore;
use tower::ServiceExt;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

/// The protocol name clients check in `GET <prefix>/media/capabilities`.
pub const PROTOCOL: &str = "opfs-media";
/// The protocol version this server speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Everything a handler needs, passed explicitly.
#[derive(Clone)]
pub struct AppState {
    /// Asset metadata.
    pub db: db::Db,
    /// Asset bytes.
    pub store: Arc<dyn ObjectStore>,
    /// How credentials are checked.
    pub auth: auth::AuthMode,
    /// Largest upload accepted (413 above).
    pub max_upload_bytes: u64,
    /// Requests per second per user, and per client address without valid credentials
    /// (`None`: unlimited).
    pub rate_limit: Option<u32>,
    /// The limiter behind `rate_limit` (made by [`AppState::new`] or [`AppState::with_rate_limit`]).
    pub limiter: Option<ratelimit::RateLimiter>,
    /// Signs paging cursors; instances behind one load balancer share its key.
    pub cursors: cursor::Cursors,
    /// Advertised as `datasetId`: changes only when the server's data is reset.
    pub dataset_id: Arc<str>,
    /// Bounds thumbnail decoding.
    pub thumbs: Arc<thumb::Thumbnailer>,
    /// Longest wait for the next chunk of a request body (then `408 BODY_TIMEOUT`).
    pub body_idle_timeout: Duration,
    /// The path the API is mounted under (`/api` by default): endpoints are
    /// `<api_prefix>/media/...`, and asset `url`s carry it. Checked by [`api_prefix`].
    pub api_prefix: Arc<str>,
    /// The resumable-upload extension (`None`: off, its endpoints 404 and capabilities omit it).
    pub resumable: Option<Arc<resumable::Resumable>>,
    /// The directory behind `store` when it is local (`file://`): uploads then write there
    /// themselves, flushed to disk before they commit ([`localfile`]). `None`: through `store`.
    pub local_root: Option<std::path::PathBuf>,
    /// The secret of the admin API; set, it turns spaces on (docs/protocol.md, "Spaces"):
    /// `None`, space paths answer like any unknown path and capabilities omit them.
    pub admin_secret: Option<Arc<[u8]>>,
}

impl AppState {
    /// A state with the defaults: no rate limit, `/api`, 30 s body idle timeout, cursors
    /// signed with a key derived from the HMAC secret (a fixed key in dev mode).
    pub async fn new(
        db: db::Db,
        store: Arc<dyn ObjectStore>,
        auth: auth::AuthMode,
        max_upload_bytes: u64,
    ) -> Result<Self, sqlx::Error> {
        let cursors = match &auth {
            auth::AuthMode::Hmac(secret) => cursor::Cursors::new(secret),
            auth::AuthMode::DevInsecure => cursor::Cursors::new(b"opfs-media dev-insecure cursors"),
        };
        Ok(Self {
            dataset_id: db.dataset_id().await?.into(),
            db,
            store,
            auth,
            max_upload_bytes,
            rate_limit: None,
            limiter: None,
            api_prefix: DEFAULT_API_PREFIX.into(),
            cursors,
            thumbs: Arc::default(),
            body_idle_timeout: Duration::from_secs(30),
            resumable: None,
            local_root: None,
            admin_secret: None,
        })
    }

    /// Limits requests to `per_sec` a second per user (and per address without credentials).
    pub fn with_rate_limit(mut self, per_sec: Option<u32>) -> Self {
        self.rate_limit = per_sec;
        self.limiter = per_sec.map(ratelimit::RateLimiter::new);
        self
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The default API mount point, and what a client given a bare origin assumes.
pub const DEFAULT_API_PREFIX: &str = "/api";

/// Checks an API mount path: `/` followed by one or more `/`-separated segments of
/// `A-Z a-z 0-9 - . _ ~` (no empty, `.` or `..` segment, no trailing slash). The root itself
/// is refused: clients read a bare origin as `<origin>/api` (docs/protocol.md, "API root").
pub fn api_prefix(p: &str) -> Result<Arc<str>, String> {
    let segs = p.strip_prefix('/').map(|r| r.split('/').collect::<Vec<_>>()).unwrap_or_default();
    let seg_ok = |s: &&str| {
        !s.is_empty() && *s != "." && *s != ".." && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    };
    if segs.is_empty() || !segs.iter().all(seg_ok) {
        return Err(format!(
            "API prefix {p:?} must be a path like /api or /v2/media-sync: segments of A-Z a-z 0-9 - . _ ~, \
             no trailing slash, not / alone (clients read a bare origin as <origin>/api)"
        ));
    }
    Ok(p.into())
}

/// How long browsers may cache a CORS preflight answer.
pub const CORS_MAX_AGE_SECS: u64 = 600;

/// The router with every protocol endpoint. `cors_origins` lists the browser origins allowed
/// to call it (e.g. the demo page); empty means same-origin only.
pub fn router(state: AppState, cors_origins: &[String]) -> Router {
    let prefix = state.api_prefix.clone();
    let at = |path: &str| format!("{prefix}{path}");
    let authed = Router::new()
        .route(&at("/media/assets"), get(api::list).post(api::upload))
        .route(&at("/media/assets/{id}"), get(api::download).delete(api::delete))
        .route(&at("/media/assets/{id}/metadata"), get(api::get_meta).patch(api::patch_meta))
        .route(&at("/media/assets/{id}/thumbnail"), get(api::thumbnail))
        .route(&at("/media/changes"), get(api::changes));
    // Off: no routes, so the endpoints answer like any unknown path (404 UNKNOWN_ENDPOINT).
    let authed = match state.resumable {
        None => authed,
        Some(_) => authed.route(&at("/media/uploads"), post(resumable::create)).route(
            &at("/media/uploads/{id}"),
            get(resumable::offset).patch(resumable::append).delete(resumable::cancel),
        ),
    }
    // Credentials and the rate limit apply to matched routes only: capabilities, unknown
    // paths and wrong methods are never limited.
    // The gate (outermost) authenticates; then `admit` decides the library (a space's
    // membership).
    .route_layer(axum::middleware::from_fn_with_state(state.clone(), library::admit))
    .route_layer(axum::middleware::from_fn_with_state(state.clone(), ratelimit::gate));
    let admin = match state.admin_secret {
        None => Router::new(),
        Some(_) => Router::new()
            .route(&at("/admin/spaces/{space}/members"), get(admin::list))
            .route(&at("/admin/spaces/{space}/members/{user}"), axum::routing::put(admin::add).delete(admin::remove)),
    };
    let spaces = state.admin_secret.is_some();
    let api = Router::new()
        .route(&at("/media/capabilities"), get(api::capabilities))
        .merge(authed)
        .merge(admin)
        .fallback(|| async {
            error::ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "UNKNOWN_ENDPOINT",
                "no such endpoint; check the API root",
            )
            .into_response()
        })
        .method_not_allowed_fallback(|| async {
            error::ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "this endpoint does not take that method",
            )
            .into_response()
        })
        // Uploads stream and enforce their own limit; JSON bodies stay small.
        .layer(DefaultBodyLimit::max(body::JSON_MAX_BYTES))
        .with_state(state);
    let allow = if cors_origins.iter().any(|o| o == "*") {
        // Test harnesses serve pages from random ports; `*` echoes any origin back.
        // Never use it with real credentials: any site could then call the API as the user.
        AllowOrigin::mirror_request()
    } else {
        AllowOrigin::list(cors_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    let cors = CorsLayer::new()
        .allow_origin(allow)
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE, Method::HEAD, Method::PUT])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            header::RANGE,
            HeaderName::from_static("x-asset-id"),
            HeaderName::from_static("x-asset-name"),
            HeaderName::from_static("x-asset-tags"),
            HeaderName::from_static("x-asset-created-at"),
            HeaderName::from_static("x-content-sha256"),
            HeaderName::from_static("upload-offset"),
            HeaderName::from_static("content-digest"),
        ])
        .expose_headers([
            header::ETAG,
            header::CONTENT_RANGE,
            header::RETRY_AFTER,
            header::CONTENT_DISPOSITION,
            header::LOCATION,
            HeaderName::from_static("upload-offset"),
        ])
        .max_age(Duration::from_secs(CORS_MAX_AGE_SECS));
    let plain = api
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")));
    let with_cors = plain.clone().layer(cors);
    // The CORS layer answers every OPTIONS as a preflight; one without `Origin` and
    // `Access-Control-Request-Method` is an ordinary request: 405 (with `Allow`) or 404.
    let split = tower::service_fn(move |mut req: axum::extract::Request| {
        // A preflight is answered whatever its path (a malformed space id included).
        if spaces && !is_preflight(&req) {
            match space_route(&prefix, &mut req) {
                Ok(()) => {}
                Err(e) => return futures::future::Either::Left(async move { Ok(library::refuse(req, e).await) }),
            }
        }
        let svc = if is_preflight(&req) || req.method() != Method::OPTIONS { with_cors.clone() } else { plain.clone() };
        futures::future::Either::Right(svc.oneshot(req).map_ok(refused_origin_gets_nothing))
    });
    Router::new().fallback_service(split).layer(TraceLayer::new_for_http())
}

/// A space's media request (`<prefix>/spaces/<id>/media/...`) is served by the per-user route
/// it mirrors, with the space in its extensions; a malformed space id is `400 INVALID_SPACE_ID`.
fn space_route(prefix: &str, req: &mut axum::extract::Request) -> Result<(), error::ApiError> {
    match library::route(prefix, req.uri().path()) {
        library::Route::AsIs => Ok(()),
        library::Route::BadId => Err(library::bad_space_id()),
        library::Route::Space { id, path } => {
            let pq = match req.uri().query() {
                Some(q) => format!("{path}?{q}"),
                None => path,
            };
            let mut parts = req.uri().clone().into_parts();
            parts.path_and_query = Some(pq.parse().map_err(|_| library::bad_space_id())?);
            *req.uri_mut() = axum::http::Uri::from_parts(parts).map_err(|_| library::bad_space_id())?;
            req.extensions_mut().insert(id);
            Ok(())
        }
    }
}

/// Without `Access-Control-Allow-Origin` (a refused origin, or CORS off) no other
/// `Access-Control-Allow-*` header is sent either (docs/protocol.md, "Safe serving").
fn refused_origin_gets_nothing(mut res: axum::response::Response) -> axum::response::Response {
    let h = res.headers_mut();
    if !h.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        for name in [
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            header::ACCESS_CONTROL_ALLOW_METHODS,
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            header::ACCESS_CONTROL_MAX_AGE,
        ] {
            h.remove(name);
        }
    }
    res
}

/// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
pub fn is_preflight<B>(req: &axum::http::Request<B>) -> bool {
    req.method() == Method::OPTIONS
        && req.headers().contains_key(header::ORIGIN)
        && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

#[cfg(test)]
mod tests {
    use super::api_prefix;

    #[test]
    fn api_prefixes() {
        for ok in ["/api", "/v2/media-sync", "/a.b_c~d"] {
            assert_eq!(&*api_prefix(ok).unwrap(), ok);
        }
        for bad in ["", "/", "api", "/api/", "//api", "/a//b", "/a/../b", "/.", "/a b", "/a%20", "/ä"] {
            assert!(api_prefix(bad).is_err(), "{bad:?} accepted");
        }
    }
}
