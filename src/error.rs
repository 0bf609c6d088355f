//! The library's error type and its stable JS names/codes.
//! Browser failures (DOMExceptions) are classified here once, so callers see one vocabulary.

use thiserror::Error;

use crate::validate::ValidationError;

/// Everything the local library can fail with.
///
/// `name()` is the stable JS `Error.name` (a category an app can switch on) and
/// `code()` a stable, more specific identifier; the message says what to do.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum LibraryError {
    /// The caller passed something we refuse; nothing was written.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// No asset with this id in the library.
    #[error("no asset with id {0} in this library; it was never imported here or has been deleted")]
    NotFound(String),
    /// The record exists but its bytes are gone (cleared site data, or a crash before
    /// an older version committed them). The record is kept so nothing disappears silently.
    #[error(
        "the bytes of asset {0} are missing from local storage; delete the asset or re-download it once it is synced"
    )]
    BytesMissing(String),
    /// The bytes of an asset that never reached a server are gone from this device (the
    /// browser or the user cleared the site's storage). They cannot come back; the record is
    /// kept, in `error` with this code, and is never uploaded.
    #[error("the bytes of asset {0} were lost from this device's storage (cleared by the browser or the user) before they reached a server; they cannot be recovered: import the file again, then delete this asset")]
    LocalBytesLost(String),
    /// The browser refused to store more; nothing of this operation was kept.
    #[error("storage quota exceeded while {0}; nothing was stored. Free space (delete assets), or call requestPersistence() to ask for a larger quota")]
    QuotaExceeded(String),
    /// Neither OPFS nor IndexedDB can be used (private mode, disabled storage, or the
    /// requested backend is missing).
    #[error("local storage is unavailable: {0}")]
    StorageUnavailable(String),
    /// A catalog record that does not parse as a `MediaAsset`.
    #[error("the catalog record {id:?} is corrupt ({detail}); delete it with deleteAsset or clear the library")]
    CorruptRecord {
        /// The record's key.
        id: String,
        /// What failed to parse.
        detail: String,
    },
    /// The source Blob could not be read (the file changed on disk or was revoked).
    #[error("could not read the file being imported ({0}); pick the file again")]
    SourceUnreadable(String),
    /// Downloaded bytes do not hash to the checksum the server announced; nothing was stored.
    #[error("the download of asset {id} is corrupt (SHA-256 {got}, expected {expected}); nothing was stored and the local record is unchanged. Retry the download later")]
    ChecksumMismatch {
        /// The asset.
        id: String,
        /// The checksum on the record.
        expected: String,
        /// The checksum of what arrived.
        got: String,
    },
    /// The asset's bytes are only on the server, and no sync service is running here to fetch them.
    #[error("asset {0} is not downloaded to this device yet; call MediaSyncService.downloadAsset(id), or create a MediaSyncService in this context so getAssetFile downloads it")]
    NotDownloaded(String),
    /// Downloading a remote-only asset failed (network, or the server refused).
    #[error("could not download asset {id}: {reason}")]
    DownloadFailed {
        /// The asset.
        id: String,
        /// What went wrong.
        reason: String,
    },
    /// The operation was aborted by the caller.
    #[error("the operation was aborted")]
    Aborted,
    /// Any other storage failure, with the browser's own message.
    #[error("{op} failed: {detail}")]
    Storage {
        /// What we were doing.
        op: &'static str,
        /// What the browser said.
        detail: String,
    },
}

impl LibraryError {
    /// The stable `Error.name` for JS.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "InvalidInputError",
            Self::NotFound(_) | Self::BytesMissing(_) | Self::LocalBytesLost(_) => "NotFoundError",
            Self::QuotaExceeded(_) => "QuotaExceededError",
            Self::StorageUnavailable(_) => "StorageUnavailableError",
            Self::CorruptRecord { .. } => "CorruptRecordError",
            Self::SourceUnreadable(_) => "InvalidInputError",
            Self::Aborted => "AbortError",
            Self::Storage { .. } => "StorageError",
            Self::ChecksumMismatch { .. } => "ChecksumMismatchError",
            Self::NotDownloaded(_) => "NotDownloadedError",
            Self::DownloadFailed { .. } => "NetworkError",
        }
    }

    /// The stable, specific `code` for JS.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(v) => match v {
                ValidationError::NotABlob(_) => "NOT_A_BLOB",
                ValidationError::StreamLocked(_) => "STREAM_LOCKED",
                ValidationError::NotBytes(_) => "NOT_BYTES",
                ValidationError::EmptyName => "EMPTY_NAME",
                ValidationError::NameTooLong(_) => "NAME_TOO_LONG",
                ValidationError::NameHasControl(_) => "NAME_HAS_CONTROL_CHARACTER",
                ValidationError::NameIsPath(_) => "NAME_IS_PATH",
                ValidationError::MalformedId(_) => "MALFORMED_ID",
                ValidationError::BadTags(_) => "INVALID_TAGS",
                ValidationError::BadMimeType(_) => "INVALID_TYPE",
                ValidationError::BadLibraryName(_) => "INVALID_LIBRARY_NAME",
                ValidationError::BadOptions { .. } => "INVALID_OPTIONS",
            },
            Self::NotFound(_) => "ASSET_NOT_FOUND",
            Self::BytesMissing(_) => "BYTES_MISSING",
            Self::LocalBytesLost(_) => "LOCAL_BYTES_LOST",
            Self::QuotaExceeded(_) => "QUOTA_EXCEEDED",
            Self::StorageUnavailable(_) => "STORAGE_UNAVAILABLE",
            Self::CorruptRecord { .. } => "CORRUPT_RECORD",
            Self::SourceUnreadable(_) => "SOURCE_UNREADABLE",
            Self::Aborted => "ABORTED",
            Self::Storage { .. } => "STORAGE_FAILED",
            Self::ChecksumMismatch { .. } => "CHECKSUM_MISMATCH",
            Self::NotDownloaded(_) => "NOT_DOWNLOADED",
            Self::DownloadFailed { .. } => "DOWNLOAD_FAILED",
        }
    }

    /// Classifies a browser failure by its `DOMException` name (`name`/`message` as the
    /// browser reported them) while doing `op`.
    pub fn from_dom(op: &'static str, name: &str, message: &str) -> Self {
        match name {
            "QuotaExceededError" => Self::QuotaExceeded(op.to_owned()),
            "SecurityError" | "NotAllowedError" | "InvalidStateError" if op.starts_with("opening") => {
                Self::StorageUnavailable(format!("{op}: {name}: {message}"))
            }
            "NotReadableError" => Self::SourceUnreadable(format!("{name}: {message}")),
            "AbortError" => Self::Aborted,
            _ => Self::Storage { op, detail: format!("{name}: {message}") },
        }
    }

    /// Classifies a failed write of a whole source into a file, when the source was then
    /// read back fine. Chromium reports `createWritable().write(blob)` of a large Blob over
    /// quota as `NotReadableError`, which `from_dom` would take for an unreadable *source*:
    /// with the source proven readable, the destination failed, and where the origin had no
    /// room for it (`room`, probed after the failure; `None` if unknown) that is the quota.
    pub fn from_failed_write(op: &'static str, name: &str, message: &str, room: Option<bool>) -> Self {
        match name {
            "QuotaExceededError" => Self::QuotaExceeded(op.to_owned()),
            "AbortError" => Self::Aborted,
            _ if room == Some(false) => Self::QuotaExceeded(op.to_owned()),
            _ => Self::Storage { op, detail: format!("{name}: {message}") },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dom_exceptions_are_classified() {
        assert_eq!(LibraryError::from_dom("importing", "QuotaExceededError", "full").name(), "QuotaExceededError");
        assert_eq!(LibraryError::from_dom("importing", "NotReadableError", "gone").code(), "SOURCE_UNREADABLE");
        // A readable source whose write failed: the destination's fault, never "pick the file again".
        let w = |name, room| LibraryError::from_failed_write("writing the file", name, "m", room).code();
        assert_eq!(w("NotReadableError", Some(false)), "QUOTA_EXCEEDED", "Chromium's over-quota write(blob)");
        assert_eq!(w("NotReadableError", Some(true)), "STORAGE_FAILED", "room left: some other failure");
        assert_eq!(w("NotReadableError", None), "STORAGE_FAILED");
        assert_eq!(w("QuotaExceededError", None), "QUOTA_EXCEEDED");
        assert_eq!(w("AbortError", Some(false)), "ABORTED");
        assert_eq!(LibraryError::from_dom("opening OPFS", "SecurityError", "no").name(), "StorageUnavailableError");
        let other = LibraryError::from_dom("reading", "UnknownError", "boom");
        assert_eq!(other.name(), "StorageError");
        assert!(other.to_string().contains("boom"));
    }

    #[test]
    fn every_validation_error_maps_to_invalid_input() {
        let e: LibraryError = ValidationError::EmptyName.into();
        assert_eq!((e.name(), e.code()), ("InvalidInputError", "EMPTY_NAME"));
        assert!(e.to_string().contains("name"));
    }
}
