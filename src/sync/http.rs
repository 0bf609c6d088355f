//! The HTTP edge of the sync service: requests through gloo-net's `fetch` wrapper (page or
//! worker), plus what it leaves to us: auth, the timeout, forwarding an outside abort.
//! Request and response *meaning* lives in `protocol`; this only moves bytes.

use gloo_net::http::{Method, RequestBuilder, Response};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, AbortSignal, Blob, RequestCredentials};

use super::protocol::{Body, HttpRequest};
use crate::platform;

/// Where and how to send requests.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// The API root, without a trailing slash: requests go to `<base_url>/media/...`.
    pub base_url: String,
    /// `fetch` credentials mode (`include` for cookie sessions).
    pub credentials: Option<RequestCredentials>,
    /// Extra headers for every request.
    pub headers: Vec<(String, String)>,
    /// Longest wait for a response (ms), plus `timeout_per_mb_ms` per MB of body.
    pub timeout_ms: u32,
}

/// Milliseconds of extra timeout allowed per megabyte sent or expected (1 MB/s floor).
const TIMEOUT_PER_MB_MS: f64 = 1000.0;

/// Why a request got no HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The context has no `fetch` (feature-detected before any call).
    #[error("fetch() is not available in this context")]
    NoFetch,
    /// The caller's signal was aborted before the request started.
    #[error("aborted")]
    Aborted,
    /// A network failure, the timeout or an abort while in flight, or a body that could not
    /// be read: what the browser reported.
    #[error("{0}")]
    Fetch(#[from] gloo_net::Error),
    /// The browser refused to build the request (a header value, the method).
    #[error("could not build the request: {0}")]
    Build(String),
    /// The response's body could not be read to the end (the connection broke mid-body).
    #[error("reading the response failed: {0}")]
    Body(String),
}

impl From<JsValue> for HttpError {
    fn from(e: JsValue) -> Self {
        HttpError::Build(platform::error_parts(&e).1)
    }
}

/// A response, read.
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `Retry-After` in seconds.
    pub retry_after: Option<u64>,
    /// The response, body unread.
    response: Response,
    /// Forwards an outside abort to this request while the body is read.
    _abort: Option<AbortLink>,
}

/// An `abort` listener on the caller's signal, removed (and its closure freed) with the reply,
/// so a long-lived signal does not collect one listener per request ever sent.
struct AbortLink {
    signal: AbortSignal,
    forward: Closure<dyn FnMut()>,
}

impl Drop for AbortLink {
    fn drop(&mut self) {
        let _ = platform::call(&self.signal, "removeEventListener", &[&"abort".into(), self.forward.as_ref()]);
    }
}

impl Reply {
    /// The body in memory (small JSON bodies only).
    pub async fn bytes(&self) -> Result<Vec<u8>, HttpError> {
        Ok(self.response.binary().await?)
    }

    /// The body as a stream (large downloads: read chunk by chunk into storage). Keep the
    /// reply alive while reading: it forwards an outside abort.
    pub fn body_stream(&self) -> Option<web_sys::ReadableStream> {
        self.response.body()
    }

    /// A response header.
    pub fn header(&self, name: &str) -> Option<String> {
        self.response.headers().get(name)
    }

    /// The body as a `Blob` (downloads: the browser keeps the bytes, not WASM memory).
    pub async fn blob(self) -> Result<Blob, HttpError> {
        let Reply { response, _abort, .. } = self;
        let body = |e: JsValue| HttpError::Body(platform::error_parts(&e).1);
        let raw = web_sys::Response::from(response);
        let blob = JsFuture::from(raw.blob().map_err(body)?).await.map_err(body)?;
        Ok(blob.into())
    }
}

/// Whether the HTTP cache could answer a request with this method (so it is sent `no-store`).
fn uses_http_cache(method: &str) -> bool {
    matches!(method, "GET" | "HEAD")
}

/// Sends `req` to `<base_url><req.path>` with `auth` as a bearer token and `body` (a Blob the
/// browser streams, never copied into WASM memory). `Err` is a network failure, timeout or abort.
pub async fn send(
    ep: &Endpoint,
    req: &HttpRequest,
    auth: Option<&str>,
    body: Option<(&Blob, &str)>,
    abort: Option<&AbortSignal>,
) -> Result<Reply, HttpError> {
    // gloo-net calls the global `fetch` directly: a context without one would throw.
    if !platform::has_method(&platform::global(), "fetch") {
        return Err(HttpError::NoFetch);
    }
    if abort.is_some_and(AbortSignal::aborted) {
        return Err(HttpError::Aborted);
    }
    let method = Method::from_bytes(req.method.as_bytes()).map_err(|e| HttpError::Build(e.to_string()))?;
    let mut builder = RequestBuilder::new(&format!("{}{}", ep.base_url, req.path)).method(method);
    for (k, v) in ep
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(req.headers.iter().map(|(k, v)| (*k, v.as_str())))
    {
        builder = builder.header(k, v);
    }
    if let Some(token) = auth {
        builder = builder.header("Authorization", &format!("Bearer {token}"));
    }
    if let Some(c) = ep.credentials {
        builder = builder.credentials(c);
    }
    // The library stores what it downloads itself, and every other answer is state that must
    // be fresh: the HTTP cache would only hold a second copy of large files and, for a resumed
    // download, answer with its own conditional and range requests on top of ours. Only reads
    // say so: other methods are never served from the cache, and Chromium skips its CORS
    // preflight cache for a `no-store` request, which cost every cross-origin upload a
    // preflight round trip (1,000 uploads: 996 `OPTIONS` requests, the sync bench's server log).
    if uses_http_cache(req.method) {
        builder = builder.cache(web_sys::RequestCache::NoStore);
    }
    // Our own controller carries the timeout; an outside abort is forwarded to it.
    let ctl = AbortController::new()?;
    builder = builder.abort_signal(Some(&ctl.signal()));
    let link = abort.map(|outer| {
        let ctl2 = ctl.clone();
        let forward = Closure::<dyn FnMut()>::new(move || ctl2.abort());
        let _ = platform::call(outer, "addEventListener", &[&"abort".into(), forward.as_ref()]);
        AbortLink { signal: outer.clone(), forward }
    });
    let mut mb = 0.0;
    let request = match (&req.body, body) {
        (Body::Json(text), _) => builder.body(JsValue::from_str(text))?,
        (_, Some((blob, mime))) => {
            mb = blob.size() / 1e6;
            builder.header("Content-Type", mime).body(JsValue::from(blob.clone()))?
        }
        _ => builder.build()?,
    };
    let timeout = f64::from(ep.timeout_ms) + mb * TIMEOUT_PER_MB_MS;
    let timer = platform::set_timeout(timeout, {
        let ctl = ctl.clone();
        move || ctl.abort()
    });
    let result = request.send().await;
    platform::clear_timeout(timer);
    let response = result?;
    let retry_after = response.headers().get("Retry-After").and_then(|v| v.trim().parse::<u64>().ok());
    Ok(Reply { status: response.status(), retry_after, response, _abort: link })
}

#[cfg(test)]
mod tests {
    use super::uses_http_cache;

    #[test]
    fn only_reads_bypass_the_http_cache() {
        assert!(uses_http_cache("GET") && uses_http_cache("HEAD"));
        for m in ["POST", "PATCH", "DELETE", "PUT"] {
            assert!(!uses_http_cache(m), "{m}");
        }
    }
}
