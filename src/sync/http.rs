//! The HTTP edge of the sync service: `fetch` (page or worker), auth, timeouts, aborts.
//! Request and response *meaning* lives in `protocol`; this only moves bytes.

use js_sys::Uint8Array;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Blob, Headers, RequestCredentials, RequestInit, Response};

use super::protocol::HttpRequest;
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

/// A response, read.
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `Retry-After` in seconds.
    pub retry_after: Option<u64>,
    /// The response, body unread (for downloads) ...
    pub response: Response,
    /// Forwards an outside abort to this request while the body is read.
    _abort: Option<AbortLink>,
}

/// An `abort` listener on the caller's signal, removed (and its closure freed) with the reply,
/// so a long-lived signal does not collect one listener per request ever sent.
struct AbortLink {
    signal: web_sys::AbortSignal,
    forward: Closure<dyn FnMut()>,
}

impl Drop for AbortLink {
    fn drop(&mut self) {
        let _ = platform::call(&self.signal, "removeEventListener", &[&"abort".into(), self.forward.as_ref()]);
    }
}

impl Reply {
    /// ... or read into memory (small JSON bodies only).
    pub async fn bytes(&self) -> Result<Vec<u8>, JsValue> {
        let buf = JsFuture::from(self.response.array_buffer()?).await?;
        Ok(Uint8Array::new(&buf).to_vec())
    }
}

/// `fetch(base + req.path)` with `auth` as a bearer token and `body` (a Blob streamed by the
/// browser, never copied into WASM memory). `Err` is a network failure, timeout or abort.
pub async fn send(
    ep: &Endpoint,
    req: &HttpRequest,
    auth: Option<&str>,
    body: Option<(&Blob, &str)>,
    abort: Option<&web_sys::AbortSignal>,
) -> Result<Reply, JsValue> {
    let global = platform::global();
    if !platform::has_method(&global, "fetch") {
        return Err(js_sys::Error::new("fetch() is not available in this context").into());
    }
    let headers = Headers::new()?;
    for (k, v) in &ep.headers {
        headers.set(k, v)?;
    }
    for (k, v) in &req.headers {
        headers.set(k, v)?;
    }
    if let Some(token) = auth {
        headers.set("Authorization", &format!("Bearer {token}"))?;
    }
    let init = RequestInit::new();
    init.set_method(req.method);
    init.set_headers(&headers);
    if let Some(c) = ep.credentials {
        init.set_credentials(c);
    }
    let mut mb = 0.0;
    match (&req.body, body) {
        (super::protocol::Body::Json(text), _) => init.set_body(&JsValue::from_str(text)),
        (_, Some((blob, mime))) => {
            headers.set("Content-Type", mime)?;
            mb = blob.size() / 1e6;
            init.set_body(blob);
        }
        _ => {}
    }
    // Our own controller carries the timeout; an outside abort is forwarded to it.
    let ctl = AbortController::new()?;
    init.set_signal(Some(&ctl.signal()));
    let link = match abort {
        Some(outer) if outer.aborted() => {
            return Err(web_sys::DomException::new_with_message_and_name("aborted", "AbortError")?.into());
        }
        Some(outer) => {
            let ctl2 = ctl.clone();
            let forward = Closure::<dyn FnMut()>::new(move || ctl2.abort());
            let _ = platform::call(outer, "addEventListener", &[&"abort".into(), forward.as_ref()]);
            Some(AbortLink { signal: outer.clone(), forward })
        }
        None => None,
    };
    let timeout = f64::from(ep.timeout_ms) + mb * TIMEOUT_PER_MB_MS;
    let timer = platform::set_timeout(timeout, {
        let ctl = ctl.clone();
        move || ctl.abort()
    });
    let url = format!("{}{}", ep.base_url, req.path);
    let result = platform::call_async(&global, "fetch", &[&JsValue::from_str(&url), &init]).await;
    platform::clear_timeout(timer);
    let response: Response = result?.dyn_into()?;
    let retry_after = response.headers().get("Retry-After").ok().flatten().and_then(|v| v.trim().parse::<u64>().ok());
    Ok(Reply { status: response.status(), retry_after, response, _abort: link })
}
