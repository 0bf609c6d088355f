//! Talking to other contexts: the BroadcastChannel messages, the global triggers (online,
//! visibility) and the Web Lock that makes one context the leader.

use std::rc::Rc;

use futures_channel::mpsc::UnboundedReceiver;
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use js_sys::{Function, Promise};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, MessageEvent};

use crate::asset::SyncStatus;
use crate::platform;
use crate::sync::engine::SyncError;

use super::*;

/// A message on the library's BroadcastChannel.
#[derive(Serialize, serde::Deserialize, Debug, Clone)]
#[serde(tag = "t", rename_all = "camelCase")]
pub(super) enum Wire {
    Change {
        kind: String,
        id: String,
        #[serde(default)]
        sync: bool,
    },
    /// Several records changed at once (`Library::emit_changes`).
    Changes {
        kind: String,
        ids: Vec<String>,
        #[serde(default)]
        sync: bool,
    },
    /// The status changes of one write-back, in order (one message instead of one each).
    Statuses {
        list: Vec<StatusNote>,
    },
    Idle {
        tokens: Vec<String>,
    },
    /// The leader's round failed before these `syncNow` calls were served: they reject with
    /// a `StorageError` carrying the leader's message (no call waits for an idle that a broken
    /// catalog or a vanished storage never reaches).
    Failed {
        tokens: Vec<String>,
        message: String,
        /// Set when the server refused the API root (`ServiceError::Refused`), so the calls
        /// of other contexts reject with the same typed error (`NotAMemberError`, ...).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refused: Option<Refusal>,
    },
    SyncNow {
        token: String,
    },
}

/// A `ServiceError::Refused` as it crosses the channel.
#[derive(Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub(super) struct Refusal {
    root: String,
    status: u16,
    code: String,
}

impl Refusal {
    /// The refusal `e` carries, if it is one.
    pub(super) fn of(e: &ServiceError) -> Option<Self> {
        match e {
            ServiceError::Refused { root, status, code } => {
                Some(Self { root: root.clone(), status: *status, code: code.clone() })
            }
            _ => None,
        }
    }
}

/// The error another context's failed round is reported with here: its refusal, typed as
/// there, or a `StorageError` carrying its message.
pub(super) fn remote_failure(message: String, refused: Option<Refusal>) -> ServiceError {
    match refused {
        Some(Refusal { root, status, code }) => ServiceError::Refused { root, status, code },
        None => ServiceError::Library(LibraryError::Storage { op: "syncing (in another context)", detail: message }),
    }
}

/// One status change in `Wire::Statuses`.
#[derive(Serialize, serde::Deserialize, Debug, Clone)]
pub(super) struct StatusNote {
    pub(super) id: String,
    pub(super) status: SyncStatus,
    #[serde(default)]
    pub(super) error: Option<SyncError>,
}

impl Service {
    pub(super) fn install_listeners(self: &Rc<Self>) {
        let weak = Rc::downgrade(self);
        let on_message = Closure::<dyn FnMut(JsValue)>::new(move |ev: JsValue| {
            let Some(svc) = weak.upgrade() else { return };
            let Some(ev) = ev.dyn_ref::<MessageEvent>() else { return };
            let Some(text) = ev.data().as_string() else { return };
            let Some(msg) = crate::sync::json::from_str::<Wire>(&text) else { return };
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
            Wire::Changes { ids, sync, .. } => {
                if !sync {
                    self.dirty_ids.borrow_mut().extend(ids);
                    self.kick();
                }
            }
            Wire::Statuses { list } => {
                if !self.leading.get() {
                    for s in list {
                        self.status_changed(&s.id, s.status, s.error);
                    }
                }
            }
            Wire::Failed { tokens, message, refused } => {
                if !self.leading.get() {
                    let error = remote_failure(message, refused);
                    self.notify(&Note::Failed { tokens, error });
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
}

/// Becomes the leader for `user` (Web Locks); `None` if the wait was given up (stop, user
/// change). Without Web Locks every context leads: uploads are idempotent, so two syncers
/// cost requests but never duplicate or lose anything.
pub(super) async fn acquire_lock(svc: &Shared, user: &str, rx: &mut UnboundedReceiver<()>) -> Option<Function> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn across(e: &ServiceError) -> ServiceError {
        let wire = Wire::Failed { tokens: vec!["t".into()], message: e.to_string(), refused: Refusal::of(e) };
        let text = serde_json::to_string(&wire).unwrap();
        match serde_json::from_str::<Wire>(&text).unwrap() {
            Wire::Failed { message, refused, .. } => remote_failure(message, refused),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_refusal_reaches_other_contexts_typed() {
        for (status, code, name) in
            [(403, "NOT_A_MEMBER", "NotAMemberError"), (400, "INVALID_SPACE_ID", "InvalidSpaceError")]
        {
            let e = ServiceError::Refused { root: "/api/spaces/b".into(), status, code: code.into() };
            let there = across(&e);
            assert_eq!(there, e);
            assert_eq!((there.name(), there.code()), (name, code.to_owned()));
        }
    }

    #[test]
    fn other_failures_stay_storage_errors_and_old_messages_still_read() {
        let there = across(&ServiceError::Network("offline".into()));
        assert_eq!(there.name(), "StorageError");
        let old = r#"{"t":"failed","tokens":["t"],"message":"m"}"#;
        assert!(matches!(serde_json::from_str::<Wire>(old).unwrap(), Wire::Failed { refused: None, .. }));
    }
}
