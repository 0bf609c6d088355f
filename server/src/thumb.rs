//! Thumbnails: made once per image on first request, stored next to the asset, then served
//! from storage. Non-images get 415 `NOT_AN_IMAGE`.

use axum::http::StatusCode;
use bytes::Bytes;
use object_store::path::Path;
use object_store::PutPayload;

use crate::db::AssetRow;
use crate::error::ApiError;
use crate::AppState;

/// Longest side of a thumbnail, in pixels.
pub const MAX_SIZE: u32 = 256;
/// Images larger than this are not decoded for thumbnails (memory bound).
const MAX_SOURCE_BYTES: i64 = 64 * 1024 * 1024;

/// Whether the server makes thumbnails for this MIME type.
pub fn is_image(mime: &str) -> bool {
    matches!(mime.split(';').next().unwrap_or_default().trim(), "image/png" | "image/jpeg" | "image/gif" | "image/webp")
}

/// The stored thumbnail, generating and storing it on first use.
pub async fn get_or_make(s: &AppState, a: &AssetRow) -> Result<Bytes, ApiError> {
    if !is_image(&a.mime_type) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "NOT_AN_IMAGE",
            "thumbnails exist only for PNG, JPEG, GIF and WebP images",
        ));
    }
    if let Some(p) = &a.thumb_path {
        if let Ok(got) = s.store.get(&Path::from(p.as_str())).await {
            return Ok(got.bytes().await?);
        }
    }
    if a.size > MAX_SOURCE_BYTES {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "THUMBNAIL_UNAVAILABLE",
            "the image is too large to make a thumbnail of",
        ));
    }
    let src = s.store.get(&Path::from(a.path.as_str())).await?.bytes().await?;
    let png = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        let img = image::load_from_memory(&src).map_err(|e| e.to_string())?;
        let mut out = std::io::Cursor::new(Vec::new());
        img.thumbnail(MAX_SIZE, MAX_SIZE).write_to(&mut out, image::ImageFormat::Png).map_err(|e| e.to_string())?;
        Ok(out.into_inner())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "THUMBNAIL_UNAVAILABLE",
            format!("the image cannot be decoded: {e}"),
        )
    })?;
    let path = format!("{}/{}.thumb.png", a.user_id, a.id);
    s.store.put(&Path::from(path.as_str()), PutPayload::from(png.clone())).await?;
    s.db.set_thumb(&a.user_id, &a.id, &path).await?;
    Ok(Bytes::from(png))
}
