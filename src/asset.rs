//! The catalog record (`MediaAsset`) and the small types around it.
//! Plain serde types: they are stored in IndexedDB, returned to JS and typed for TypeScript.

use serde::{Deserialize, Deserializer, Serialize};
use tsify::Tsify;

/// Where an asset's bytes live on this device.
#[derive(Tsify, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// The Origin Private File System (`handleName` names the file).
    #[default]
    Opfs,
    /// An IndexedDB `blobs` store: small files (below `smallFileBytes`), and every file where
    /// OPFS is missing.
    Indexeddb,
    /// Not on this device: the asset came from the server (or its local copy was freed);
    /// `MediaSyncService.downloadAsset` (or `getAssetFile` with a service running) fetches it.
    Remote,
}

impl StorageKind {
    /// The lowercase name used in records, options and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageKind::Opfs => "opfs",
            StorageKind::Indexeddb => "indexeddb",
            StorageKind::Remote => "remote",
        }
    }
}

/// Why an asset is in `error`: the server's code and message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncError {
    /// HTTP status (0 for none).
    pub status: u16,
    /// The protocol's error code.
    pub code: String,
}

/// Where an asset stands with the server. Local imports start as `pending`.
#[derive(Tsify, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SyncStatus {
    /// Waiting to be uploaded (or re-sent).
    #[default]
    Pending,
    /// A sync is moving it right now.
    Syncing,
    /// The server has it and it matches.
    Synced,
    /// The last attempt failed permanently; see the sync service for details.
    Error,
}

// tsify would mark every `#[serde(default)]` field optional, but records we return always
// carry them; so this one interface is written by hand (the tsc check and the browser
// tests' `RETURNED_KEYS` keep it honest).
#[wasm_bindgen::prelude::wasm_bindgen(typescript_custom_section)]
const MEDIA_ASSET_TS: &str = r#"
/** One media item in the local library. Cloud fields are absent until the asset is synced. */
export interface MediaAsset {
    /** Client-assigned UUID v7, lowercase and hyphenated. */
    id: string;
    /** The OPFS file name holding the bytes (for IndexedDB storage, the blob key). */
    handleName: string;
    /** The display name (usually the original file name). */
    name: string;
    /** MIME type; `application/octet-stream` when the source had none. */
    type: string;
    /** Size in bytes. */
    size: number;
    /** Milliseconds since the Unix epoch. */
    createdAt: number;
    /** Milliseconds since the Unix epoch; changes on every metadata edit. */
    updatedAt: number;
    /** Lowercase hex SHA-256 of the content (absent on records from before checksums). */
    sha256?: string;
    /** User tags. */
    tags: string[];
    /** Where the bytes are kept on this device. */
    storage: StorageKind;
    /** Sync state with the server. */
    syncStatus: SyncStatus;
    /** The server's id for this asset, once uploaded. */
    cloudId?: string;
    /** Where the server serves the bytes, once uploaded. */
    cloudUrl?: string;
    /** The user the asset belongs to on the server, once known. */
    userId?: string;
    /** The server's metadata version this record is based on, once uploaded. */
    cloudVersion?: number;
    /** Why the last sync of this asset failed for good (with `syncStatus: 'error'`). */
    syncError?: SyncErrorInfo;
}

/** The server's answer that put an asset in `syncStatus: 'error'`. */
export interface SyncErrorInfo {
    /** HTTP status (0 when there was no response). */
    status: number;
    /** The protocol's stable error code, e.g. `PAYLOAD_TOO_LARGE`. */
    code: string;
}
"#;

/// One media item in the local library.
///
/// Every field added after the first release is optional or has a default, so
/// records written by older versions (no cloud fields, no checksum) still load.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MediaAsset {
    /// Client-assigned UUID v7, lowercase and hyphenated.
    pub id: String,
    /// The OPFS file name holding the bytes (for IndexedDB storage, the blob key).
    pub handle_name: String,
    /// The display name (usually the original file name).
    pub name: String,
    /// MIME type; `application/octet-stream` when the source had none.
    #[serde(rename = "type")]
    pub mime_type: String,
    /// Size in bytes.
    pub size: f64,
    /// Milliseconds since the Unix epoch.
    #[serde(deserialize_with = "de_timestamp")]
    pub created_at: f64,
    /// Milliseconds since the Unix epoch; changes on every metadata edit.
    #[serde(deserialize_with = "de_timestamp")]
    pub updated_at: f64,
    /// Lowercase hex SHA-256 of the content (absent on records from before checksums).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// User tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Where the bytes are kept on this device.
    #[serde(default)]
    pub storage: StorageKind,
    /// Sync state with the server.
    #[serde(default)]
    pub sync_status: SyncStatus,
    /// The server's id for this asset, once uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_id: Option<String>,
    /// Where the server serves the bytes, once uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_url: Option<String>,
    /// The user the asset belongs to on the server, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The server's metadata version this record is based on, once uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_version: Option<i64>,
    /// Why the last sync failed for good (with `SyncStatus::Error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_error: Option<SyncError>,
}

/// Accepts a number (ms since epoch) or an ISO-8601 string, as older apps stored either.
/// A visitor, not an untagged enum: those buffer the value through serde's `Content`, whose
/// code was ~10 KB of the package per deserializer.
fn de_timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    struct Timestamp;
    impl serde::de::Visitor<'_> for Timestamp {
        type Value = f64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a timestamp (ms since epoch or an ISO-8601 string)")
        }
        fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<f64, E> {
            // Not formatted into the message: float formatting is kilobytes of the package.
            n.is_finite().then_some(n).ok_or_else(|| E::custom("timestamp is not a finite number"))
        }
        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<f64, E> {
            Ok(n as f64)
        }
        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<f64, E> {
            Ok(n as f64)
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<f64, E> {
            parse_iso8601_ms(s).ok_or_else(|| E::custom(format!("timestamp {s:?} is not ISO-8601")))
        }
    }
    d.deserialize_any(Timestamp)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z` (what `Date.prototype.toISOString` writes).
fn parse_iso8601_ms(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !s.ends_with('Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let frac_ms = match s.get(19..s.len() - 1)? {
        "" => 0,
        f => fraction_ms(f.strip_prefix('.')?)?,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    // Days from civil date (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec;
    Some((secs * 1000 + frac_ms) as f64)
}

/// Milliseconds of a seconds fraction's digits (`"5"` is 500, `"1234"` rounds to 123), in
/// integers: no float parsing (its tables are kilobytes of the package).
fn fraction_ms(digits: &str) -> Option<i64> {
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let digit = |i: usize| digits.as_bytes().get(i).map_or(0, |c| i64::from(c - b'0'));
    Some(digit(0) * 100 + digit(1) * 10 + digit(2) + i64::from(digit(3) >= 5))
}

/// Options for `importFileToLibrary`.
#[derive(Tsify, Deserialize, Default, Debug, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportOptions {
    /// Display name; defaults to the `File`'s name (a plain `Blob` or a stream needs it or gets `untitled`).
    #[serde(default)]
    #[tsify(optional)]
    pub name: Option<String>,
    /// MIME type; defaults to the Blob's `type` (for a stream: `application/octet-stream`).
    #[serde(default, rename = "type")]
    #[tsify(optional)]
    pub mime_type: Option<String>,
    /// Initial tags.
    #[serde(default)]
    #[tsify(optional)]
    pub tags: Option<Vec<String>>,
}

/// A user-metadata edit for `updateAsset`. Absent fields stay as they are.
#[derive(Tsify, Deserialize, Default, Debug, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssetPatch {
    /// New display name.
    #[serde(default)]
    #[tsify(optional)]
    pub name: Option<String>,
    /// New tag list (replaces the old one).
    #[serde(default)]
    #[tsify(optional)]
    pub tags: Option<Vec<String>>,
}

/// A filter for `listAssets`. All given fields must match.
#[derive(Tsify, Deserialize, Default, Debug, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListFilter {
    /// Only assets in this sync state.
    #[serde(default)]
    #[tsify(optional)]
    pub sync_status: Option<SyncStatus>,
    /// Only assets carrying this tag.
    #[serde(default)]
    #[tsify(optional)]
    pub tag: Option<String>,
    /// Only assets whose MIME type starts with this prefix (e.g. `image/`).
    #[serde(default)]
    #[tsify(optional)]
    pub type_prefix: Option<String>,
}

impl ListFilter {
    /// Whether `asset` passes every condition of the filter.
    pub fn matches(&self, asset: &MediaAsset) -> bool {
        self.sync_status.is_none_or(|s| s == asset.sync_status)
            && self.tag.as_ref().is_none_or(|t| asset.tags.contains(t))
            && self.type_prefix.as_ref().is_none_or(|p| asset.mime_type.starts_with(p.as_str()))
    }
}

/// What a start-up (or explicit) sweep found and did.
#[derive(Tsify, Serialize, Default, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Stored files or blobs with no catalog record, now removed.
    pub removed_orphans: Vec<String>,
    /// Temporary files of imports that never finished, now removed.
    pub removed_temp: Vec<String>,
    /// Ids of records whose bytes are missing. They are kept (never silently dropped):
    /// the app decides whether to re-download (once synced) or delete them.
    pub missing_bytes: Vec<String>,
}

/// Storage usage as the browser reports it.
#[derive(Tsify, Serialize, Default, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StorageInfo {
    /// Bytes this origin uses (all storage, not just this library).
    pub usage: f64,
    /// Bytes this origin may use.
    pub quota: f64,
    /// Whether the browser has granted persistent storage.
    pub persisted: bool,
    /// Where this library keeps new bytes of large files (small ones, below `smallFileBytes`,
    /// go to IndexedDB; each record's `storage` says where its bytes are).
    pub storage: StorageKind,
    /// The small-file threshold in this context: bytes below it are stored in IndexedDB
    /// (`0`: always OPFS; where OPFS is missing every asset is in IndexedDB).
    pub small_file_bytes: f64,
    /// The library's local budget in bytes (`null`: none set, nothing is ever evicted).
    pub budget: Option<f64>,
    /// Bytes of this library's assets stored on this device.
    pub local_bytes: f64,
    /// Of those, bytes eviction may drop (synced, not pinned).
    pub evictable_bytes: f64,
    /// Of those, bytes of pinned assets.
    pub pinned_bytes: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_record_without_cloud_fields_loads_with_defaults() {
        let old = r#"{"id":"0190f0c2-7a0e-7cc0-8000-000000000001","handleName":"a.png",
            "name":"a.png","type":"image/png","size":12,"createdAt":1700000000000,
            "updatedAt":"2023-11-14T22:13:20.000Z"}"#;
        let a: MediaAsset = serde_json::from_str(old).unwrap();
        assert_eq!(a.sync_status, SyncStatus::Pending);
        assert_eq!(a.storage, StorageKind::Opfs);
        assert_eq!(a.cloud_id, None);
        assert_eq!(a.sha256, None);
        assert!(a.tags.is_empty());
        assert_eq!(a.updated_at, 1_700_000_000_000.0);
    }

    #[test]
    fn optional_fields_are_absent_not_null_when_serialized() {
        let old = r#"{"id":"x","handleName":"x","name":"n","type":"t","size":0,
            "createdAt":1,"updatedAt":2}"#;
        let a: MediaAsset = serde_json::from_str(old).unwrap();
        let v = serde_json::to_value(&a).unwrap();
        assert!(v.get("cloudId").is_none());
        assert_eq!(v["syncStatus"], "pending");
        assert_eq!(v["storage"], "opfs");
        assert_eq!(v["type"], "t");
    }

    #[test]
    fn bad_timestamps_are_rejected() {
        for ts in [r#""yesterday""#, r#""2023-13-01T00:00:00Z""#, "null", "true", "[1]", "{}"] {
            let rec = format!(
                r#"{{"id":"x","handleName":"x","name":"n","type":"t","size":0,"createdAt":{ts},"updatedAt":1}}"#
            );
            assert!(serde_json::from_str::<MediaAsset>(&rec).is_err(), "{ts}");
        }
    }

    #[test]
    fn timestamps_are_integers_floats_or_iso() {
        for (ts, ms) in [
            ("-5", -5.0),
            ("18446744073709551615", u64::MAX as f64),
            ("1.5", 1.5),
            ("1e3", 1000.0),
            (r#""1970-01-01T00:00:02Z""#, 2000.0),
        ] {
            let rec = format!(
                r#"{{"id":"x","handleName":"x","name":"n","type":"t","size":0,"createdAt":{ts},"updatedAt":1}}"#
            );
            assert_eq!(serde_json::from_str::<MediaAsset>(&rec).unwrap().created_at, ms, "{ts}");
        }
    }

    #[test]
    fn iso_parser_matches_known_instants() {
        assert_eq!(parse_iso8601_ms("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_iso8601_ms("2000-03-01T00:00:00.250Z"), Some(951_868_800_250.0));
        assert_eq!(parse_iso8601_ms("2024-02-29T12:00:00.000Z"), Some(1_709_208_000_000.0));
        // Fractions of any length: tenths, microseconds (rounded), and malformed ones.
        assert_eq!(parse_iso8601_ms("1970-01-01T00:00:01.5Z"), Some(1_500.0));
        assert_eq!(parse_iso8601_ms("1970-01-01T00:00:00.123456Z"), Some(123.0));
        assert_eq!(parse_iso8601_ms("1970-01-01T00:00:00.9996Z"), Some(1_000.0));
        for bad in
            ["1970-01-01T00:00:00.Z", "1970-01-01T00:00:00.1aZ", "1970-01-01T00:00:00,5Z", "1970-01-01T00:00:00.-1Z"]
        {
            assert_eq!(parse_iso8601_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn filter_combines_conditions() {
        let mut a: MediaAsset = serde_json::from_str(
            r#"{"id":"x","handleName":"x","name":"n","type":"image/png","size":0,"createdAt":1,"updatedAt":2,"tags":["cat"]}"#,
        )
        .unwrap();
        let f = ListFilter { tag: Some("cat".into()), type_prefix: Some("image/".into()), ..Default::default() };
        assert!(f.matches(&a));
        a.sync_status = SyncStatus::Synced;
        let g = ListFilter { sync_status: Some(SyncStatus::Pending), ..Default::default() };
        assert!(!g.matches(&a));
        assert!(ListFilter::default().matches(&a));
    }
}
