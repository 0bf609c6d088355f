//! A SHA-256 whose state can be saved between chunks and restored elsewhere: in a later
//! session of the browser (the upload outbox keeps it) or on another server instance (the
//! upload session's row keeps it). Plain Rust, shared by the library and the reference server.
//!
//! A checkpoint is taken only on a 64-byte block boundary, where SHA-256's state is just its
//! eight working words and the byte count (no buffered partial block). That is why every
//! chunk of a resumable upload but the last is a multiple of 64 bytes (docs/protocol.md).
//! The text form is `<64 hex digits of the words, big-endian>:<bytes hashed>`.

use sha2::digest::generic_array::GenericArray;

const INITIAL: [u32; 8] =
    [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/// An incremental SHA-256 that can be checkpointed at block boundaries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sha256State {
    words: [u32; 8],
    /// Bytes compressed into `words` (a multiple of 64).
    done: u64,
    /// A partial block not yet compressed (< 64 bytes).
    tail: Vec<u8>,
}

impl Default for Sha256State {
    fn default() -> Self {
        Self { words: INITIAL, done: 0, tail: Vec::new() }
    }
}

impl Sha256State {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.done + self.tail.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn update(&mut self, mut data: &[u8]) {
        if !self.tail.is_empty() {
            let take = (64 - self.tail.len()).min(data.len());
            self.tail.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.tail.len() < 64 {
                return;
            }
            let block = std::mem::take(&mut self.tail);
            self.compress(&block);
        }
        let whole = data.len() / 64 * 64;
        self.compress(&data[..whole]);
        self.tail.extend_from_slice(&data[whole..]);
    }

    fn compress(&mut self, blocks: &[u8]) {
        if blocks.is_empty() {
            return;
        }
        for block in blocks.chunks_exact(64) {
            sha2::compress256(&mut self.words, std::slice::from_ref(GenericArray::from_slice(block)));
        }
        self.done += blocks.len() as u64;
    }

    /// The saved form, or `None` off a block boundary (a partial block is buffered).
    pub fn checkpoint(&self) -> Option<String> {
        if !self.tail.is_empty() {
            return None;
        }
        let mut s = String::with_capacity(80);
        for w in self.words {
            s.push_str(&format!("{w:08x}"));
        }
        s.push(':');
        s.push_str(&self.done.to_string());
        Some(s)
    }

    /// Restores a [`checkpoint`](Self::checkpoint); `None` if `s` is not one.
    pub fn restore(s: &str) -> Option<Self> {
        let (hexs, n) = s.split_once(':')?;
        let done: u64 = n.parse::<u64>().ok().filter(|d| d % 64 == 0 && n == d.to_string())?;
        if hexs.len() != 64 || !hexs.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return None;
        }
        let mut words = [0u32; 8];
        for (i, w) in words.iter_mut().enumerate() {
            *w = u32::from_str_radix(&hexs[i * 8..i * 8 + 8], 16).ok()?;
        }
        Some(Self { words, done, tail: Vec::new() })
    }

    /// The digest, as lowercase hex.
    pub fn finish_hex(self) -> String {
        self.finish().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The digest (FIPS 180-4 padding: 0x80, zeros, the bit length big-endian).
    pub fn finish(mut self) -> [u8; 32] {
        let bits = self.len().wrapping_mul(8);
        let mut pad = std::mem::take(&mut self.tail);
        pad.push(0x80);
        while pad.len() % 64 != 56 {
            pad.push(0);
        }
        pad.extend_from_slice(&bits.to_be_bytes());
        self.compress(&pad);
        let mut out = [0u8; 32];
        for (i, w) in self.words.iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn reference(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    #[test]
    fn matches_sha2_across_lengths_and_splits() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 251) as u8).collect();
        for len in [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 500, 1000] {
            let d = &data[..len];
            for split in [0, 1, 63, 64, len / 2, len] {
                let split = split.min(len);
                let mut s = Sha256State::new();
                s.update(&d[..split]);
                s.update(&d[split..]);
                assert_eq!(s.finish(), reference(d), "len {len} split {split}");
            }
        }
    }

    #[test]
    fn checkpoint_round_trips_only_on_block_boundaries() {
        let data: Vec<u8> = (0..=255u8).cycle().take(64 * 5 + 7).collect();
        let mut s = Sha256State::new();
        s.update(&data[..64 * 3]);
        let cp = s.checkpoint().expect("on a boundary");
        assert!(cp.ends_with(":192"), "{cp}");
        let mut r = Sha256State::restore(&cp).unwrap();
        assert_eq!(r, s);
        r.update(&data[64 * 3..]);
        assert_eq!(r.finish(), reference(&data));
        s.update(&data[..7]);
        assert_eq!(s.checkpoint(), None);
        assert_eq!(Sha256State::restore(&Sha256State::new().checkpoint().unwrap()), Some(Sha256State::new()));
    }

    #[test]
    fn restore_refuses_what_is_not_a_checkpoint() {
        let good = Sha256State::new().checkpoint().unwrap();
        let hexs = good.split(':').next().unwrap();
        for bad in [
            String::new(),
            "x".into(),
            hexs.to_string(),
            format!("{hexs}:1"),
            format!("{hexs}:064"),
            format!("{hexs}:-64"),
            format!("{}:0", &hexs[1..]),
            format!("{}:0", hexs.to_uppercase()),
            format!("g{}:0", &hexs[1..]),
        ] {
            assert_eq!(Sha256State::restore(&bad), None, "{bad}");
        }
    }
}
