//! The pure rules of the resumable-upload extension: chunk lengths against the advertised
//! bounds, and the RFC 9530 `Content-Digest` header. No I/O, so `cargo test` covers them.

use base64::Engine;

/// The advertised bounds (capabilities `resumableUploads`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Files of at least this size SHOULD use a session (advice to clients only).
    pub min_bytes: u64,
    /// Smallest non-final chunk; a multiple of 64.
    pub chunk_min: u64,
    /// Largest chunk, final or not.
    pub chunk_max: u64,
}

/// What a chunk is, once its length is accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunk {
    /// More chunks follow: the length is a multiple of 64 within the bounds.
    Middle,
    /// `offset + len == size`: completes the upload.
    Final,
}

/// Why a chunk's length is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// Longer than `chunkMaxBytes` (413).
    #[error("chunks are at most {max} bytes")]
    TooLarge { max: u64 },
    /// Past the end of the file (400 INVALID_CHUNK).
    #[error("offset {offset} + length {len} is past the end of the {size}-byte upload")]
    PastEnd { offset: u64, len: u64, size: u64 },
    /// A non-final chunk outside the bounds or not a multiple of 64 (400 INVALID_CHUNK).
    #[error(
        "a chunk that does not end the upload is {min}-{max} bytes and a multiple of 64 (got {len}); \
         only the last chunk may be shorter"
    )]
    BadMiddle { len: u64, min: u64, max: u64 },
}

impl Limits {
    /// Checks a chunk of `len` bytes at `offset` (the client's claim) of a `size`-byte upload.
    /// Too large first (413), then past the end, then the non-final rules (400).
    pub fn chunk(&self, size: u64, offset: u64, len: u64) -> Result<Chunk, ChunkError> {
        if len > self.chunk_max {
            return Err(ChunkError::TooLarge { max: self.chunk_max });
        }
        let end = offset.checked_add(len).filter(|e| *e <= size);
        match end {
            None => Err(ChunkError::PastEnd { offset, len, size }),
            Some(e) if e == size && len >= 1 => Ok(Chunk::Final),
            Some(_) if len >= self.chunk_min && len % 64 == 0 => Ok(Chunk::Middle),
            Some(_) => Err(ChunkError::BadMiddle { len, min: self.chunk_min, max: self.chunk_max }),
        }
    }
}

/// The SHA-256 of a `Content-Digest` field value (RFC 9530: a Structured Fields dictionary
/// such as `sha-256=:<base64>:, sha-512=:<base64>:`). Other algorithms are ignored; `None`
/// when there is no `sha-256` member or it is not a 32-byte byte sequence, or when the
/// dictionary is malformed.
pub fn content_digest_sha256(v: &str) -> Option<[u8; 32]> {
    let mut found = None;
    for member in v.split(',') {
        let member = member.trim_matches(|c| c == ' ' || c == '\t');
        // Parameters (`;k=v`) may follow a member; the digest does not use any.
        let item = member.split(';').next()?;
        let (key, value) = item.split_once('=')?;
        let key_ok = key.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b == b'*')
            && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.*".contains(&b));
        if !key_ok {
            return None;
        }
        if key == "sha-256" {
            let b64 = value.strip_prefix(':')?.strip_suffix(':')?;
            let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
            // The last member of a repeated key wins (RFC 8941 3.2).
            found = Some(<[u8; 32]>::try_from(bytes.as_slice()).ok()?);
        }
    }
    found
}

/// `sha-256=:<base64>:` of a digest, the form details and docs show.
pub fn content_digest_value(digest: &[u8]) -> String {
    format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD.encode(digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits { min_bytes: 1000, chunk_min: 128, chunk_max: 512 };

    #[test]
    fn chunk_lengths() {
        assert_eq!(L.chunk(1000, 0, 128), Ok(Chunk::Middle));
        assert_eq!(L.chunk(1000, 0, 512), Ok(Chunk::Middle));
        assert_eq!(L.chunk(1000, 896, 104), Ok(Chunk::Final), "a short last chunk");
        assert_eq!(L.chunk(100, 0, 100), Ok(Chunk::Final), "a file smaller than chunkMin is one chunk");
        assert_eq!(L.chunk(1000, 488, 512), Ok(Chunk::Final));
        assert_eq!(L.chunk(1000, 0, 576), Err(ChunkError::TooLarge { max: 512 }));
        assert_eq!(L.chunk(10_000, 0, 513), Err(ChunkError::TooLarge { max: 512 }), "413 before 400");
        assert!(matches!(L.chunk(1000, 900, 128), Err(ChunkError::PastEnd { .. })));
        assert!(matches!(L.chunk(1000, u64::MAX, 1), Err(ChunkError::PastEnd { .. })), "no overflow");
        for bad in [0, 64, 127, 129, 191] {
            assert!(matches!(L.chunk(1000, 0, bad), Err(ChunkError::BadMiddle { .. })), "{bad}");
        }
        assert!(matches!(L.chunk(1000, 1000, 0), Err(ChunkError::BadMiddle { .. })), "an empty chunk at the end");
    }

    #[test]
    fn content_digest_parsing() {
        let d = [7u8; 32];
        let v = content_digest_value(&d);
        assert_eq!(content_digest_sha256(&v), Some(d));
        assert_eq!(content_digest_sha256(&format!("sha-512=:{}:, {v}", "A".repeat(88))), Some(d), "others ignored");
        assert_eq!(content_digest_sha256(&format!("{v};x=1")), Some(d), "parameters ignored");
        assert_eq!(content_digest_sha256(&format!("unixsum=:AA==:,{v}")), Some(d));
        for bad in [
            String::new(),
            "sha-512=:AAAA:".into(),
            "sha-256=AAAA".into(),
            "sha-256=:not base64!:".into(),
            "sha-256=:AAAA:".into(),
            v.to_uppercase(),
            format!("SHA-256=:{}:", base64::engine::general_purpose::STANDARD.encode(d)),
            format!("{v},"),
            format!("{v}, garbage"),
            "sha-256=\"x\"".into(),
        ] {
            assert_eq!(content_digest_sha256(&bad), None, "{bad}");
        }
    }
}
