//! Requests on the wire: opening (and hashing) upload files ahead of their request, the
//! server's capabilities, and sending one engine request.

use futures_util::FutureExt;
use wasm_bindgen_futures::spawn_local;

use crate::asset::MediaAsset;
use crate::error::LibraryError;
use crate::store::checksum;
use crate::store::outbox::OutboxOp;
use crate::store::Library;
use crate::sync::chunked;
use crate::sync::engine::{Outcome, Request};
use crate::sync::http::{self};
use crate::sync::protocol::{self, Body};

use super::progress::Direction;
use super::state::{Completion, Leader};
use super::upload::{self, OpenFile, Opened};
use super::*;

/// The file of a queued upload, opening it now unless a prefetch already did.
pub(super) fn open_for_upload(svc: &Shared, leader: &mut Leader, id: &str) -> Option<OpenFile> {
    if let Some(f) = leader.opening.get(id) {
        return Some(f.clone());
    }
    let rec = leader.records.get(id)?.clone();
    let lib = svc.lib.clone();
    let limits = svc.limits.borrow().clone();
    let f: OpenFile = async move { open_and_hash(&lib, &rec, &limits).await }.boxed_local().shared();
    leader.opening.insert(id.to_owned(), f.clone());
    Some(f)
}

/// What the server's capabilities say about uploads.
#[derive(Clone, Debug, Default)]
pub(super) struct UploadLimits {
    /// `maxUploadBytes`.
    pub(super) max_bytes: Option<f64>,
    /// `resumableUploads`, when the server has the extension.
    pub(super) sessions: Option<protocol::SessionLimits>,
}

impl UploadLimits {
    /// Whether a file of `size` bytes is refused without sending it.
    pub(super) fn too_large(&self, size: f64) -> bool {
        self.max_bytes.is_some_and(|max| size > max)
    }

    /// The chunk length when a file of `size` bytes goes through a resumable session.
    pub(super) fn chunk(&self, size: f64) -> Option<u64> {
        chunked::plan(size as u64, self.sessions.as_ref())
    }
}

/// The record's file, and its checksum if the record has none and the upload needs it ahead:
/// imports are not hashed (that would slow them on the app's thread), so a single `POST`'s
/// checksum is computed here, before its request, while other uploads are in flight; a
/// resumable upload hashes as its chunks go, and a file over `maxUploadBytes` is refused
/// (413) without sending. The upload's reply stores the checksum on the record.
pub(super) async fn open_and_hash(
    lib: &Library,
    rec: &MediaAsset,
    limits: &UploadLimits,
) -> Result<Opened, LibraryError> {
    let body = match lib.stored_bytes(rec).await {
        // Never an empty or partial upload: the record is settled (see `store::lost`), and an
        // asset that exists only here fails for good with `LOCAL_BYTES_LOST`.
        Err(LibraryError::BytesMissing(id)) => {
            lib.settle_missing(&id).await?;
            return Err(LibraryError::LocalBytesLost(id));
        }
        other => other?,
    };
    let size = body.size();
    let sha = match rec.sha256 {
        Some(_) => None,
        None if limits.too_large(size) || limits.chunk(size).is_some() => None,
        None => Some(checksum::sha256_of(&body).await?),
    };
    Ok(Opened { body, mime: rec.mime_type.clone(), created_at: rec.created_at, sha })
}

/// Opens the files of the next queued uploads ahead of their requests, so a request slot
/// that frees up is refilled without waiting for OPFS. Bounded: a few per request slot.
pub(super) fn prefetch(svc: &Shared, leader: &mut Leader) {
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

/// Reads `maxUploadBytes` from `GET /api/media/capabilities` (best effort: without it, an
/// oversized upload learns its `413` from the upload itself). Checking first matters: a
/// server that refuses a large body early may close the connection before the browser has
/// sent it, and some engines (Firefox) then report a network error instead of the `413`.
pub(super) async fn read_capabilities(svc: &Shared) {
    let req =
        protocol::HttpRequest { method: "GET", path: "/media/capabilities".into(), headers: vec![], body: Body::Empty };
    let Ok(reply) = http::send(&svc.cfg.endpoint, &req, None, None, None).await else { return };
    if reply.status != 200 {
        return;
    }
    let Ok(body) = reply.bytes().await else { return };
    let caps = crate::sync::json::from_slice::<protocol::Capabilities>(&body);
    *svc.limits.borrow_mut() = UploadLimits {
        max_bytes: caps.as_ref().and_then(|c| c.max_upload_bytes),
        sessions: caps.and_then(|c| c.session_limits()),
    };
}

/// Sends one engine request and queues its outcome for the loop.
pub(super) async fn send(svc: Shared, generation: u64, n: u64, req: Request, file: Option<OpenFile>) {
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
                Ok(rec) => {
                    let limits = svc.limits.borrow().clone();
                    open_and_hash(&svc.lib, &rec, &limits).await
                }
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
            let limits = svc.limits.borrow().clone();
            if limits.too_large(up.body.size()) {
                let code = "PAYLOAD_TOO_LARGE".to_owned();
                return (Outcome::Failed { status: 413, code, current: None, retry_after: None }, Vec::new());
            }
            if let Some(chunk) = limits.chunk(up.body.size()) {
                let outcome =
                    upload::in_chunks(&svc, generation, &req, up, chunk, token.as_deref(), abort.as_ref()).await;
                return (outcome, Vec::new());
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
        let sending = upload.as_ref().zip(req.asset_id()).map(|(up, id)| (id, up.body.size()));
        if let Some((id, size)) = sending {
            svc.transfer_progress(id, Direction::Upload, 0.0, size);
        }
        let reply = match http::send(&svc.cfg.endpoint, &http_req, token.as_deref(), body, abort.as_ref()).await {
            Ok(r) => r,
            Err(_) => return (Outcome::Network, Vec::new()),
        };
        let Ok(bytes) = reply.bytes().await else { return (Outcome::Network, Vec::new()) };
        let outcome = protocol::outcome(&req, reply.status, reply.retry_after, &bytes);
        if let Some((id, size)) = sending {
            if matches!(outcome, Outcome::Ok(_)) {
                svc.transfer_progress(id, Direction::Upload, size, size);
            }
            svc.transfer_ended(id, &outcome);
        }
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
