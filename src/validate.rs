//! Input validation for everything a caller hands the library: names, ids, tags.
//! Plain Rust with no browser types, so every rule is tested natively.

use thiserror::Error;

/// Longest display name accepted, in UTF-8 bytes (the common file-system limit).
pub const MAX_NAME_BYTES: usize = 255;
/// Most tags on one asset, and the longest tag in bytes.
pub const MAX_TAGS: usize = 64;
/// Longest tag in UTF-8 bytes.
pub const MAX_TAG_BYTES: usize = 64;
/// Longest library name in bytes.
pub const MAX_LIBRARY_NAME_BYTES: usize = 64;

/// Why an input was refused. Each message says what to pass instead.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ValidationError {
    /// The value handed in as a file is not a `Blob`/`File`.
    #[error("expected a File, Blob or ReadableStream, got {0}; pass the File from an <input type=file>, a drop event, `new File([...], name)` or a stream of bytes (e.g. a fetch body)")]
    NotABlob(String),
    /// The stream to import is locked (another reader holds it) or already consumed.
    #[error("the ReadableStream to import is locked or already read ({0}); pass a fresh stream nobody else reads (tee() it to read it twice)")]
    StreamLocked(String),
    /// The stream to import yielded a chunk that is not bytes.
    #[error("the stream being imported yielded {0}, not bytes; enqueue Uint8Array, ArrayBuffer, typed-array or Blob chunks (e.g. pipe text through a TextEncoderStream)")]
    NotBytes(String),
    /// The display name is empty or only white space.
    #[error("the file name is empty; pass a non-empty `name` in the import options")]
    EmptyName,
    /// The display name is longer than [`MAX_NAME_BYTES`].
    #[error("the file name is {0} bytes long; names may be at most 255 bytes (UTF-8): shorten it or pass `name` in the import options")]
    NameTooLong(usize),
    /// The display name holds a control character (U+0000..U+001F, U+007F..U+009F).
    #[error("the file name contains a control character (U+{0:04X}); remove it or pass a clean `name`")]
    NameHasControl(u32),
    /// The display name is a path (`/`, `\\`, `.` or `..`), not a file name.
    #[error("the file name {0:?} is a path, not a file name; pass the last path segment only")]
    NameIsPath(String),
    /// The id is not a UUID.
    #[error("{0:?} is not a valid asset id; ids are UUIDs such as the one importFileToLibrary returned")]
    MalformedId(String),
    /// A tag is empty, too long, has control characters, or there are too many.
    #[error("invalid tags: {0}")]
    BadTags(String),
    /// The MIME type is not `type/subtype`.
    #[error("{0:?} is not a MIME type; pass something like `image/png`, or leave `type` out")]
    BadMimeType(String),
    /// A library name that cannot name a database and a directory.
    #[error("{0:?} is not a valid library name; use 1-64 characters from a-z, A-Z, 0-9, '-' and '_'")]
    BadLibraryName(String),
    /// An options object of the wrong shape.
    #[error("invalid {what}: {detail}")]
    BadOptions {
        /// Which argument.
        what: &'static str,
        /// What serde said about it.
        detail: String,
    },
}

/// Checks a display name. Names never reach a file path (files are named by id), but a
/// name that is empty, a path, hidden in control characters or huge is a caller bug
/// we report rather than store.
pub fn display_name(name: &str) -> Result<String, ValidationError> {
    if name.trim().is_empty() {
        return Err(ValidationError::EmptyName);
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(ValidationError::NameTooLong(name.len()));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(ValidationError::NameHasControl(c as u32));
    }
    if name.contains(['/', '\\']) || name == "." || name == ".." {
        return Err(ValidationError::NameIsPath(name.to_owned()));
    }
    Ok(name.to_owned())
}

/// Parses an asset id into its canonical lowercase hyphenated form.
pub fn asset_id(id: &str) -> Result<String, ValidationError> {
    // Only the hyphenated form: braces, URNs and simple forms are not ids we hand out.
    if id.len() != 36 {
        return Err(ValidationError::MalformedId(truncate(id)));
    }
    uuid::Uuid::try_parse(id)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| ValidationError::MalformedId(truncate(id)))
}

/// The creation time (ms since the epoch) a UUID v7 id carries, `None` for other ids.
pub fn uuid_v7_ms(id: &str) -> Option<f64> {
    let u = uuid::Uuid::try_parse(id).ok()?;
    (u.get_version_num() == 7).then(|| u.get_timestamp()).flatten().map(|t| {
        let (secs, nanos) = t.to_unix();
        secs as f64 * 1000.0 + f64::from(nanos / 1_000_000)
    })
}

/// Checks a tag list: at most [`MAX_TAGS`], each 1..=[`MAX_TAG_BYTES`] bytes without
/// control characters; duplicates are dropped, order kept.
pub fn tags(tags: &[String]) -> Result<Vec<String>, ValidationError> {
    if tags.len() > MAX_TAGS {
        return Err(ValidationError::BadTags(format!("{} tags given, at most {MAX_TAGS} allowed", tags.len())));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for t in tags {
        if t.trim().is_empty() || t.len() > MAX_TAG_BYTES || t.chars().any(char::is_control) {
            return Err(ValidationError::BadTags(format!(
                "{:?} must be 1-{MAX_TAG_BYTES} bytes without control characters",
                truncate(t)
            )));
        }
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

/// Normalises a MIME type: empty becomes `application/octet-stream`; otherwise it must
/// look like `type/subtype` (parameters allowed) and is lowercased.
pub fn mime_type(t: &str) -> Result<String, ValidationError> {
    let t = t.trim();
    if t.is_empty() {
        return Ok("application/octet-stream".to_owned());
    }
    let essence = t.split(';').next().unwrap_or_default().trim();
    let valid_token =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
    match essence.split_once('/') {
        Some((a, b)) if valid_token(a) && valid_token(b) && t.len() <= 255 && !t.chars().any(char::is_control) => {
            Ok(t.to_ascii_lowercase())
        }
        _ => Err(ValidationError::BadMimeType(truncate(t))),
    }
}

/// Checks a library name (it becomes part of an IndexedDB name and an OPFS directory).
pub fn library_name(name: &str) -> Result<String, ValidationError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_LIBRARY_NAME_BYTES
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(name.to_owned())
    } else {
        Err(ValidationError::BadLibraryName(truncate(name)))
    }
}

/// Keeps error messages short when the input is huge (a 10 KB name, say).
fn truncate(s: &str) -> String {
    const MAX: usize = 80;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v7_time_is_read_back() {
        assert_eq!(uuid_v7_ms("0190f0c2-7a0e-7cc0-8000-000000000001"), Some(1_722_026_195_470.0));
        assert_eq!(uuid_v7_ms("6ba7b810-9dad-11d1-80b4-00c04fd430c8"), None, "v1");
        assert_eq!(uuid_v7_ms("nope"), None);
    }

    #[test]
    fn ordinary_names_pass() {
        for n in ["cat.png", "Été 2024 — plage.jpg", ".hidden", "a..b", "x"] {
            assert_eq!(display_name(n).unwrap(), n);
        }
    }

    #[test]
    fn hostile_names_are_refused() {
        assert_eq!(display_name(""), Err(ValidationError::EmptyName));
        assert_eq!(display_name("   "), Err(ValidationError::EmptyName));
        assert!(matches!(display_name("../x"), Err(ValidationError::NameIsPath(_))));
        assert!(matches!(display_name("a\\b"), Err(ValidationError::NameIsPath(_))));
        assert!(matches!(display_name(".."), Err(ValidationError::NameIsPath(_))));
        assert_eq!(display_name("a\nb"), Err(ValidationError::NameHasControl(0x0a)));
        assert_eq!(display_name("a\u{0}b"), Err(ValidationError::NameHasControl(0)));
        assert_eq!(display_name("a\u{9b}b"), Err(ValidationError::NameHasControl(0x9b)));
        let long = "x".repeat(10 * 1024);
        assert_eq!(display_name(&long), Err(ValidationError::NameTooLong(10 * 1024)));
        assert!(display_name(&"é".repeat(128)).is_err(), "256 bytes of UTF-8");
        assert!(display_name(&"é".repeat(127)).is_ok());
    }

    #[test]
    fn long_input_is_truncated_in_messages() {
        let msg = asset_id(&"z".repeat(10_000)).unwrap_err().to_string();
        assert!(msg.len() < 300, "{msg}");
        assert!(msg.contains("10000 bytes"));
    }

    #[test]
    fn ids_are_canonicalised_or_refused() {
        let id = "0190F0C2-7A0E-7CC0-8000-00000000000A";
        assert_eq!(asset_id(id).unwrap(), id.to_lowercase());
        for bad in [
            "",
            "not-an-id",
            "0190f0c27a0e7cc0800000000000000a",
            "{0190f0c2-7a0e-7cc0-8000-00000000000a}",
            "0190f0c2-7a0e-7cc0-8000-00000000000g",
            "../../etc/passwd-aaaaaaaaaaaaaaaaaaa",
        ] {
            assert!(matches!(asset_id(bad), Err(ValidationError::MalformedId(_))), "{bad}");
        }
    }

    #[test]
    fn tags_are_checked_and_deduplicated() {
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(tags(&t(&["a", "b", "a"])).unwrap(), t(&["a", "b"]));
        assert!(tags(&t(&[""])).is_err());
        assert!(tags(&t(&["a\tb"])).is_err());
        assert!(tags(&vec!["x".to_string(); 65]).is_err());
        assert!(tags(&t(&[&"y".repeat(65)])).is_err());
    }

    #[test]
    fn mime_types_are_normalised() {
        assert_eq!(mime_type("").unwrap(), "application/octet-stream");
        assert_eq!(mime_type("Image/PNG").unwrap(), "image/png");
        assert_eq!(mime_type("text/plain; charset=utf-8").unwrap(), "text/plain; charset=utf-8");
        for bad in ["png", "image/", "/png", "a/b/c", "image/pn g", "text/pl\nain"] {
            assert!(mime_type(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn library_names() {
        assert!(library_name("default").is_ok());
        assert!(library_name("test_01-a").is_ok());
        for bad in ["", "a/b", "..", "a b", &"x".repeat(65)] {
            assert!(library_name(bad).is_err(), "{bad}");
        }
    }
}
