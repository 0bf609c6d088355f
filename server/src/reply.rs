//! How an asset is answered: its JSON form (docs/protocol.md, "Asset"), a change of the
//! changes feed, and a JSON asset response with its metadata `ETag`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::db::AssetRow;
use crate::thumb;

/// The JSON form of an asset (docs/protocol.md, "Asset").
pub fn asset_json(prefix: &str, a: &AssetRow) -> Value {
    let mut v = json!({
        "id": a.id, "name": a.name, "type": a.mime_type, "size": a.size, "sha256": a.sha256,
        "createdAt": a.created_at, "updatedAt": a.updated_at, "version": a.version, "tags": a.tags,
        "path": a.path, "url": format!("{prefix}/media/assets/{}", a.id),
    });
    if let Some(by) = &a.updated_by {
        v["updatedBy"] = json!(by);
    }
    if thumb::is_image(&a.mime_type) {
        v["thumbnailUrl"] = json!(format!("{prefix}/media/assets/{}/thumbnail", a.id));
    }
    v
}

pub fn change_json(prefix: &str, a: &AssetRow) -> Value {
    match a.deleted_at {
        Some(at) => {
            let mut v = json!({ "id": a.id, "deleted": true, "deletedAt": at, "version": a.version });
            if let Some(by) = &a.updated_by {
                v["updatedBy"] = json!(by);
            }
            v
        }
        None => json!({ "id": a.id, "deleted": false, "asset": asset_json(prefix, a) }),
    }
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// A JSON asset response with its metadata ETag.
pub fn with_etag(prefix: &str, status: StatusCode, a: &AssetRow) -> Response {
    let mut res = (status, Json(asset_json(prefix, a))).into_response();
    res.headers_mut().insert(header::ETAG, etag(a.version));
    res
}
