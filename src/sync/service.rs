//! The browser side of sync: drives the sans-IO `engine` with real I/O. It loads the engine
//! from the catalog, feeds it local changes (the persistent outbox, announced over the
//! library's BroadcastChannel), sends its requests with `fetch`, writes its decisions back
//! to the catalog, and reports status to the app and to other contexts.
//!
//! One leader per library and user (Web Locks); other contexts follow: they see status over
//! the BroadcastChannel, ask the leader to sync, and can download bytes themselves.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;

use futures_channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures_channel::oneshot;
use futures_util::future::LocalBoxFuture;
use js_sys::{Function, Promise};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{AbortController, BroadcastChannel};

use super::engine::{self, SyncError};
use super::http::Endpoint;
use crate::asset::{MediaAsset, StorageKind, SyncStatus};
use crate::error::LibraryError;
use crate::platform;
use crate::store::synced::Downloader;
use crate::store::{open_channel, Library};

mod channel;
mod download;
mod leader;
mod progress;
mod state;
mod transfer;
mod upload;
mod writeback;

use channel::Wire;
use leader::run;
use state::Completion;

/// When downloads happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DownloadPolicy {
    /// On demand (`getAssetFile`, `downloadAsset`).
    Lazy,
    /// As soon as a remote asset appears.
    Eager,
}

/// Everything the service is configured with.
pub struct ServiceConfig {
    /// Where the server is, and fetch options.
    pub endpoint: Endpoint,
    /// `() => string | null | Promise<string | null>`: the signed-in user, `null` when signed out.
    pub get_user_id: Function,
    /// `() => string | null | Promise<...>`: a bearer token for the requests.
    pub get_auth_token: Option<Function>,
    /// When to download bytes of remote assets.
    pub download_policy: DownloadPolicy,
    /// Engine tuning (concurrency, backoff).
    pub engine: engine::Config,
    /// A full check of the server and the outbox this often (ms).
    pub poll_interval_ms: f64,
    /// Start syncing right away.
    pub auto_sync: bool,
    /// `(local, remote) => 'local' | 'remote' | { name?, tags? }` for metadata conflicts.
    pub conflict_resolver: Option<Function>,
}

/// Why a service call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ServiceError {
    /// A local library failure.
    #[error(transparent)]
    Library(#[from] LibraryError),
    /// No response (offline, DNS, CORS, timeout).
    #[error("the server could not be reached ({0}); the change is kept and retried when the network is back")]
    Network(String),
    /// The server answered with an error.
    #[error("the server refused the request: HTTP {status} {code}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Protocol error code.
        code: String,
    },
    /// The server refuses this API root for the user: `403 NOT_A_MEMBER` (not, or no longer,
    /// a member of the space) or `400 INVALID_SPACE_ID`. Sync of this library stops; nothing
    /// local is deleted.
    #[error("the server refuses this user at {root} (HTTP {status} {code}): sync of this library stopped; its local copies and unsynced imports are kept. Delete them with the library's own calls if the app wants them gone; start() or syncNow() tries again (after the user was added back)")]
    Refused {
        /// The API root refused (the space's root).
        root: String,
        /// HTTP status.
        status: u16,
        /// `NOT_A_MEMBER` or `INVALID_SPACE_ID`.
        code: String,
    },
    /// `getUserId()` returned null: sync waits for a sign-in.
    #[error("no user is signed in (getUserId() returned null); local changes are kept and sync when a user signs in")]
    NotSignedIn,
    /// A callback the app passed threw or returned the wrong type.
    #[error("{0}")]
    Callback(String),
    /// The service was disposed.
    #[error("this MediaSyncService was disposed; create a new one")]
    Disposed,
}

impl ServiceError {
    /// The stable JS `Error.name`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Library(e) => e.name(),
            Self::Network(_) => "NetworkError",
            Self::Server { .. } => "ServerError",
            Self::Refused { code, .. } if code == "INVALID_SPACE_ID" => "InvalidSpaceError",
            Self::Refused { .. } => "NotAMemberError",
            Self::NotSignedIn => "NotSignedInError",
            Self::Callback(_) => "InvalidInputError",
            Self::Disposed => "InvalidStateError",
        }
    }

    /// The stable JS `code`.
    pub fn code(&self) -> String {
        match self {
            Self::Library(e) => e.code().to_owned(),
            Self::Network(_) => "NETWORK".into(),
            Self::Server { code, .. } | Self::Refused { code, .. } => code.clone(),
            Self::NotSignedIn => "NOT_SIGNED_IN".into(),
            Self::Callback(_) => "BAD_CALLBACK".into(),
            Self::Disposed => "DISPOSED".into(),
        }
    }
}

/// What waiters inside this context are told.
#[derive(Clone, Debug)]
enum Note {
    Status {
        id: String,
        status: SyncStatus,
        error: Option<SyncError>,
    },
    Idle {
        tokens: Vec<String>,
    },
    /// A leadership round ended with `error` before these `syncNow` calls were served.
    Failed {
        tokens: Vec<String>,
        error: ServiceError,
    },
    Closed,
}

/// The running service (shared by the JS object, the loop and in-flight requests).
pub struct Service {
    cfg: ServiceConfig,
    lib: Rc<Library>,
    events: web_sys::EventTarget,
    wake: UnboundedSender<()>,
    wake_rx: RefCell<Option<UnboundedReceiver<()>>>,
    completions: RefCell<Vec<Completion>>,
    dirty_ids: RefCell<BTreeSet<String>>,
    full_refresh: Cell<bool>,
    pull_requested: Cell<bool>,
    /// Tokens of `syncNow` calls (local and from followers) not yet served.
    sync_tokens: RefCell<Vec<String>>,
    running: Cell<bool>,
    /// Sync until idle once, without `start()` (a manual `syncNow`).
    once: Cell<bool>,
    disposed: Cell<bool>,
    leading: Cell<bool>,
    /// What the server's capabilities say about uploads, once read.
    limits: RefCell<transfer::UploadLimits>,
    /// Byte progress of uploads and downloads (the `progress` event).
    transfers: RefCell<progress::Transfers>,
    generation: Cell<u64>,
    waiters: RefCell<Vec<Waiter>>,
    channel: Option<BroadcastChannel>,
    /// Aborts every request of the current leadership.
    aborter: RefCell<Option<AbortController>>,
    /// Closures registered on globals, removed on dispose.
    listeners: RefCell<Vec<Listener>>,
}

type Shared = Rc<Service>;
type Waiter = Box<dyn FnMut(&Note) -> bool>;
/// A listener on a global target: (target, event type, callback).
type Listener = (JsValue, &'static str, Closure<dyn FnMut(JsValue)>);

impl Service {
    /// Creates the service on `lib`, reporting on `events`, and starts its loop (syncing if `auto_sync`).
    pub fn spawn(cfg: ServiceConfig, lib: Rc<Library>, events: web_sys::EventTarget) -> Shared {
        let (wake, wake_rx) = unbounded();
        let channel = open_channel(lib.name());
        let running = cfg.auto_sync;
        let svc = Rc::new(Service {
            cfg,
            lib,
            events,
            wake,
            wake_rx: RefCell::new(Some(wake_rx)),
            completions: RefCell::new(Vec::new()),
            dirty_ids: RefCell::new(BTreeSet::new()),
            full_refresh: Cell::new(true),
            pull_requested: Cell::new(true),
            sync_tokens: RefCell::new(Vec::new()),
            running: Cell::new(running),
            once: Cell::new(false),
            disposed: Cell::new(false),
            leading: Cell::new(false),
            limits: RefCell::new(Default::default()),
            transfers: RefCell::new(Default::default()),
            generation: Cell::new(0),
            waiters: RefCell::new(Vec::new()),
            channel,
            aborter: RefCell::new(None),
            listeners: RefCell::new(Vec::new()),
        });
        svc.install_listeners();
        svc.lib.set_downloader(Some(svc.as_downloader()));
        spawn_local(run(svc.clone()));
        svc
    }

    fn as_downloader(self: &Rc<Self>) -> std::rc::Weak<dyn Downloader> {
        let me: Rc<dyn Downloader> = self.clone();
        Rc::downgrade(&me)
    }

    /// The target apps listen on (`statuschange`, `progress`, `conflict`, `error`, `idle`).
    pub fn events(&self) -> &web_sys::EventTarget {
        &self.events
    }

    /// Whether this context is the one syncing right now.
    pub fn is_leader(&self) -> bool {
        self.leading.get()
    }

    /// Starts background sync.
    pub fn start(&self) {
        self.running.set(true);
        self.pull_requested.set(true);
        self.kick();
    }

    /// Stops background sync after aborting requests in flight (their ops stay queued).
    pub fn stop(&self) {
        self.running.set(false);
        self.once.set(false);
        if let Some(a) = self.aborter.borrow().as_ref() {
            a.abort();
        }
        self.kick();
    }

    /// Stops for good and releases everything.
    pub fn dispose(self: &Rc<Self>) {
        self.stop();
        self.disposed.set(true);
        self.lib.unset_downloader(&self.as_downloader());
        for (target, kind, cb) in self.listeners.borrow_mut().drain(..) {
            let _ = platform::call(&target, "removeEventListener", &[&kind.into(), cb.as_ref()]);
        }
        if let Some(ch) = &self.channel {
            ch.close();
        }
        self.notify(&Note::Closed);
        self.kick();
    }

    fn kick(&self) {
        let _ = self.wake.unbounded_send(());
    }

    fn check_alive(&self) -> Result<(), ServiceError> {
        if self.disposed.get() {
            Err(ServiceError::Disposed)
        } else {
            Ok(())
        }
    }

    /// Syncs everything pending and pulls remote changes; resolves when done (in whichever
    /// context leads), or with the first permanent failure of the pull.
    pub async fn sync_now(self: &Rc<Self>) -> Result<(), ServiceError> {
        self.check_alive()?;
        if self.user_id().await?.is_none() {
            return Err(ServiceError::NotSignedIn);
        }
        let token = platform::new_asset_id();
        let rx = self.wait_for({
            let token = token.clone();
            move |n| match n {
                Note::Idle { tokens } if tokens.contains(&token) => Some(Ok(())),
                Note::Failed { tokens, error } if tokens.contains(&token) => Some(Err(error.clone())),
                Note::Closed => Some(Err(ServiceError::Disposed)),
                _ => None,
            }
        });
        self.sync_tokens.borrow_mut().push(token.clone());
        self.post(&Wire::SyncNow { token });
        if !self.running.get() {
            self.once.set(true);
        }
        self.pull_requested.set(true);
        self.full_refresh.set(true);
        self.kick();
        rx.await.unwrap_or(Err(ServiceError::Disposed))
    }

    /// Uploads one asset (if it is not on the server yet) and resolves with its record.
    pub async fn upload(self: &Rc<Self>, id: &str) -> Result<MediaAsset, ServiceError> {
        self.check_alive()?;
        let asset = self.lib.get(id).await?;
        if asset.sync_status == SyncStatus::Synced && asset.cloud_version.is_some() {
            return Ok(asset);
        }
        if self.user_id().await?.is_none() {
            return Err(ServiceError::NotSignedIn);
        }
        let want = asset.id.clone();
        let rx = self.wait_for(move |n| match n {
            Note::Status { id, status: SyncStatus::Synced, .. } if *id == want => Some(Ok(())),
            Note::Status { id, status: SyncStatus::Error, error } if *id == want => {
                let e = error.clone().unwrap_or(SyncError { status: 0, code: "UNKNOWN".into() });
                Some(Err(ServiceError::Server { status: e.status, code: e.code }))
            }
            Note::Closed => Some(Err(ServiceError::Disposed)),
            _ => None,
        });
        // Synced between the first read and registering the waiter?
        let now = self.lib.get(id).await?;
        if now.sync_status == SyncStatus::Synced && now.cloud_version.is_some() {
            return Ok(now);
        }
        if now.sync_status == SyncStatus::Error {
            // Ask again: an explicit upload retries a failed asset.
            self.lib.update(id, Default::default()).await?;
        }
        self.dirty_ids.borrow_mut().insert(now.id.clone());
        self.post(&Wire::SyncNow { token: String::new() });
        if !self.running.get() {
            self.once.set(true);
        }
        self.kick();
        rx.await.unwrap_or(Err(ServiceError::Disposed))?;
        Ok(self.lib.get(id).await?)
    }

    /// Downloads (and verifies) the bytes of a remote-only asset; a no-op if they are here.
    pub async fn download_asset(self: &Rc<Self>, id: &str) -> Result<MediaAsset, ServiceError> {
        self.check_alive()?;
        let asset = self.lib.get(id).await?;
        if asset.storage != StorageKind::Remote {
            return Ok(asset);
        }
        let stored = download::fetch(self, &asset).await;
        if let Err(ServiceError::Library(e)) = &stored {
            self.emit("error", &error_detail(Some(&asset.id), &ServiceError::Library(e.clone())));
        }
        stored
    }

    /// Frees the local copies of synced assets, except pinned ones; returns how many were
    /// freed. A plain pass over the library: unlike the budget's eviction (`evict()`) it does
    /// not wait for readers in other contexts.
    pub async fn free_local_copies(&self) -> Result<u32, ServiceError> {
        let pinned: BTreeSet<String> = self.lib.pinned_ids().await?.into_iter().collect();
        let mut n = 0;
        for a in self.lib.list(&Default::default()).await? {
            if !pinned.contains(&a.id) && self.lib.free_local_copy(&a.id).await? {
                n += 1;
            }
        }
        Ok(n)
    }

    async fn user_id(&self) -> Result<Option<String>, ServiceError> {
        call_string(&self.cfg.get_user_id, "getUserId").await
    }

    async fn auth_token(&self) -> Result<Option<String>, ServiceError> {
        match &self.cfg.get_auth_token {
            Some(f) => call_string(f, "getAuthToken").await,
            None => Ok(None),
        }
    }

    fn wait_for(
        &self,
        mut pick: impl FnMut(&Note) -> Option<Result<(), ServiceError>> + 'static,
    ) -> oneshot::Receiver<Result<(), ServiceError>> {
        let (tx, rx) = oneshot::channel();
        let mut tx = Some(tx);
        self.waiters.borrow_mut().push(Box::new(move |n| match pick(n) {
            Some(r) => {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(r);
                }
                true
            }
            None => false,
        }));
        rx
    }

    fn notify(&self, note: &Note) {
        let mut ws = std::mem::take(&mut *self.waiters.borrow_mut());
        ws.retain_mut(|w| !w(note));
        let mut cur = self.waiters.borrow_mut();
        ws.append(&mut cur);
        *cur = ws;
    }

    fn post(&self, msg: &Wire) {
        if let (Some(ch), Ok(text)) = (&self.channel, serde_json::to_string(msg)) {
            let _ = ch.post_message(&JsValue::from_str(&text));
        }
    }

    fn emit(&self, kind: &str, detail: &JsValue) {
        platform::dispatch(&self.events, kind, detail);
    }

    /// Reports a status change here: the `statuschange` event and this context's waiters
    /// (other contexts hear of it from the write-back's `Wire::Statuses`).
    fn status_changed(&self, id: &str, status: SyncStatus, error: Option<SyncError>) {
        let detail = serde_json::json!({ "id": id, "status": status, "error": error });
        self.emit("statuschange", &json_to_js(&detail));
        self.notify(&Note::Status { id: id.to_owned(), status, error });
    }

    fn wants_to_sync(&self) -> bool {
        !self.disposed.get() && (self.running.get() || self.once.get())
    }
}

impl Downloader for Service {
    fn download(self: Rc<Self>, id: String) -> LocalBoxFuture<'static, Result<(), LibraryError>> {
        Box::pin(async move {
            match self.download_asset(&id).await {
                Ok(_) => Ok(()),
                Err(ServiceError::Library(e)) => Err(e),
                Err(e) => Err(LibraryError::DownloadFailed { id, reason: e.to_string() }),
            }
        })
    }
}

async fn call_string(f: &Function, what: &str) -> Result<Option<String>, ServiceError> {
    let v = f
        .call0(&JsValue::UNDEFINED)
        .map_err(|e| ServiceError::Callback(format!("{what}() threw: {}", platform::error_parts(&e).1)))?;
    let v = JsFuture::from(Promise::resolve(&v))
        .await
        .map_err(|e| ServiceError::Callback(format!("{what}() rejected: {}", platform::error_parts(&e).1)))?;
    if v.is_null() || v.is_undefined() {
        return Ok(None);
    }
    match v.as_string() {
        Some(s) if !s.is_empty() => Ok(Some(s)),
        _ => Err(ServiceError::Callback(format!("{what}() must return a non-empty string or null, got {v:?}"))),
    }
}

fn json_to_js(v: &serde_json::Value) -> JsValue {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).unwrap_or(JsValue::NULL)
}

fn error_detail(id: Option<&str>, e: &ServiceError) -> JsValue {
    json_to_js(&serde_json::json!({ "id": id, "name": e.name(), "code": e.code(), "message": e.to_string() }))
}
