//! The browser side of sync: drives the sans-IO `engine` with real I/O. It loads the engine
//! from the catalog, feeds it local changes (the persistent outbox, announced over the
//! library's BroadcastChannel), sends its requests with `fetch`, writes its decisions back
//! to the catalog, and reports status to the app and to other contexts.
//!
//! One leader per library and user (Web Locks); other contexts follow: they see status over
//! the BroadcastChannel, ask the leader to sync, and can download bytes themselves.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use futures_channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures_channel::oneshot;
use futures_util::future::{select, Either, LocalBoxFuture};
use futures_util::{FutureExt, StreamExt};
use js_sys::{Function, Promise};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{AbortController, BroadcastChannel, MessageEvent};

use super::bridge::{self, UserSyncState};
use super::engine::{self, Engine, Event, Outcome, Request, SyncError, SyncState};
use super::http::{self, Endpoint};
use super::protocol::{self, Body, WireAsset};
use crate::asset::{MediaAsset, StorageKind, SyncStatus};
use crate::error::LibraryError;
use crate::platform;
use crate::store::catalog::Batch;
use crate::store::checksum;
use crate::store::outbox::{OutboxEntry, OutboxOp};
use crate::store::synced::Downloader;
use crate::store::{open_channel, ChangeKind, Library};

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
            Self::Server { code, .. } => code.clone(),
            Self::NotSignedIn => "NOT_SIGNED_IN".into(),
            Self::Callback(_) => "BAD_CALLBACK".into(),
            Self::Disposed => "DISPOSED".into(),
        }
    }
}

/// What waiters inside this context are told.
#[derive(Clone, Debug)]
enum Note {
    Status { id: String, status: SyncStatus, error: Option<SyncError> },
    Idle { tokens: Vec<String> },
    Closed,
}

/// A message on the library's BroadcastChannel.
#[derive(Serialize, serde::Deserialize, Debug, Clone)]
#[serde(tag = "t", rename_all = "camelCase")]
enum Wire {
    Change {
        kind: String,
        id: String,
        #[serde(default)]
        sync: bool,
    },
    Status {
        id: String,
        status: SyncStatus,
        #[serde(default)]
        error: Option<SyncError>,
    },
    Idle {
        tokens: Vec<String>,
    },
    SyncNow {
        token: String,
    },
}

struct Completion {
    generation: u64,
    req: u64,
    outcome: Outcome,
    live: Vec<WireAsset>,
}

/// The leader's working state.
struct Leader {
    user: String,
    engine: Engine,
    /// The outbox tag of each op the engine has taken in (see `OutboxEntry::tag`).
    tags: HashMap<String, String>,
    /// Full server records of assets seen in pulls (for new local records).
    wires: HashMap<String, WireAsset>,
    /// Local records of assets the engine may upload: where their bytes are, so an upload
    /// opens them without a catalog read (which would queue behind our own writes).
    records: HashMap<String, MediaAsset>,
    /// Files of queued uploads, opened ahead of their request (see `prefetch`).
    opening: HashMap<String, OpenFile>,
    saved: UserSyncState,
    /// Records whose engine state is not written yet, and status changes not reported yet
    /// (both wait for the next `flush`).
    unsaved: BTreeSet<String>,
    unreported: Vec<(String, SyncStatus)>,
    last_flush: f64,
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
    /// The server's `maxUploadBytes` (capabilities), once read.
    max_upload: Cell<Option<f64>>,
    generation: Cell<u64>,
    waiters: RefCell<Vec<Waiter>>,
    channel: Option<BroadcastChannel>,
    /// Aborts every request of the current leadership.
    aborter: RefCell<Option<AbortController>>,
    /// Closures registered on globals, removed on dispose.
    listeners: RefCell<Vec<Listener>>,
}

type Shared = Rc<Service>;
/// An upload's file, opened (and hashed, for records imported without a checksum) ahead of
/// its request.
type OpenFile = futures_util::future::Shared<LocalBoxFuture<'static, Result<Opened, LibraryError>>>;
/// What an upload sends, read from its record.
#[derive(Clone)]
struct Opened {
    /// The stored bytes (not wrapped in a `File`: the headers carry name, type and time).
    body: web_sys::Blob,
    mime: String,
    created_at: f64,
    /// The checksum computed for it (`None`: the record has one).
    sha: Option<String>,
}
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
            max_upload: Cell::new(None),
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
        let req = protocol::HttpRequest {
            method: "GET",
            path: format!("/media/assets/{}", asset.id),
            headers: vec![],
            body: Body::Empty,
        };
        let token = self.auth_token().await?;
        let network = |e: http::HttpError| ServiceError::Network(e.to_string());
        let reply = http::send(&self.cfg.endpoint, &req, token.as_deref(), None, None).await.map_err(network)?;
        if reply.status != 200 {
            let body = reply.bytes().await.unwrap_or_default();
            let code = match protocol::outcome(&Request::Delete { id: asset.id.clone() }, reply.status, None, &body) {
                Outcome::Failed { code, .. } => code,
                _ => format!("HTTP_{}", reply.status),
            };
            return Err(ServiceError::Server { status: reply.status, code });
        }
        let blob = reply.blob().await.map_err(network)?;
        let stored = self.lib.store_download(&asset.id, &blob).await;
        if let Err(e) = &stored {
            self.emit("error", &error_detail(Some(&asset.id), &ServiceError::Library(e.clone())));
        }
        Ok(stored?)
    }

    /// Frees the local copies of synced assets; returns how many were freed.
    pub async fn free_local_copies(&self) -> Result<u32, ServiceError> {
        let mut n = 0;
        for a in self.lib.list(&Default::default()).await? {
            if self.lib.free_local_copy(&a.id).await? {
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
        let init = web_sys::CustomEventInit::new();
        init.set_detail(detail);
        if let Ok(ev) = web_sys::CustomEvent::new_with_event_init_dict(kind, &init) {
            let _ = self.events.dispatch_event(&ev);
        }
    }

    fn status_changed(&self, id: &str, status: SyncStatus, error: Option<SyncError>, broadcast: bool) {
        let detail = serde_json::json!({ "id": id, "status": status, "error": error });
        self.emit("statuschange", &json_to_js(&detail));
        self.notify(&Note::Status { id: id.to_owned(), status, error: error.clone() });
        if broadcast {
            self.post(&Wire::Status { id: id.to_owned(), status, error });
        }
    }

    fn install_listeners(self: &Rc<Self>) {
        let weak = Rc::downgrade(self);
        let on_message = Closure::<dyn FnMut(JsValue)>::new(move |ev: JsValue| {
            let Some(svc) = weak.upgrade() else { return };
            let Some(ev) = ev.dyn_ref::<MessageEvent>() else { return };
            let Some(text) = ev.data().as_string() else { return };
            let Ok(msg) = serde_json::from_str::<Wire>(&text) else { return };
            svc.on_wire(msg);
        });
        if let Some(ch) = &self.channel {
            let target: JsValue = ch.clone().into();
            let _ = platform::call(&target, "addEventListener", &[&"message".into(), on_message.as_ref()]);
            self.listeners.borrow_mut().push((target, "message", on_message));
        }
        // Triggers: back online, and a page becoming visible again.
        let weak = Rc::downgrade(self);
        let on_wake = Closure::<dyn FnMut(JsValue)>::new(move |_| {
            if let Some(svc) = weak.upgrade() {
                svc.pull_requested.set(true);
                svc.full_refresh.set(true);
                svc.kick();
            }
        });
        let global: JsValue = platform::global().into();
        let _ = platform::call(&global, "addEventListener", &[&"online".into(), on_wake.as_ref()]);
        let document = platform::get(&global, "document");
        if document.is_object() {
            let again = Closure::<dyn FnMut(JsValue)>::new({
                let weak = Rc::downgrade(self);
                move |_| {
                    if let Some(svc) = weak.upgrade() {
                        svc.pull_requested.set(true);
                        svc.kick();
                    }
                }
            });
            let _ = platform::call(&document, "addEventListener", &[&"visibilitychange".into(), again.as_ref()]);
            self.listeners.borrow_mut().push((document, "visibilitychange", again));
        }
        self.listeners.borrow_mut().push((global, "online", on_wake));
    }

    fn on_wire(&self, msg: Wire) {
        match msg {
            Wire::Change { id, sync, .. } => {
                if !sync {
                    self.dirty_ids.borrow_mut().insert(id);
                    self.kick();
                }
            }
            Wire::Status { id, status, error } => {
                if !self.leading.get() {
                    self.status_changed(&id, status, error, false);
                }
            }
            Wire::Idle { tokens } => {
                if !self.leading.get() {
                    self.notify(&Note::Idle { tokens });
                }
            }
            Wire::SyncNow { token } => {
                if self.leading.get() {
                    if !token.is_empty() {
                        self.sync_tokens.borrow_mut().push(token);
                    }
                    if !self.running.get() {
                        self.once.set(true);
                    }
                    self.pull_requested.set(true);
                    self.full_refresh.set(true);
                    self.kick();
                }
            }
        }
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

/// Asks the app's resolver; anything but a valid answer (a throw, a promise, a bad name)
/// falls back to last-writer-wins, so a buggy resolver can never stall sync.
fn resolve_with(f: &Function, local: &engine::LocalAsset, remote: &engine::RemoteAsset) -> engine::Resolution {
    let default = if (local.updated_at, &local.meta) > (remote.updated_at, &remote.meta) {
        engine::Resolution::Local
    } else {
        engine::Resolution::Remote
    };
    let side = |id: &str, m: &engine::Meta, at: i64, v: Option<i64>| {
        json_to_js(&serde_json::json!({ "id": id, "name": m.name, "tags": m.tags, "updatedAt": at, "version": v }))
    };
    let l = side(&local.id, &local.meta, local.updated_at, local.remote_version);
    let r = side(&remote.id, &remote.meta, remote.updated_at, Some(remote.version));
    let Ok(answer) = f.call2(&JsValue::UNDEFINED, &l, &r) else { return default };
    match answer.as_string().as_deref() {
        Some("local") => return engine::Resolution::Local,
        Some("remote") => return engine::Resolution::Remote,
        Some(_) => return default,
        None => {}
    }
    if !answer.is_object() || answer.is_instance_of::<Promise>() {
        return default;
    }
    let name = platform::get(&answer, "name").as_string().unwrap_or_else(|| local.meta.name.clone());
    let tags: Vec<String> = match platform::get(&answer, "tags") {
        t if t.is_undefined() => local.meta.tags.clone(),
        t => match serde_wasm_bindgen::from_value(t) {
            Ok(t) => t,
            Err(_) => return default,
        },
    };
    match (crate::validate::display_name(&name), crate::validate::tags(&tags)) {
        (Ok(name), Ok(tags)) => engine::Resolution::Merged(engine::Meta { name, tags }),
        _ => default,
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

/// Waits for a wake-up, or `ms` (if given). Returns `false` on a timeout.
async fn wait(rx: &mut UnboundedReceiver<()>, ms: Option<f64>) -> bool {
    match ms {
        None => rx.next().await.is_some(),
        Some(ms) => {
            let timer = platform::sleep(ms.max(0.0)).boxed_local();
            match select(rx.next(), timer).await {
                Either::Left((v, _)) => v.is_some(),
                Either::Right(_) => false,
            }
        }
    }
}

async fn run(svc: Shared) {
    let Some(mut rx) = svc.wake_rx.borrow_mut().take() else { return };
    while !svc.disposed.get() {
        // Drain wake-ups that piled up while we were busy.
        while rx.try_recv().is_ok() {}
        if !svc.wants_to_sync() {
            wait(&mut rx, None).await;
            continue;
        }
        let user = match svc.user_id().await {
            Ok(Some(u)) => u,
            Ok(None) => {
                // Signed out: imports still work; check again on the next trigger or tick.
                wait(&mut rx, Some(svc.cfg.poll_interval_ms)).await;
                continue;
            }
            Err(e) => {
                svc.emit("error", &error_detail(None, &e));
                wait(&mut rx, Some(svc.cfg.poll_interval_ms)).await;
                continue;
            }
        };
        let Some(release) = acquire_lock(&svc, &user, &mut rx).await else { continue };
        if let Err(e) = lead(&svc, &user, &mut rx).await {
            svc.emit("error", &error_detail(None, &e));
            wait(&mut rx, Some(svc.cfg.poll_interval_ms.min(5000.0))).await;
        }
        svc.leading.set(false);
        if let Some(a) = svc.aborter.borrow_mut().take() {
            a.abort();
        }
        let _ = release.call0(&JsValue::UNDEFINED);
    }
}

/// Becomes the leader for `user` (Web Locks); `None` if the wait was given up (stop, user
/// change). Without Web Locks every context leads: uploads are idempotent, so two syncers
/// cost requests but never duplicate or lose anything.
async fn acquire_lock(svc: &Shared, user: &str, rx: &mut UnboundedReceiver<()>) -> Option<Function> {
    let locks = platform::get(&platform::get(&platform::global(), "navigator"), "locks");
    if !platform::has_method(&locks, "request") {
        return Some(Function::new_no_args(""));
    }
    let mut resolve_acquired: Option<Function> = None;
    let acquired = Promise::new(&mut |res, _| resolve_acquired = Some(res));
    let mut resolve_release: Option<Function> = None;
    let release = Promise::new(&mut |res, _| resolve_release = Some(res));
    let (resolve_acquired, resolve_release) = (resolve_acquired?, resolve_release?);
    let cb = Closure::once_into_js(move |_lock: JsValue| -> JsValue {
        let _ = resolve_acquired.call0(&JsValue::UNDEFINED);
        release.into()
    });
    let ctl = AbortController::new().ok()?;
    let opts = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&opts, &"signal".into(), &ctl.signal());
    let name = format!("opfs-media-sync:{}:{user}", svc.lib.name());
    // A rejected request (aborted wait) is expected; swallow it.
    if let Ok(p) = platform::call(&locks, "request", &[&JsValue::from_str(&name), &opts, &cb]) {
        let swallow = Closure::once_into_js(|_: JsValue| {});
        let _ = platform::call(&p, "catch", &[&swallow]);
    } else {
        return Some(Function::new_no_args(""));
    }
    let mut acquired = JsFuture::from(acquired);
    loop {
        match select(&mut acquired, rx.next()).await {
            Either::Left(_) => return Some(resolve_release),
            Either::Right(_) => {
                let same_user = matches!(svc.user_id().await, Ok(Some(u)) if u == user);
                if !svc.wants_to_sync() || !same_user {
                    ctl.abort();
                    // If the lock was granted just now, hand it back.
                    let _ = resolve_release.call0(&JsValue::UNDEFINED);
                    return None;
                }
            }
        }
    }
}

/// Syncs as the leader until stopped, disposed, or the user changes.
async fn lead(svc: &Shared, user: &str, rx: &mut UnboundedReceiver<()>) -> Result<(), ServiceError> {
    svc.generation.set(svc.generation.get() + 1);
    let generation = svc.generation.get();
    *svc.aborter.borrow_mut() = AbortController::new().ok();
    let mut leader = load(svc, user).await?;
    read_capabilities(svc).await;
    svc.leading.set(true);
    leader.engine.request_pull();
    let mut last_tick = platform::now_ms();
    loop {
        let same_user = matches!(svc.user_id().await, Ok(Some(u)) if u == user);
        if !svc.wants_to_sync() || !same_user {
            // Leaving (stop, dispose, sign-out, user switch): write what is held back.
            return flush(svc, &mut leader).await;
        }
        let served: Vec<String> = std::mem::take(&mut *svc.sync_tokens.borrow_mut());
        if svc.full_refresh.take() {
            refresh(svc, &mut leader, None).await?;
        } else {
            let ids = std::mem::take(&mut *svc.dirty_ids.borrow_mut());
            if !ids.is_empty() {
                refresh(svc, &mut leader, Some(ids)).await?;
            }
        }
        if svc.pull_requested.take() {
            leader.engine.request_pull();
        }
        let now = platform::now_ms();
        let mut touched: BTreeSet<String> = BTreeSet::new();
        let done: Vec<Completion> = std::mem::take(&mut *svc.completions.borrow_mut());
        for c in done.into_iter().filter(|c| c.generation == generation) {
            for w in c.live {
                touched.insert(w.id.clone());
                leader.wires.insert(w.id.clone(), w);
            }
            leader.engine.handle(c.req, c.outcome, now as i64);
        }
        let online = platform::get(&platform::get(&platform::global(), "navigator"), "onLine").as_bool() != Some(false);
        let sends = if online { leader.engine.poll(now as i64) } else { Vec::new() };
        // Requests go out before the write-back: every asset they touch was claimed durably
        // when it was fed to the engine (`claim`), and the write-back only records status.
        // Completions that arrive meanwhile are handled together in the next round.
        for (n, req) in sends {
            let file = match &req {
                Request::Upload { id, .. } => open_for_upload(svc, &mut leader, id),
                _ => None,
            };
            spawn_local(send(svc.clone(), generation, n, req, file));
        }
        prefetch(svc, &mut leader);
        let idle = leader.engine.is_idle();
        write_back(svc, &mut leader, touched, idle).await?;
        if idle {
            if !served.is_empty() || svc.once.get() {
                svc.once.set(false);
                let note = Note::Idle { tokens: served.clone() };
                svc.notify(&note);
                svc.post(&Wire::Idle { tokens: served });
            }
            svc.emit("idle", &JsValue::UNDEFINED);
        } else if !served.is_empty() {
            // Not done yet: serve these tokens once the engine is idle.
            svc.sync_tokens.borrow_mut().extend(served);
        }
        progress(svc, &leader);
        let now = platform::now_ms();
        let tick_due = last_tick + svc.cfg.poll_interval_ms;
        let mut wake_at = leader.engine.next_wakeup().map_or(tick_due, |w| (w as f64).min(tick_due));
        if has_unsaved(&leader) {
            wake_at = wake_at.min(leader.last_flush + FLUSH_MS);
        }
        let woke = wait(rx, Some((wake_at - now).max(0.0))).await;
        if !woke && platform::now_ms() >= tick_due {
            last_tick = platform::now_ms();
            svc.pull_requested.set(true);
            svc.full_refresh.set(true);
        }
    }
}

/// The file of a queued upload, opening it now unless a prefetch already did.
fn open_for_upload(svc: &Shared, leader: &mut Leader, id: &str) -> Option<OpenFile> {
    if let Some(f) = leader.opening.get(id) {
        return Some(f.clone());
    }
    let rec = leader.records.get(id)?.clone();
    let lib = svc.lib.clone();
    let max = svc.max_upload.get();
    let f: OpenFile = async move { open_and_hash(&lib, &rec, max).await }.boxed_local().shared();
    leader.opening.insert(id.to_owned(), f.clone());
    Some(f)
}

/// The record's file, and its checksum if the record has none: imports are not hashed
/// (that would slow them on the app's thread), so it is computed here, ahead of the request,
/// while other uploads are in flight. The upload's reply stores it on the record.
/// A file over `max_upload` is not hashed: the request refuses it (413) without sending.
async fn open_and_hash(lib: &Library, rec: &MediaAsset, max_upload: Option<f64>) -> Result<Opened, LibraryError> {
    let body = lib.stored_bytes(rec).await?;
    let sha = match rec.sha256 {
        Some(_) => None,
        None if max_upload.is_some_and(|max| body.size() > max) => None,
        None => Some(checksum::sha256_of(&body).await?),
    };
    Ok(Opened { body, mime: rec.mime_type.clone(), created_at: rec.created_at, sha })
}

/// Opens the files of the next queued uploads ahead of their requests, so a request slot
/// that frees up is refilled without waiting for OPFS. Bounded: a few per request slot.
fn prefetch(svc: &Shared, leader: &mut Leader) {
    let ahead = svc.cfg.engine.concurrency * 3;
    let next: Vec<String> = leader
        .engine
        .state()
        .outbox
        .iter()
        .filter(|(id, op)| **op == OutboxOp::Upload && leader.records.contains_key(*id))
        .map(|(id, _)| id.clone())
        .take(ahead)
        .collect();
    for id in next {
        if !leader.opening.contains_key(&id) {
            if let Some(f) = open_for_upload(svc, leader, &id) {
                spawn_local(f.map(drop));
            }
        }
    }
}

fn progress(svc: &Service, leader: &Leader) {
    let st = leader.engine.state();
    let count = |s| st.assets.values().filter(|a| a.status == s).count();
    let detail = serde_json::json!({
        "pending": count(SyncStatus::Pending),
        "syncing": count(SyncStatus::Syncing),
        "synced": count(SyncStatus::Synced),
        "error": count(SyncStatus::Error),
        "queued": st.outbox.len(),
    });
    svc.emit("progress", &json_to_js(&detail));
}

/// Builds the engine from the catalog: this user's records (and unclaimed imports), the
/// outbox, and the stored cursor.
async fn load(svc: &Shared, user: &str) -> Result<Leader, ServiceError> {
    let saved: UserSyncState = match svc.lib.catalog().sync_state(user).await? {
        Some(json) => serde_json::from_str(&json).unwrap_or_default(),
        None => UserSyncState::default(),
    };
    let state = SyncState {
        cursor: saved.cursor.clone(),
        deleted: saved.deleted.clone(),
        pull_gen: saved.pull_gen,
        ..Default::default()
    };
    let mut engine = Engine::new(state, svc.cfg.engine.clone(), platform::now_ms() as u64);
    if let Some(f) = &svc.cfg.conflict_resolver {
        let f = f.clone();
        engine.set_resolver(Some(Box::new(move |l, r| resolve_with(&f, l, r))));
    }
    let mut leader = Leader {
        user: user.to_owned(),
        engine,
        tags: HashMap::new(),
        wires: HashMap::new(),
        records: HashMap::new(),
        opening: HashMap::new(),
        saved,
        unsaved: BTreeSet::new(),
        unreported: Vec::new(),
        last_flush: 0.0,
    };
    refresh(svc, &mut leader, None).await?;
    Ok(leader)
}

/// Feeds the engine local changes it has not seen: outbox entries with a new tag (all of
/// them, or those of `only`), and on a full refresh records written before the outbox existed.
async fn refresh(svc: &Shared, leader: &mut Leader, only: Option<BTreeSet<String>>) -> Result<(), ServiceError> {
    let lib = &svc.lib;
    let full = only.is_none();
    let entries: Vec<OutboxEntry> = lib.catalog().outbox().await?;
    let entries: Vec<OutboxEntry> = match &only {
        Some(ids) => entries.into_iter().filter(|e| ids.contains(&e.id)).collect(),
        None => entries,
    };
    let mut records: HashMap<String, MediaAsset> = if full {
        lib.catalog().all().await?.into_iter().filter_map(Result::ok).map(|a| (a.id.clone(), a)).collect()
    } else {
        let mut m = HashMap::new();
        for e in &entries {
            if let Some(a) = lib.catalog().get(&e.id).await.ok().flatten() {
                m.insert(a.id.clone(), a);
            }
        }
        m
    };
    let user = leader.user.clone();
    claim(svc, &user, &entries, &mut records, full).await?;
    if full {
        // Records this engine does not track yet: the user's synced ones, and legacy imports.
        let with_entry: BTreeSet<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        for rec in records.values() {
            if !bridge::belongs_to(rec, &user) || leader.engine.state().assets.contains_key(&rec.id) {
                continue;
            }
            let local = bridge::local_asset(rec);
            if with_entry.contains(rec.id.as_str()) {
                continue;
            }
            if rec.user_id.is_none() && !bridge::needs_legacy_upload(rec) {
                continue;
            }
            if bridge::needs_legacy_upload(rec) {
                leader.records.insert(rec.id.clone(), rec.clone());
                leader.engine.local_import(local);
            } else {
                leader.engine.adopt(local);
            }
        }
    }
    for e in entries {
        if leader.tags.get(&e.id) == Some(&e.tag) {
            continue;
        }
        match e.op {
            OutboxOp::Delete => {
                if e.user_id.as_deref() != Some(user.as_str()) {
                    continue;
                }
                leader.engine.local_delete(&e.id);
            }
            OutboxOp::Upload | OutboxOp::UpdateMeta => {
                let Some(rec) = records.get(&e.id) else { continue };
                if !bridge::belongs_to(rec, &user) {
                    continue;
                }
                let local = bridge::local_asset(rec);
                leader.records.insert(rec.id.clone(), rec.clone());
                if leader.engine.state().assets.contains_key(&e.id) {
                    leader.engine.local_edit(&e.id, local.meta, local.updated_at);
                } else if rec.cloud_version.is_some() {
                    leader.engine.adopt(local.clone());
                    leader.engine.local_edit(&e.id, local.meta, local.updated_at);
                } else {
                    leader.engine.local_import(local);
                }
            }
        }
        leader.tags.insert(e.id.clone(), e.tag);
    }
    Ok(())
}

/// Claims for `user` the unclaimed records about to be uploaded (imported while signed out,
/// or before the outbox existed), durably and before any request, so no other user's sync
/// can ever upload them. Records another leader claimed first are dropped from `records`.
async fn claim(
    svc: &Shared,
    user: &str,
    entries: &[OutboxEntry],
    records: &mut HashMap<String, MediaAsset>,
    full: bool,
) -> Result<(), ServiceError> {
    let queued: BTreeSet<&str> = entries.iter().filter(|e| e.op != OutboxOp::Delete).map(|e| e.id.as_str()).collect();
    let to_claim: Vec<String> = records
        .values()
        .filter(|r| r.user_id.is_none())
        .filter(|r| queued.contains(r.id.as_str()) || (full && bridge::needs_legacy_upload(r)))
        .map(|r| r.id.clone())
        .collect();
    if to_claim.is_empty() {
        return Ok(());
    }
    let mut batch = Batch::default();
    for id in &to_claim {
        let owner = user.to_owned();
        batch.edits.push((
            id.clone(),
            Box::new(move |r: &mut MediaAsset| r.user_id.is_none() && r.user_id.replace(owner).is_none()),
        ));
    }
    let (claimed, _) = svc.lib.apply_synced(batch, true).await?;
    for id in to_claim {
        match records.get_mut(&id) {
            Some(r) if claimed.contains(&id) => r.user_id = Some(user.to_owned()),
            _ => {
                records.remove(&id);
            }
        }
    }
    Ok(())
}

/// Writes what the engine decided back to the catalog and the outbox (one relaxed
/// transaction: all of it is recomputed if a crash loses it, and every request it could
/// repeat is idempotent), and reports it.
async fn write_back(
    svc: &Shared,
    leader: &mut Leader,
    mut touched: BTreeSet<String>,
    force: bool,
) -> Result<(), ServiceError> {
    let lib = &svc.lib;
    let user = leader.user.clone();
    let base = svc.cfg.endpoint.base_url.clone();
    for ev in leader.engine.take_events() {
        match ev {
            Event::Status(id, status) => {
                touched.insert(id.clone());
                leader.unreported.push((id, status));
            }
            Event::Conflict { id, local_won } => {
                touched.insert(id.clone());
                svc.emit("conflict", &json_to_js(&serde_json::json!({ "id": id, "localWon": local_won })));
            }
            // New and deleted records are written at once, before the cursor that brought
            // them is saved (a crash in between re-reads the page; it never skips them).
            Event::RemoteAdded(id) => {
                if let Some(w) = leader.wires.get(&id) {
                    lib.put_synced(&bridge::remote_record(w, &user, &base), ChangeKind::Import).await?;
                    if svc.cfg.download_policy == DownloadPolicy::Eager {
                        let (svc2, id2) = (svc.clone(), id.clone());
                        spawn_local(async move {
                            if let Err(e) = svc2.download_asset(&id2).await {
                                svc2.emit("error", &error_detail(Some(&id2), &e));
                            }
                        });
                    }
                }
            }
            Event::RemoteDeleted(id) => {
                lib.remove_synced(&id).await?;
                leader.unsaved.remove(&id);
            }
        }
    }
    leader.unsaved.extend(touched.into_iter().filter(|id| leader.engine.state().assets.contains_key(id)));
    let due = platform::now_ms() - leader.last_flush >= FLUSH_MS;
    if force || due || leader.saved != UserSyncState::of(leader.engine.state()) {
        flush(svc, leader).await?;
    }
    Ok(())
}

/// How long status writes may be held back to batch them into one transaction (the
/// engine's decisions are in memory and re-derived after a crash; see `write_back`).
const FLUSH_MS: f64 = 100.0;

/// Whether `flush` has anything to write.
fn has_unsaved(leader: &Leader) -> bool {
    !leader.unsaved.is_empty()
        || !leader.unreported.is_empty()
        || leader.tags.len() != leader.engine.state().outbox.len()
}

/// Writes the held-back records and outbox changes in one relaxed transaction, then reports
/// their status (so whoever hears `synced` reads a record that says so), then saves the cursor.
async fn flush(svc: &Shared, leader: &mut Leader) -> Result<(), ServiceError> {
    let lib = &svc.lib;
    let user = leader.user.clone();
    let base = svc.cfg.endpoint.base_url.clone();
    leader.last_flush = platform::now_ms();
    // The outbox follows the engine: settled ops go, ops the engine added are written.
    let engine_ops: Vec<(String, OutboxOp)> =
        leader.engine.state().outbox.iter().map(|(k, v)| (k.clone(), *v)).collect();
    let mut batch = Batch::default();
    let gone: Vec<String> =
        leader.tags.keys().filter(|id| !leader.engine.state().outbox.contains_key(*id)).cloned().collect();
    for id in gone {
        leader.opening.remove(&id);
        leader.records.remove(&id);
        if let Some(tag) = leader.tags.remove(&id) {
            batch.swaps.push((id, Some(tag), None));
        }
    }
    let mut added = Vec::new();
    for (id, op) in engine_ops {
        if leader.tags.contains_key(&id) {
            continue;
        }
        let entry = OutboxEntry { id: id.clone(), op, tag: platform::new_asset_id(), user_id: Some(user.clone()) };
        added.push((batch.swaps.len(), id.clone(), entry.tag.clone()));
        batch.swaps.push((id, None, Some(entry)));
    }
    for id in std::mem::take(&mut leader.unsaved) {
        let Some(a) = leader.engine.state().assets.get(&id).cloned() else { continue };
        let (user, base) = (user.clone(), base.clone());
        batch
            .edits
            .push((id, Box::new(move |rec| bridge::belongs_to(rec, &user) && bridge::apply(rec, &a, &user, &base))));
    }
    let (_, swapped) = lib.apply_synced(batch, false).await?;
    for (at, id, tag) in added {
        if swapped.get(at).copied().unwrap_or(false) {
            leader.tags.insert(id, tag);
        }
    }
    for (id, status) in std::mem::take(&mut leader.unreported) {
        let error = leader.engine.state().assets.get(&id).and_then(|a| a.error.clone());
        if status == SyncStatus::Error {
            let e = error.clone().unwrap_or(SyncError { status: 0, code: "UNKNOWN".into() });
            svc.emit("error", &error_detail(Some(&id), &ServiceError::Server { status: e.status, code: e.code }));
        }
        svc.status_changed(&id, status, error, true);
    }
    let now = UserSyncState::of(leader.engine.state());
    if now != leader.saved {
        let json = serde_json::to_string(&now).unwrap_or_default();
        lib.catalog().put_sync_state(&user, &json).await?;
        leader.saved = now;
    }
    Ok(())
}

/// Reads `maxUploadBytes` from `GET /api/media/capabilities` (best effort: without it, an
/// oversized upload learns its `413` from the upload itself). Checking first matters: a
/// server that refuses a large body early may close the connection before the browser has
/// sent it, and some engines (Firefox) then report a network error instead of the `413`.
async fn read_capabilities(svc: &Shared) {
    let req =
        protocol::HttpRequest { method: "GET", path: "/media/capabilities".into(), headers: vec![], body: Body::Empty };
    let Ok(reply) = http::send(&svc.cfg.endpoint, &req, None, None, None).await else { return };
    if reply.status != 200 {
        return;
    }
    let Ok(body) = reply.bytes().await else { return };
    let max = serde_json::from_slice::<protocol::Capabilities>(&body).ok().and_then(|c| c.max_upload_bytes);
    svc.max_upload.set(max);
}

/// Sends one engine request and queues its outcome for the loop.
async fn send(svc: Shared, generation: u64, n: u64, req: Request, file: Option<OpenFile>) {
    let mut http_req = protocol::to_http(&req);
    let abort = svc.aborter.borrow().as_ref().map(|a| a.signal());
    let outcome = async {
        let token = match svc.auth_token().await {
            Ok(t) => t,
            Err(e) => {
                svc.emit("error", &error_detail(None, &e));
                return (Outcome::Network, Vec::new());
            }
        };
        let opened = match (&http_req.body, file) {
            (Body::AssetBytes(_), Some(f)) => Some(f.await),
            (Body::AssetBytes(id), None) => Some(match svc.lib.get(id).await {
                Ok(rec) => open_and_hash(&svc.lib, &rec, svc.max_upload.get()).await,
                Err(e) => Err(e),
            }),
            _ => None,
        };
        let upload = match opened {
            Some(Ok(upload)) => Some(upload),
            Some(Err(e)) => {
                let code = e.code().to_owned();
                return (Outcome::Failed { status: 0, code, current: None, retry_after: None }, Vec::new());
            }
            None => None,
        };
        if let Some(up) = &upload {
            if svc.max_upload.get().is_some_and(|max| up.body.size() > max) {
                let code = "PAYLOAD_TOO_LARGE".to_owned();
                return (Outcome::Failed { status: 413, code, current: None, retry_after: None }, Vec::new());
            }
            if let Some(sha) = &up.sha {
                if let Some((_, header)) =
                    http_req.headers.iter_mut().find(|(k, v)| *k == "X-Content-SHA256" && v.is_empty())
                {
                    header.clone_from(sha);
                }
            }
            // The local import time, kept by the server.
            http_req.headers.push(("X-Asset-Created-At", format!("{}", up.created_at as i64)));
        }
        let body = upload.as_ref().map(|up| (&up.body, up.mime.as_str()));
        let reply = match http::send(&svc.cfg.endpoint, &http_req, token.as_deref(), body, abort.as_ref()).await {
            Ok(r) => r,
            Err(_) => return (Outcome::Network, Vec::new()),
        };
        let Ok(bytes) = reply.bytes().await else { return (Outcome::Network, Vec::new()) };
        let outcome = protocol::outcome(&req, reply.status, reply.retry_after, &bytes);
        let live = match (&req, &outcome) {
            (Request::Changes { .. }, Outcome::Ok(_)) => protocol::live_assets(&bytes),
            _ => Vec::new(),
        };
        (outcome, live)
    }
    .await;
    let (outcome, live) = outcome;
    svc.completions.borrow_mut().push(Completion { generation, req: n, outcome, live });
    svc.kick();
}
