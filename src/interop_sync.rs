//! The JS-facing `MediaSyncService` (`#[wasm_bindgen]`): option parsing, promise plumbing
//! and error conversion over `sync::service`, nothing else.

use std::rc::Rc;

use futures_util::future::{select, Either, FutureExt, LocalBoxFuture, Shared};
use js_sys::{Function, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{AbortSignal, RequestCredentials};

use crate::interop::{default_library, id_arg, open_library, to_js, to_js_error, LibraryOptions};
use crate::platform;
use crate::sync::engine;
use crate::sync::http::Endpoint;
use crate::sync::service::{DownloadPolicy, Service, ServiceConfig, ServiceError};
use crate::validate::ValidationError;

#[wasm_bindgen(typescript_custom_section)]
const SYNC_OPTIONS_TS: &str = r#"
/** Options for `new MediaSyncService(...)`. */
export interface MediaSyncOptions {
    /**
     * The API root: requests go to `<apiBaseUrl>/media/...`. `'/api'` (same origin, as in the
     * seed), `'https://media.example.com/api'`, or a bare origin, `'https://media.example.com'`,
     * which means `<origin>/api`. Relative URLs resolve against the page (or worker) URL.
     */
    apiBaseUrl: string;
    /** The signed-in user's id, or `null` when signed out (imports still work; sync waits). */
    getUserId: () => string | null | Promise<string | null>;
    /** Start background sync at once (default `true`). */
    autoSync?: boolean;
    /** A bearer token for each request (`Authorization: Bearer <token>`), or `null`. */
    getAuthToken?: () => string | null | Promise<string | null>;
    /** `fetch` options: `credentials` (`'include'` for cookie sessions) and extra `headers`. */
    fetchOptions?: { credentials?: "omit" | "same-origin" | "include"; headers?: Record<string, string> };
    /** `'lazy'` (default): bytes of remote assets download on demand; `'eager'`: at once. */
    downloadPolicy?: "lazy" | "eager";
    /** Most asset requests in flight at once (default 4). */
    concurrency?: number;
    /** Backoff of retried requests: first delay and cap in ms (defaults 1000 and 60000). */
    retry?: { baseDelayMs?: number; maxDelayMs?: number };
    /** The library to sync (`MediaLibrary.open({ name })`); `default` if absent. */
    library?: string;
    /** How often to look for remote changes while idle, ms (default 30000). */
    pollIntervalMs?: number;
    /** Longest wait for a response, ms, plus 1 s per MB sent (default 30000). */
    timeoutMs?: number;
    /**
     * Settles a metadata conflict (both devices edited the same asset) instead of the default
     * last-writer-wins. Synchronous; should decide the same way on every device. Returning
     * anything else than `'local'`, `'remote'` or valid metadata (or throwing) uses the default.
     */
    conflictResolver?: (local: ConflictVersion, remote: ConflictVersion) => "local" | "remote" | { name?: string; tags?: string[] };
}

/** One side of a metadata conflict. */
export interface ConflictVersion {
    id: string;
    name: string;
    tags: string[];
    /** ms since the Unix epoch. */
    updatedAt: number;
    /** The server version this side is based on. */
    version?: number;
    /** Who made the remote change (the server's `updatedBy`, sent on a space's assets). */
    updatedBy?: string;
}

/**
 * The `error` event's `detail`, and what `syncNow` rejects with (as an `Error` with these
 * `name` and `code`). A space refusing this user stops sync: `name` is `NotAMemberError`
 * (`code` `NOT_A_MEMBER`, HTTP 403) or `InvalidSpaceError` (`INVALID_SPACE_ID`, HTTP 400);
 * local copies and unsynced imports are kept, and `start()` or `syncNow()` tries again.
 */
export interface SyncErrorDetail {
    /** The asset concerned, if any. */
    id?: string | null;
    name: "NotAMemberError" | "InvalidSpaceError" | "NetworkError" | "ServerError" | "NotSignedInError" | string;
    code: string;
    message: string;
}

/** The `detail` of a `progress` event: assets by status, and bytes moved. */
export interface SyncProgress {
    pending: number;
    syncing: number;
    synced: number;
    error: number;
    /** Operations waiting in the outbox. */
    queued: number;
    /** Bytes moved by this service's transfers so far (never decreases). */
    bytesLoaded: number;
    /** Bytes of those transfers in all (grows as transfers start). */
    bytesTotal: number;
    /** The transfers under way (a paused one stays listed until it finishes). */
    transfers: TransferProgress[];
}

/** One upload or download under way. `loaded` never decreases; the last event of a
 *  finished transfer has `loaded === total`. Large uploads count confirmed chunks. */
export interface TransferProgress {
    id: string;
    direction: "upload" | "download";
    loaded: number;
    total: number;
}

/** Options of `syncNow` / `uploadAsset` / `downloadAsset`. */
export interface SyncCallOptions {
    /** Stops waiting (rejects with `AbortError`); queued work stays queued. */
    signal?: AbortSignal;
}
"#;

const KNOWN: &[&str] = &[
    "apiBaseUrl",
    "getUserId",
    "autoSync",
    "getAuthToken",
    "fetchOptions",
    "downloadPolicy",
    "concurrency",
    "retry",
    "library",
    "pollIntervalMs",
    "timeoutMs",
    "conflictResolver",
];

fn bad(detail: impl Into<String>) -> JsValue {
    to_js_error(ValidationError::BadOptions { what: "sync options", detail: detail.into() }.into())
}

fn service_error(e: ServiceError) -> JsValue {
    let err = js_sys::Error::new(&e.to_string());
    err.set_name(e.name());
    let _ = Reflect::set(&err, &"code".into(), &e.code().into());
    err.into()
}

fn field(obj: &JsValue, key: &str) -> Option<JsValue> {
    let v = platform::get(obj, key);
    (!v.is_undefined() && !v.is_null()).then_some(v)
}

fn number(obj: &JsValue, key: &str, min: f64, max: f64) -> Result<Option<f64>, JsValue> {
    match field(obj, key) {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(n) if n.is_finite() && n >= min && n <= max => Ok(Some(n)),
            _ => Err(bad(format!("{key} must be a number from {min} to {max}"))),
        },
    }
}

fn parse(opts: &JsValue) -> Result<(ServiceConfig, Option<String>), JsValue> {
    if !opts.is_object() {
        return Err(bad("expected an object with apiBaseUrl and getUserId"));
    }
    let obj: &Object = opts.unchecked_ref();
    for key in Object::keys(obj).iter().filter_map(|k| k.as_string()) {
        if !KNOWN.contains(&key.as_str()) {
            return Err(bad(format!("unknown option {key:?} (known: {})", KNOWN.join(", "))));
        }
    }
    let base = field(opts, "apiBaseUrl").and_then(|v| v.as_string()).ok_or_else(|| bad("apiBaseUrl is required"))?;
    let base_url = resolve_base(&base)?;
    let get_user_id: Function = field(opts, "getUserId")
        .and_then(|v| v.dyn_into().ok())
        .ok_or_else(|| bad("getUserId must be a function returning the user id or null"))?;
    let get_auth_token = match field(opts, "getAuthToken") {
        None => None,
        Some(v) => Some(v.dyn_into::<Function>().map_err(|_| bad("getAuthToken must be a function"))?),
    };
    let conflict_resolver = match field(opts, "conflictResolver") {
        None => None,
        Some(v) => Some(v.dyn_into::<Function>().map_err(|_| bad("conflictResolver must be a function"))?),
    };
    let auto_sync = match field(opts, "autoSync") {
        None => true,
        Some(v) => v.as_bool().ok_or_else(|| bad("autoSync must be a boolean"))?,
    };
    let download_policy = match field(opts, "downloadPolicy").map(|v| v.as_string()) {
        None => DownloadPolicy::Lazy,
        Some(Some(p)) if p == "lazy" => DownloadPolicy::Lazy,
        Some(Some(p)) if p == "eager" => DownloadPolicy::Eager,
        Some(_) => return Err(bad("downloadPolicy must be \"lazy\" or \"eager\"")),
    };
    let mut credentials = None;
    let mut headers = Vec::new();
    if let Some(f) = field(opts, "fetchOptions") {
        credentials = match field(&f, "credentials").map(|v| v.as_string()) {
            None => None,
            Some(Some(c)) if c == "include" => Some(RequestCredentials::Include),
            Some(Some(c)) if c == "same-origin" => Some(RequestCredentials::SameOrigin),
            Some(Some(c)) if c == "omit" => Some(RequestCredentials::Omit),
            Some(_) => return Err(bad("fetchOptions.credentials must be \"omit\", \"same-origin\" or \"include\"")),
        };
        if let Some(h) = field(&f, "headers") {
            let h: &Object = h.unchecked_ref();
            for entry in Object::entries(h).iter() {
                let pair: js_sys::Array = entry.unchecked_into();
                match (pair.get(0).as_string(), pair.get(1).as_string()) {
                    (Some(k), Some(v)) => headers.push((k, v)),
                    _ => return Err(bad("fetchOptions.headers must map names to strings")),
                }
            }
        }
    }
    let mut engine = engine::Config::default();
    if let Some(n) = number(opts, "concurrency", 1.0, 64.0)? {
        engine.concurrency = n as usize;
    }
    if let Some(r) = field(opts, "retry") {
        if let Some(n) = number(&r, "baseDelayMs", 1.0, 3_600_000.0)? {
            engine.base_delay_ms = n as i64;
        }
        if let Some(n) = number(&r, "maxDelayMs", 1.0, 86_400_000.0)? {
            engine.max_delay_ms = n as i64;
        }
    }
    let library = match field(opts, "library") {
        None => None,
        Some(v) => Some(v.as_string().ok_or_else(|| bad("library must be a library name"))?),
    };
    let cfg = ServiceConfig {
        endpoint: Endpoint {
            base_url,
            credentials,
            headers,
            timeout_ms: number(opts, "timeoutMs", 100.0, 3_600_000.0)?.unwrap_or(30_000.0) as u32,
        },
        get_user_id,
        get_auth_token,
        download_policy,
        engine,
        poll_interval_ms: number(opts, "pollIntervalMs", 50.0, 86_400_000.0)?.unwrap_or(30_000.0),
        auto_sync,
        conflict_resolver,
    };
    Ok((cfg, library))
}

/// The absolute API root (`protocol::api_root`); relative URLs resolve against the page.
fn resolve_base(base: &str) -> Result<String, JsValue> {
    let here = platform::get(&platform::get(&platform::global(), "location"), "href").as_string();
    let url = match here {
        Some(h) => web_sys_url(base, Some(&h)),
        None => web_sys_url(base, None),
    }
    .ok_or_else(|| bad(format!("apiBaseUrl {base:?} is not a URL")))?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(bad(format!("apiBaseUrl must be an http(s) URL, not {base:?}")));
    }
    Ok(url)
}

fn web_sys_url(input: &str, base: Option<&str>) -> Option<String> {
    let ctor = platform::get(&platform::global(), "URL");
    let ctor: &Function = ctor.dyn_ref()?;
    let args: js_sys::Array = std::iter::once(JsValue::from_str(input)).chain(base.map(JsValue::from_str)).collect();
    let url = Reflect::construct(ctor, &args).ok()?;
    // Drop query and fragment: paths are appended to it.
    let origin = platform::get(&url, "origin").as_string()?;
    let path = platform::get(&url, "pathname").as_string()?;
    Some(crate::sync::protocol::api_root(&origin, &path))
}

type Ready = Shared<LocalBoxFuture<'static, Result<Rc<Service>, JsValue>>>;

/// Background sync of a local library with a server speaking the opfs-media protocol
/// (docs/protocol.md). Works in a page and in a dedicated worker; one instance per origin,
/// library and user syncs at a time (Web Locks), the others follow its status.
#[wasm_bindgen]
pub struct MediaSyncService {
    ready: Ready,
    events: web_sys::EventTarget,
}

fn signal_of(opts: &Option<JsValue>) -> Result<Option<AbortSignal>, JsValue> {
    match opts.as_ref().and_then(|o| field(o, "signal")) {
        None => Ok(None),
        Some(s) => s.dyn_into::<AbortSignal>().map(Some).map_err(|_| bad("signal must be an AbortSignal")),
    }
}

/// Runs `fut`, rejecting with `AbortError` as soon as `signal` aborts (the work itself goes on).
async fn abortable<T>(
    fut: impl std::future::Future<Output = Result<T, JsValue>>,
    signal: Option<AbortSignal>,
) -> Result<T, JsValue> {
    let Some(signal) = signal else { return fut.await };
    let aborted = || {
        let e = js_sys::Error::new("the wait was aborted; queued sync work continues in the background");
        e.set_name("AbortError");
        let _ = Reflect::set(&e, &"code".into(), &"ABORTED".into());
        JsValue::from(e)
    };
    if signal.aborted() {
        return Err(aborted());
    }
    let on_abort = js_sys::Promise::new(&mut |resolve, _| {
        let _ = platform::call(&signal, "addEventListener", &[&"abort".into(), &resolve]);
    });
    match select(Box::pin(fut), JsFuture::from(on_abort)).await {
        Either::Left((r, _)) => r,
        Either::Right(_) => Err(aborted()),
    }
}

#[wasm_bindgen]
impl MediaSyncService {
    /// Creates the service; with `autoSync` (default) it starts syncing in the background.
    /// Throws `InvalidInputError` (`INVALID_OPTIONS`) for bad options.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "MediaSyncOptions")] options: JsValue,
    ) -> Result<MediaSyncService, JsValue> {
        let (cfg, library) = parse(&options)?;
        let events = web_sys::EventTarget::new()?;
        let target = events.clone();
        let ready: Ready = async move {
            let lib = match library {
                None => default_library().await?,
                Some(name) => open_library(LibraryOptions { name: Some(name), ..Default::default() }).await?,
            };
            Ok(Service::spawn(cfg, lib, target))
        }
        .boxed_local()
        .shared();
        // Open now so errors surface as `error` events even if no method is ever called.
        let first = ready.clone();
        let target = events.clone();
        spawn_local(async move {
            if let Err(e) = first.await {
                platform::dispatch(&target, "error", &e);
            }
        });
        Ok(MediaSyncService { ready, events })
    }

    /// Starts background sync (triggers: start, `online`, page visible again, local changes, a timer).
    pub fn start(&self) {
        let ready = self.ready.clone();
        spawn_local(async move {
            if let Ok(s) = ready.await {
                s.start();
            }
        });
    }

    /// Stops background sync; requests in flight are aborted and stay queued.
    pub fn stop(&self) {
        let ready = self.ready.clone();
        spawn_local(async move {
            if let Ok(s) = ready.await {
                s.stop();
            }
        });
    }

    /// Stops for good and releases the lock, listeners and channel.
    pub fn dispose(&self) {
        let ready = self.ready.clone();
        spawn_local(async move {
            if let Ok(s) = ready.await {
                s.dispose();
            }
        });
    }

    /// Uploads what is pending and pulls remote changes; resolves when the syncing context
    /// (this one or the leader elsewhere) is idle. Rejects with `NotSignedInError` when signed out.
    #[wasm_bindgen(js_name = syncNow)]
    pub async fn sync_now(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "SyncCallOptions")] options: Option<JsValue>,
    ) -> Result<(), JsValue> {
        let signal = signal_of(&options)?;
        let ready = self.ready.clone();
        abortable(async move { ready.await?.sync_now().await.map_err(service_error) }, signal).await
    }

    /// Uploads one asset (an id or a `MediaAsset`) and resolves with its record once the
    /// server has it (`syncStatus: 'synced'`, `cloudId`, `cloudUrl`).
    #[wasm_bindgen(js_name = uploadAsset, unchecked_return_type = "MediaAsset")]
    pub async fn upload_asset(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | MediaAsset")] asset: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "SyncCallOptions")] options: Option<JsValue>,
    ) -> Result<JsValue, JsValue> {
        let id = match field(&asset, "id") {
            Some(id) if asset.is_object() => id_arg(&id)?,
            _ => id_arg(&asset)?,
        };
        let signal = signal_of(&options)?;
        let ready = self.ready.clone();
        abortable(
            async move {
                let a = ready.await?.upload(&id).await.map_err(service_error)?;
                to_js(&a)
            },
            signal,
        )
        .await
    }

    /// Downloads (verifying its SHA-256) the bytes of a remote-only asset into local storage.
    #[wasm_bindgen(js_name = downloadAsset, unchecked_return_type = "MediaAsset")]
    pub async fn download_asset(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "SyncCallOptions")] options: Option<JsValue>,
    ) -> Result<JsValue, JsValue> {
        let id = id_arg(&id)?;
        let signal = signal_of(&options)?;
        let ready = self.ready.clone();
        abortable(
            async move {
                let a = ready.await?.download_asset(&id).await.map_err(service_error)?;
                to_js(&a)
            },
            signal,
        )
        .await
    }

    /// Frees the local bytes of every synced asset (they download again on demand);
    /// resolves with how many were freed.
    #[wasm_bindgen(js_name = freeLocalCopies)]
    pub async fn free_local_copies(&self) -> Result<u32, JsValue> {
        self.ready.clone().await?.free_local_copies().await.map_err(service_error)
    }

    /// Whether this instance is the one syncing (holds the Web Lock) right now.
    #[wasm_bindgen(getter, js_name = isLeader)]
    pub fn is_leader(&self) -> bool {
        self.ready.peek().and_then(|r| r.as_ref().ok()).is_some_and(|s| s.is_leader())
    }

    /// Listens for `statuschange` ({ id, status, error }), `progress` (`SyncProgress`: counts
    /// by status, and bytes moved overall and per transfer), `conflict` ({ id, localWon }),
    /// `error` ({ id?, name, code, message }) and `idle`.
    #[wasm_bindgen(js_name = addEventListener)]
    pub fn add_event_listener(&self, kind: &str, listener: &Function) -> Result<(), JsValue> {
        self.events.add_event_listener_with_callback(kind, listener)
    }

    /// Stops listening.
    #[wasm_bindgen(js_name = removeEventListener)]
    pub fn remove_event_listener(&self, kind: &str, listener: &Function) -> Result<(), JsValue> {
        self.events.remove_event_listener_with_callback(kind, listener)
    }
}
