//! Reading request bodies: a bounded JSON body, the timeout of a stalled body, and draining
//! an unwanted body so an early answer reaches the client.

use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use futures::StreamExt;
use serde_json::json;

use crate::error::ApiError;
use crate::AppState;

/// Largest JSON request body (a metadata patch).
pub const JSON_MAX_BYTES: usize = 64 * 1024;
/// Most bytes of an unwanted upload body read (and dropped) before an early answer; beyond
/// it the connection is closed after the answer.
pub const DRAIN_MAX_BYTES: u64 = 8 * 1024 * 1024;
/// Longest time spent draining an unwanted body.
const DRAIN_MAX_TIME: Duration = Duration::from_secs(5);

/// Reads and drops up to [`DRAIN_MAX_BYTES`] of `body` for at most [`DRAIN_MAX_TIME`], so an
/// answer given before the body was read reaches the client (docs/protocol.md, upload).
pub async fn drain(body: Body) {
    drain_stream(body.into_data_stream()).await;
}

/// [`drain`] for a body already being read.
pub(crate) async fn drain_stream(mut stream: axum::body::BodyDataStream) {
    let mut read = 0u64;
    let _ = tokio::time::timeout(DRAIN_MAX_TIME, async {
        while let Some(Ok(chunk)) = stream.next().await {
            read += chunk.len() as u64;
            if read > DRAIN_MAX_BYTES {
                break;
            }
        }
    })
    .await;
}

/// `408 BODY_TIMEOUT`: no body bytes for `after`.
pub fn body_timeout(after: Duration) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "BODY_TIMEOUT",
        format!("no body bytes arrived for {} s; nothing was stored, send the request again", after.as_secs()),
    )
}

/// A JSON body of at most [`JSON_MAX_BYTES`], else `413` with `details.maxJsonBytes` (the
/// rest of the body drained, so the client reads it); a stalled body (nothing for the idle
/// timeout) is `408 BODY_TIMEOUT`.
pub(crate) async fn read_json_body(s: &AppState, body: Body) -> Result<bytes::Bytes, ApiError> {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    loop {
        match tokio::time::timeout(s.body_idle_timeout, stream.next()).await {
            Err(_) => return Err(body_timeout(s.body_idle_timeout)),
            Ok(None) => return Ok(buf.freeze()),
            Ok(Some(Err(_))) => return Err(ApiError::bad_request("BAD_REQUEST", "the request body broke off")),
            Ok(Some(Ok(chunk))) if buf.len() + chunk.len() <= JSON_MAX_BYTES => buf.extend_from_slice(&chunk),
            Ok(Some(Ok(_))) => {
                drain_stream(stream).await;
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "PAYLOAD_TOO_LARGE",
                    format!("JSON bodies are limited to {JSON_MAX_BYTES} bytes"),
                )
                .with_details(json!({ "maxJsonBytes": JSON_MAX_BYTES })));
            }
        }
    }
}
