//! Downloads on the wire. With OPFS the response streams into the library's download pieces
//! (`store/download.rs`) and an interruption continues with `Range` from what was kept, a few
//! times within one call and again on the next call (also after a restart). Without OPFS the
//! bytes are stored whole, as the browser hands them over; so are small assets, which go to
//! IndexedDB (`home`).

use crate::asset::MediaAsset;
use crate::error::LibraryError;
use crate::store::download::PartialDownload;
use crate::sync::engine::{Outcome, Request};
use crate::sync::http;
use crate::sync::protocol::{self, Body};

use super::progress::Direction;
use super::*;

/// Tries within one call before the error goes to the caller (the pieces stay for the next).
const ATTEMPTS: u32 = 4;

enum Failure {
    /// Worth another try now (network, 408, 429, 5xx, a broken body).
    Retry(ServiceError),
    /// The server or the disk said no.
    Final(ServiceError),
}

pub(super) async fn fetch(svc: &Shared, asset: &MediaAsset) -> Result<MediaAsset, ServiceError> {
    if !svc.lib.resumable_download(asset) {
        return whole(svc, asset).await;
    }
    let (id, size) = (asset.id.as_str(), asset.size);
    // While it downloads, the budget's eviction leaves this asset alone (store/evict.rs).
    let _hold = svc.lib.hold_asset(id).await;
    let mut part = svc.lib.partial_download(asset).await?;
    let mut attempt = 0;
    let mut recovered = false;
    let result = loop {
        let step = if part.len < size { resume(svc, asset, &mut part).await } else { Ok(()) };
        let failure = match step {
            Ok(()) if part.len == size => break svc.lib.finish_download(asset, part).await.map_err(ServiceError::from),
            Ok(()) => {
                Failure::Retry(ServiceError::Network(format!("the body ended after {} of {size} bytes", part.len)))
            }
            Err(f) => f,
        };
        // A full disk: with a budget, synced copies make room (oldest first) and the download
        // continues once from what it kept.
        if let Failure::Final(ServiceError::Library(LibraryError::QuotaExceeded(_))) = &failure {
            if !recovered && svc.lib.recover_quota(size - part.len).await.unwrap_or(false) {
                recovered = true;
                continue;
            }
        }
        attempt += 1;
        match failure {
            Failure::Retry(_) if attempt < ATTEMPTS && !svc.disposed.get() => {
                platform::sleep(250.0 * f64::from(1u32 << attempt)).await;
            }
            Failure::Retry(e) | Failure::Final(e) => break Err(e),
        }
    };
    let outcome = match &result {
        Ok(_) => Outcome::Ok(crate::sync::engine::Reply::Deleted),
        Err(_) => Outcome::Network,
    };
    if result.is_ok() {
        svc.transfer_progress(id, Direction::Download, size, size);
        // Counts as a read, and may take the library over its budget.
        svc.lib.downloaded(id, size).await;
    }
    svc.transfer_ended(id, &outcome);
    result
}

/// One request for the bytes not kept yet, streamed into the pieces.
async fn resume(svc: &Shared, asset: &MediaAsset, part: &mut PartialDownload) -> Result<(), Failure> {
    let mut headers = vec![];
    if part.len > 0.0 {
        // The bytes of an id never change, so no If-Range is needed (docs/protocol.md).
        headers.push(("Range", format!("bytes={}-", part.len as u64)));
    }
    let req = protocol::HttpRequest {
        method: "GET",
        path: format!("/media/assets/{}", asset.id),
        headers,
        body: Body::Empty,
    };
    let token = svc.auth_token().await.map_err(Failure::Final)?;
    // Not the leader's abort signal: a download is the caller's, and outlives leadership
    // changes (a `syncNow` ending its round would otherwise cut it).
    let reply = http::send(&svc.cfg.endpoint, &req, token.as_deref(), None, None)
        .await
        .map_err(|e| Failure::Retry(ServiceError::Network(e.to_string())))?;
    match reply.status {
        206 => {
            let start = reply.header("Content-Range").as_deref().and_then(protocol::content_range_start);
            if start != Some(part.len as u64) {
                start_over(svc, asset, part).await?;
                return Err(Failure::Retry(ServiceError::Server { status: 206, code: "PROTOCOL_ERROR".into() }));
            }
        }
        // The whole file (a server that ignores Range): what was kept is not needed.
        200 if part.len > 0.0 => start_over(svc, asset, part).await?,
        200 => {}
        status => return Err(refused(svc, &reply, status, &asset.id).await),
    }
    let Some(body) = reply.body_stream() else {
        return Err(Failure::Final(ServiceError::Network("the response has no readable body".into())));
    };
    let (id, size) = (asset.id.clone(), asset.size);
    let mut progress = |n: f64| svc.transfer_progress(&id, Direction::Download, n, size);
    match svc.lib.continue_download(asset, part, &body, &mut progress).await {
        Ok(()) => Ok(()),
        // The connection broke mid-body: what arrived is kept; ask for the rest.
        Err(LibraryError::SourceUnreadable(why)) => Err(Failure::Retry(ServiceError::Network(why))),
        Err(e) => Err(Failure::Final(e.into())),
    }
}

async fn start_over(svc: &Shared, asset: &MediaAsset, part: &mut PartialDownload) -> Result<(), Failure> {
    let fresh = async {
        svc.lib.drop_partial_download(asset).await?;
        svc.lib.partial_download(asset).await
    };
    *part = fresh.await.map_err(|e| Failure::Final(e.into()))?;
    Ok(())
}

/// The error of a non-2xx answer: retried for 408, 429 and 5xx; a space refusing the user
/// is `Refused` (never retried).
async fn refused(svc: &Shared, reply: &http::Reply, status: u16, id: &str) -> Failure {
    let body = reply.bytes().await.unwrap_or_default();
    let outcome = protocol::outcome(&Request::Delete { id: id.to_owned() }, status, None, &body);
    if crate::sync::engine::root_refusal(&outcome).is_some() {
        if let Outcome::Failed { code, .. } = outcome {
            return Failure::Final(ServiceError::Refused { root: svc.cfg.endpoint.base_url.clone(), status, code });
        }
    }
    let code = match outcome {
        Outcome::Failed { code, .. } => code,
        _ => format!("HTTP_{status}"),
    };
    let e = ServiceError::Server { status, code };
    if matches!(status, 408 | 429) || status >= 500 {
        Failure::Retry(e)
    } else {
        Failure::Final(e)
    }
}

/// Without OPFS, or for a small asset: one request, the body stored whole.
async fn whole(svc: &Shared, asset: &MediaAsset) -> Result<MediaAsset, ServiceError> {
    let req = protocol::HttpRequest {
        method: "GET",
        path: format!("/media/assets/{}", asset.id),
        headers: vec![],
        body: Body::Empty,
    };
    let token = svc.auth_token().await?;
    let network = |e: http::HttpError| ServiceError::Network(e.to_string());
    let reply = http::send(&svc.cfg.endpoint, &req, token.as_deref(), None, None).await.map_err(network)?;
    if reply.status != 200 {
        return Err(match refused(svc, &reply, reply.status, &asset.id).await {
            Failure::Retry(e) | Failure::Final(e) => e,
        });
    }
    let blob = reply.blob().await.map_err(network)?;
    Ok(svc.lib.store_download(&asset.id, &blob).await?)
}
