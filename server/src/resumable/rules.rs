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
/// such as `sha-256=:<base64>:, sha-512=:<base64>:`). The whole field is parsed as RFC 8941
/// says, so a malformed member anywhere fails it (`None`); other members are ignored; the
/// `sha-256` member must be a byte sequence of 32 bytes (padding optional, RFC 8941 4.2.7).
pub fn content_digest_sha256(v: &str) -> Option<[u8; 32]> {
    let dict = sf::dictionary(v)?;
    // The last member of a repeated key wins (RFC 8941 3.2).
    match dict.into_iter().rev().find(|(k, _)| k == "sha-256")?.1 {
        sf::Value::Bytes(b) => <[u8; 32]>::try_from(b.as_slice()).ok(),
        _ => None,
    }
}

/// Just enough of RFC 8941 (Structured Field Values) to parse a dictionary strictly.
mod sf {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::Engine;

    /// A member's value, as far as a digest needs it.
    pub enum Value {
        Bytes(Vec<u8>),
        Other,
    }

    struct P<'a>(&'a [u8], usize);

    impl P<'_> {
        fn peek(&self) -> Option<u8> {
            self.0.get(self.1).copied()
        }
        fn eat(&mut self, c: u8) -> bool {
            let hit = self.peek() == Some(c);
            self.1 += usize::from(hit);
            hit
        }
        fn skip(&mut self, ws: &[u8]) {
            while self.peek().is_some_and(|c| ws.contains(&c)) {
                self.1 += 1;
            }
        }
        fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &[u8] {
            let start = self.1;
            while self.peek().is_some_and(&f) {
                self.1 += 1;
            }
            &self.0[start..self.1]
        }
        fn key(&mut self) -> Option<String> {
            let first = self.peek()?;
            (first.is_ascii_lowercase() || first == b'*').then_some(())?;
            let k = self.take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-.*".contains(&c));
            Some(String::from_utf8_lossy(k).into_owned())
        }
        fn bare(&mut self) -> Option<Value> {
            match self.peek()? {
                b'-' | b'0'..=b'9' => {
                    self.eat(b'-');
                    let int = self.take_while(|c| c.is_ascii_digit()).len();
                    if self.eat(b'.') {
                        let frac = self.take_while(|c| c.is_ascii_digit()).len();
                        ((1..=12).contains(&int) && (1..=3).contains(&frac)).then_some(Value::Other)
                    } else {
                        (1..=15).contains(&int).then_some(Value::Other)
                    }
                }
                b'"' => {
                    self.1 += 1;
                    loop {
                        match self.peek()? {
                            b'"' => return self.eat(b'"').then_some(Value::Other),
                            b'\\' => {
                                self.1 += 1;
                                matches!(self.peek()?, b'"' | b'\\').then_some(())?;
                                self.1 += 1;
                            }
                            0x20..=0x7e => self.1 += 1,
                            _ => return None,
                        }
                    }
                }
                b':' => {
                    self.1 += 1;
                    let b64 = self.take_while(|c| c.is_ascii_alphanumeric() || b"+/=".contains(&c)).to_vec();
                    self.eat(b':').then_some(())?;
                    let cfg = GeneralPurposeConfig::new()
                        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
                        .with_decode_allow_trailing_bits(true);
                    GeneralPurpose::new(&base64::alphabet::STANDARD, cfg).decode(b64).ok().map(Value::Bytes)
                }
                b'?' => {
                    self.1 += 1;
                    (self.eat(b'0') || self.eat(b'1')).then_some(Value::Other)
                }
                c if c.is_ascii_alphabetic() || c == b'*' => {
                    self.take_while(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&c));
                    Some(Value::Other)
                }
                _ => None,
            }
        }
        fn params(&mut self) -> Option<()> {
            while self.eat(b';') {
                self.skip(b" ");
                self.key()?;
                if self.eat(b'=') {
                    self.bare()?;
                }
            }
            Some(())
        }
        fn item_or_inner_list(&mut self) -> Option<Value> {
            if !self.eat(b'(') {
                let v = self.bare()?;
                return self.params().map(|()| v);
            }
            loop {
                self.skip(b" ");
                if self.eat(b')') {
                    return self.params().map(|()| Value::Other);
                }
                self.bare()?;
                self.params()?;
                matches!(self.peek()?, b' ' | b')').then_some(())?;
            }
        }
    }

    /// The members of a dictionary in order, or `None` if any of it is malformed.
    pub fn dictionary(v: &str) -> Option<Vec<(String, Value)>> {
        let mut p = P(v.trim_matches(' ').as_bytes(), 0);
        let mut out = vec![];
        while p.peek().is_some() {
            let key = p.key()?;
            let value = if p.eat(b'=') {
                p.item_or_inner_list()?
            } else {
                p.params()?;
                Value::Other
            };
            out.push((key, value));
            p.skip(b" \t");
            if p.peek().is_none() {
                break;
            }
            p.eat(b',').then_some(())?;
            p.skip(b" \t");
            p.peek()?;
        }
        Some(out)
    }
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
            format!("{v}, sha-512=:not base64!:"),
            format!("{v}, x=\"open"),
            format!("{v}, X=1"),
            format!("{v} garbage"),
            "sha-256=\"x\"".into(),
        ] {
            assert_eq!(content_digest_sha256(&bad), None, "{bad}");
        }
        let unpadded = format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD_NO_PAD.encode(d));
        assert_eq!(content_digest_sha256(&unpadded), Some(d), "padding is optional");
        let others = format!("a, b=?1, c=-1.5;q=2, d=(x \"y\" :AA==:), e=tok/en, {v}");
        assert_eq!(content_digest_sha256(&others), Some(d), "well-formed members of any kind are ignored");
    }
}
