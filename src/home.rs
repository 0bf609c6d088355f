//! Where an asset's bytes live: below the small-file threshold in IndexedDB (committed in the
//! record's own transaction), at or above it in OPFS. Plain Rust, decided per asset.

use crate::asset::StorageKind;
use crate::validate::ValidationError;

/// The default `smallFileBytes`: bytes below it go to IndexedDB where OPFS is the library's
/// home. Measured in Chromium, page and worker (bench/bench.js, "crossover" rows; README):
/// imports are 2-3x faster in IndexedDB at every size up to 4 MiB, reads are faster up to
/// 256 KB and about even at 1 MiB; above it a page reads OPFS faster.
pub const DEFAULT_SMALL_FILE_BYTES: f64 = 1024.0 * 1024.0;

/// The largest `smallFileBytes` accepted: an IndexedDB transaction holds every small file of a
/// batch at once, so the threshold stays far below the sizes that need OPFS's streaming.
pub const MAX_SMALL_FILE_BYTES: f64 = 64.0 * 1024.0 * 1024.0;

/// Checks a `smallFileBytes` option: a whole number of bytes in `0..=MAX_SMALL_FILE_BYTES`
/// (`0`: every asset in OPFS).
pub fn small_file_bytes(v: f64) -> Result<f64, ValidationError> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= MAX_SMALL_FILE_BYTES {
        return Ok(v);
    }
    Err(ValidationError::BadOptions {
        what: "library options",
        detail: format!(
            "smallFileBytes must be a whole number of bytes from 0 (always OPFS) to {MAX_SMALL_FILE_BYTES}, not {v}"
        ),
    })
}

/// Where new bytes of `size` go (`None`: a stream of unknown length) in a library whose
/// large files live in OPFS when `has_opfs`. Strictly below the threshold is small.
pub fn home(size: Option<f64>, small_file_bytes: f64, has_opfs: bool) -> StorageKind {
    match size {
        _ if !has_opfs => StorageKind::Indexeddb,
        Some(n) if n < small_file_bytes => StorageKind::Indexeddb,
        _ => StorageKind::Opfs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_goes_to_indexeddb_and_the_threshold_itself_to_opfs() {
        let t = 1000.0;
        assert_eq!(home(Some(0.0), t, true), StorageKind::Indexeddb);
        assert_eq!(home(Some(999.0), t, true), StorageKind::Indexeddb);
        assert_eq!(home(Some(1000.0), t, true), StorageKind::Opfs, "exactly the threshold is not small");
        assert_eq!(home(Some(5e9), t, true), StorageKind::Opfs);
        assert_eq!(home(None, t, true), StorageKind::Opfs, "a stream's length is unknown: OPFS");
    }

    #[test]
    fn zero_means_always_opfs_and_no_opfs_means_always_indexeddb() {
        assert_eq!(home(Some(0.0), 0.0, true), StorageKind::Opfs, "even an empty file");
        for size in [Some(0.0), Some(5e9), None] {
            assert_eq!(home(size, DEFAULT_SMALL_FILE_BYTES, false), StorageKind::Indexeddb);
        }
    }

    #[test]
    fn the_option_is_a_whole_number_in_range() {
        for ok in [0.0, 1.0, DEFAULT_SMALL_FILE_BYTES, MAX_SMALL_FILE_BYTES] {
            assert_eq!(small_file_bytes(ok), Ok(ok));
        }
        for bad in [-1.0, 0.5, f64::NAN, f64::INFINITY, MAX_SMALL_FILE_BYTES + 1.0] {
            let e = small_file_bytes(bad).unwrap_err();
            assert!(matches!(e, ValidationError::BadOptions { .. }), "{bad}: {e:?}");
        }
    }
}
