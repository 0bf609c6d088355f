//! Where a session's bytes wait until completion: an S3 multipart upload (created at the
//! asset's final key; parts' ETags kept in the session row) or a local staging file.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::PutPayload;

use crate::error::ApiError;

/// The folder (under the local storage root) of staging files. A user id cannot contain a
/// dot, so no asset key starts with it; the orphan sweep of objects skips it.
pub const UPLOADS_DIR: &str = ".uploads";

/// Session storage for the configured backend.
#[derive(Clone)]
pub enum Staging {
    /// `file://` storage: one staging file per session, written at the offset and hard-linked
    /// to the asset's key at completion.
    Local {
        /// The storage root (the same directory the object store serves).
        root: PathBuf,
    },
    /// `s3://` storage: one multipart upload per session, one part per chunk. `PrefixStore`
    /// does not pass `MultipartStore` through, so the key prefix is applied here.
    S3 {
        /// The bucket's client.
        s3: Arc<AmazonS3>,
        /// The configured key prefix (no slashes at either end; empty for none).
        prefix: String,
    },
}

impl Staging {
    /// Whether chunks become S3 parts (which are at least 5 MiB but the last).
    pub fn is_s3(&self) -> bool {
        matches!(self, Staging::S3 { .. })
    }

    fn key(prefix: &str, path: &str) -> Path {
        if prefix.is_empty() {
            Path::from(path)
        } else {
            Path::from(format!("{prefix}/{path}"))
        }
    }

    /// The local file behind a staging handle.
    pub fn local_file(root: &std::path::Path, handle: &str) -> PathBuf {
        root.join(handle)
    }

    /// Starts storage for a session whose asset will live at `path`; returns the handle kept
    /// in the session row (the multipart upload id, or the staging file's relative path).
    pub async fn begin(&self, user: &str, id: &str, nonce: &str, path: &str) -> Result<String, ApiError> {
        match self {
            Staging::Local { root } => {
                let handle = format!("{UPLOADS_DIR}/{user}/{id}-{nonce}");
                let file = Self::local_file(root, &handle);
                if let Some(dir) = file.parent() {
                    tokio::fs::create_dir_all(dir).await.map_err(ApiError::internal)?;
                }
                tokio::fs::File::create(&file).await.map_err(ApiError::internal)?;
                Ok(handle)
            }
            Staging::S3 { s3, prefix } => Ok(s3.create_multipart(&Self::key(prefix, path)).await?),
        }
    }

    /// Stores one chunk as part `index` (S3 only); returns the part's ETag.
    pub async fn put_part(&self, path: &str, handle: &str, index: usize, data: Vec<Bytes>) -> Result<String, ApiError> {
        match self {
            Staging::S3 { s3, prefix } => {
                let payload: PutPayload = data.into_iter().collect();
                let key = Self::key(prefix, path);
                Ok(s3.put_part(&key, &handle.to_owned(), index, payload).await?.content_id)
            }
            Staging::Local { .. } => Err(ApiError::internal("put_part on local staging")),
        }
    }

    /// Puts the complete bytes at the asset's key: completes the multipart upload from the
    /// recorded parts, or hard-links the staging file (which stays until [`Self::discard`]).
    pub async fn complete(&self, path: &str, handle: &str, parts: &[String]) -> Result<(), ApiError> {
        match self {
            Staging::S3 { s3, prefix } => {
                let parts = parts.iter().map(|p| PartId { content_id: p.clone() }).collect();
                s3.complete_multipart(&Self::key(prefix, path), &handle.to_owned(), parts).await?;
                Ok(())
            }
            Staging::Local { root } => {
                let (from, to) = (Self::local_file(root, handle), root.join(path));
                if let Some(dir) = to.parent() {
                    tokio::fs::create_dir_all(dir).await.map_err(ApiError::internal)?;
                }
                tokio::fs::hard_link(&from, &to).await.map_err(ApiError::internal)?;
                // The new name on disk before the row commits (the bytes are: every chunk
                // was flushed before its offset was recorded).
                let root = root.clone();
                tokio::task::spawn_blocking(move || {
                    let dir = to.parent().unwrap_or(&root);
                    crate::localfile::sync_dir(dir)?;
                    if dir != root {
                        crate::localfile::sync_dir(&root)?;
                    }
                    Ok::<_, std::io::Error>(())
                })
                .await
                .map_err(ApiError::internal)?
                .map_err(ApiError::internal)
            }
        }
    }

    /// Removes a session's bytes: deletes the staging file or aborts the multipart upload.
    /// Already gone is fine.
    pub async fn discard(&self, path: &str, handle: &str) -> Result<(), String> {
        match self {
            Staging::Local { root } => match tokio::fs::remove_file(Self::local_file(root, handle)).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("removing {handle}: {e}")),
                _ => Ok(()),
            },
            Staging::S3 { s3, prefix } => {
                match s3.abort_multipart(&Self::key(prefix, path), &handle.to_owned()).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(format!("aborting the multipart upload of {path}: {e}")),
                }
            }
        }
    }
}
