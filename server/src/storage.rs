//! Where asset bytes live: any `object_store` backend chosen by configuration (a local
//! directory by default, S3-compatible at scale). The rest of the server never knows which.

use std::sync::Arc;

use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::ObjectStore;

use crate::db::Db;
use crate::resumable::store::{Staging, UPLOADS_DIR};

/// Builds the store from a URL: `file://<relative-or-absolute dir>` or `s3://<bucket>[/prefix]`
/// (credentials, region and endpoint from the usual `AWS_*` environment variables).
pub fn open(url: &str) -> Result<Arc<dyn ObjectStore>, String> {
    open_storage(url).map(|s| s.store)
}

/// The configured storage: the object store, and where resumable-upload sessions keep their
/// bytes on the same backend.
pub struct Storage {
    /// Asset bytes.
    pub store: Arc<dyn ObjectStore>,
    /// Upload-session bytes (a staging directory, or S3 multipart uploads).
    pub staging: Staging,
    /// The directory behind `store` (canonical), for `file://` storage.
    pub local: Option<std::path::PathBuf>,
}

/// Like [`open`], with the session storage of the same backend.
pub fn open_storage(url: &str) -> Result<Storage, String> {
    if let Some(dir) = url.strip_prefix("file://") {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create storage dir {dir:?}: {e}"))?;
        let store = LocalFileSystem::new_with_prefix(dir).map_err(|e| e.to_string())?;
        let root = std::fs::canonicalize(dir).map_err(|e| format!("storage dir {dir:?}: {e}"))?;
        return Ok(Storage {
            store: Arc::new(store),
            staging: Staging::Local { root: root.clone() },
            local: Some(root),
        });
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let mut b = AmazonS3Builder::from_env().with_url(url);
        if let Ok(ep) = std::env::var("AWS_ENDPOINT_URL").or_else(|_| std::env::var("AWS_ENDPOINT")) {
            b = b.with_allow_http(ep.starts_with("http://")).with_endpoint(ep);
        }
        let s3 = Arc::new(b.build().map_err(|e| e.to_string())?);
        // The builder takes only the bucket from the URL: the key prefix is ours to apply, or
        // every deployment sharing a bucket would write (and sweep) at its root.
        let prefix = rest.split_once('/').map_or("", |(_, p)| p.trim_matches('/'));
        let store: Arc<dyn ObjectStore> =
            if prefix.is_empty() { s3.clone() } else { Arc::new(PrefixStore::new(AmazonS3::clone(&s3), prefix)) };
        return Ok(Storage { store, staging: Staging::S3 { s3, prefix: prefix.to_owned() }, local: None });
    }
    Err(format!("unsupported storage URL {url:?}: use file://<dir> or s3://<bucket>[/prefix]"))
}

/// The local directory behind a `file://` storage URL (for the staging-file sweep).
pub fn local_root(url: &str) -> Option<std::path::PathBuf> {
    url.strip_prefix("file://").map(std::path::PathBuf::from)
}

/// Removes objects no live row references and older than `grace` (uploads that crashed
/// between writing bytes and committing metadata, or whose cleanup failed). With a local
/// directory it also removes the staging files (`<object>#<n>`) a crash leaves mid-upload,
/// which `object_store` does not list. On S3, unfinished multipart uploads are invisible
/// here: configure the bucket's AbortIncompleteMultipartUpload lifecycle rule.
pub async fn sweep_orphans(
    store: &dyn ObjectStore,
    db: &Db,
    local_root: Option<&std::path::Path>,
    grace: std::time::Duration,
) -> Result<usize, String> {
    let cutoff = chrono_now() - grace.as_secs() as i64;
    let mut removed = match local_root {
        Some(root) => {
            let root = root.to_owned();
            tokio::task::spawn_blocking(move || remove_stale_staging(&root, grace))
                .await
                .map_err(|e| e.to_string())??
        }
        None => 0,
    };
    let mut listing = store.list(None);
    while let Some(meta) = listing.next().await {
        let meta = meta.map_err(|e| e.to_string())?;
        // Staging files of open upload sessions: the session sweep owns them.
        if meta.last_modified.timestamp() > cutoff || meta.location.as_ref().starts_with(UPLOADS_DIR) {
            continue;
        }
        if !db.path_in_use(meta.location.as_ref()).await.map_err(|e| e.to_string())? {
            store.delete(&meta.location).await.map_err(|e| e.to_string())?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn remove_stale_staging(dir: &std::path::Path, grace: std::time::Duration) -> Result<usize, String> {
    let mut removed = 0;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.to_string()),
    };
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let meta = entry.metadata().map_err(|e| e.to_string())?;
        if meta.is_dir() {
            removed += remove_stale_staging(&entry.path(), grace)?;
        } else if entry.file_name().to_string_lossy().contains('#') {
            let age = meta.modified().ok().and_then(|m| m.elapsed().ok()).unwrap_or_default();
            if age >= grace {
                std::fs::remove_file(entry.path()).map_err(|e| e.to_string())?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The object path of an asset's bytes: `<user>/<id>-<nonce>-<safe-name>`. The nonce makes
/// each upload attempt write its own object, so a racing or corrupt retry never overwrites
/// committed bytes.
pub fn asset_path(user: &str, id: &str, nonce: &str, name: &str) -> Path {
    Path::from(format!("{user}/{id}-{nonce}-{}", safe_name(name)))
}

/// ASCII letters, digits, `.`, `_`, `-` kept; anything else becomes `_`; at most 100 bytes;
/// never empty or starting with a dot.
pub fn safe_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .take(100)
        .collect();
    if s.is_empty() || s.starts_with('.') {
        s.insert(0, '_');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape_the_user_directory() {
        for (raw, safe) in [
            ("../../etc/passwd", "_.._.._etc_passwd"),
            ("a/b\\c", "a_b_c"),
            ("", "_"),
            ("..", "_.."),
            ("été.png", "_t_.png"),
        ] {
            assert_eq!(safe_name(raw), safe, "{raw}");
        }
        assert_eq!(safe_name(&"x".repeat(500)).len(), 100);
        let p = asset_path("alice", "0190f0c2-7a0e-7cc0-8000-000000000001", "ab12", "../../x");
        assert_eq!(p.as_ref(), "alice/0190f0c2-7a0e-7cc0-8000-000000000001-ab12-_.._.._x");
        assert_eq!(p.parts().count(), 2);
    }
}
