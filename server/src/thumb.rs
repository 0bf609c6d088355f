//! Thumbnails: made once per image on first request, stored next to the asset, then served
//! from storage; a failure is remembered too. Decoding is bounded before it starts (pixel
//! count, allocation) and in parallelism (a semaphore), so hostile images cannot exhaust memory.

use std::io::Cursor;

use axum::http::StatusCode;
use bytes::Bytes;
use image::{DynamicImage, ImageDecoder, ImageReader};
use object_store::path::Path;
use object_store::PutPayload;
use tokio::sync::Semaphore;

use crate::db::AssetRow;
use crate::error::ApiError;
use crate::request::essence;
use crate::AppState;

/// Longest side of a thumbnail, in pixels.
pub const MAX_SIZE: u32 = 256;
/// Source types thumbnailed (by the type's essence, parameters ignored).
pub const SOURCE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];
/// Largest source file decoded.
pub const MAX_SOURCE_BYTES: u64 = 64 * 1024 * 1024;
/// Largest source image decoded, in pixels (width × height, as the file's header states).
pub const MAX_SOURCE_PIXELS: u64 = 40_000_000;
/// Most memory one decode may allocate.
const MAX_DECODE_ALLOC: u64 = 256 * 1024 * 1024;
/// Decodes running at once; more wait.
pub const DECODE_CONCURRENCY: usize = 2;

/// The decode gate shared by all requests of a server.
pub struct Thumbnailer {
    permits: Semaphore,
}

impl Default for Thumbnailer {
    fn default() -> Self {
        Self { permits: Semaphore::new(DECODE_CONCURRENCY) }
    }
}

/// Whether the server makes thumbnails for this MIME type.
pub fn is_image(mime: &str) -> bool {
    SOURCE_TYPES.contains(&essence(mime))
}

fn unavailable(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "THUMBNAIL_UNAVAILABLE", message)
}

/// Why a thumbnail could not be made (messages go to the client; decoder details only to the log).
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("the image is larger than the server decodes (thumbnails.maxSourcePixels / maxSourceBytes)")]
    TooLarge,
    #[error("the image cannot be decoded")]
    Undecodable(String),
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
    if a.thumb_failed.is_some() {
        return Err(unavailable("no thumbnail can be made of this image"));
    }
    let made = if a.size as u64 > MAX_SOURCE_BYTES { Err(Refused::TooLarge) } else { decode(s, a).await? };
    match made {
        Ok(png) => {
            let path = format!("{}/{}.thumb.png", a.user_id, a.id);
            s.store.put(&Path::from(path.as_str()), PutPayload::from(png.clone())).await?;
            s.db.set_thumb(&a.user_id, &a.id, &path).await?;
            Ok(Bytes::from(png))
        }
        Err(why) => {
            if let Refused::Undecodable(cause) = &why {
                tracing::info!(id = %a.id, %cause, "thumbnail refused");
            }
            s.db.set_thumb_failed(&a.user_id, &a.id, crate::now_ms()).await?;
            Err(unavailable(&why.to_string()))
        }
    }
}

async fn decode(s: &AppState, a: &AssetRow) -> Result<Result<Vec<u8>, Refused>, ApiError> {
    let _permit = s.thumbs.permits.acquire().await.map_err(ApiError::internal)?;
    let src = s.store.get(&Path::from(a.path.as_str())).await?.bytes().await?;
    tokio::task::spawn_blocking(move || render(&src)).await.map_err(ApiError::internal)
}

/// Decodes `src` within the limits and encodes a PNG of at most `MAX_SIZE` px a side:
/// EXIF orientation applied, never upscaled, alpha kept.
fn render(src: &[u8]) -> Result<Vec<u8>, Refused> {
    let undecodable = |e: image::ImageError| Refused::Undecodable(e.to_string());
    let mut reader =
        ImageReader::new(Cursor::new(src)).with_guessed_format().map_err(|e| Refused::Undecodable(e.to_string()))?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| match e {
        image::ImageError::Limits(_) => Refused::TooLarge,
        e => undecodable(e),
    })?;
    let (w, h) = decoder.dimensions();
    if u64::from(w) * u64::from(h) > MAX_SOURCE_PIXELS {
        return Err(Refused::TooLarge);
    }
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        image::ImageError::Limits(_) => Refused::TooLarge,
        e => undecodable(e),
    })?;
    img.apply_orientation(orientation);
    if img.width() > MAX_SIZE || img.height() > MAX_SIZE {
        img = img.thumbnail(MAX_SIZE, MAX_SIZE);
    }
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).map_err(undecodable)?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32, alpha: bool) -> Vec<u8> {
        let img = if alpha {
            DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(w, h, image::Rgba([1, 2, 3, 0])))
        } else {
            DynamicImage::ImageRgb8(image::RgbImage::new(w, h))
        };
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn dims(png: &[u8]) -> (u32, u32, image::ColorType) {
        let img = image::load_from_memory(png).unwrap();
        (img.width(), img.height(), img.color())
    }

    #[test]
    fn small_images_are_not_upscaled_and_alpha_is_kept() {
        assert_eq!(dims(&render(&png(10, 5, true)).unwrap()), (10, 5, image::ColorType::Rgba8));
        assert_eq!(dims(&render(&png(600, 300, false)).unwrap()), (256, 128, image::ColorType::Rgb8));
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 { (c >> 1) ^ 0xedb8_8320 } else { c >> 1 };
            }
        }
        !c
    }

    #[test]
    fn headers_claiming_too_many_pixels_are_refused_before_decoding() {
        let mut bomb = png(8, 8, false);
        bomb[16..20].copy_from_slice(&11_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&11_000u32.to_be_bytes());
        let crc = crc32(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(render(&bomb), Err(Refused::TooLarge)));
    }
}
