//! Paging cursors: opaque, signed, and bound to the user and the endpoint that issued them,
//! so a forged, foreign or cross-endpoint cursor is `400 INVALID_CURSOR`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::ApiError;

/// Which endpoint a cursor belongs to.
#[derive(Clone, Copy)]
pub enum Kind {
    /// `GET …/media/assets`: a position in id order.
    List,
    /// `GET …/media/changes`: a change sequence number.
    Changes,
}

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Kind::List => "l",
            Kind::Changes => "c",
        }
    }
}

/// Signs and checks cursors. Every instance behind one load balancer needs the same key.
#[derive(Clone)]
pub struct Cursors {
    key: Vec<u8>,
}

impl Cursors {
    /// Cursors signed with a key derived from `secret`.
    pub fn new(secret: &[u8]) -> Self {
        let mut mac = mac(secret);
        mac.update(b"opfs-media cursor key v1");
        Self { key: mac.finalize().into_bytes().to_vec() }
    }

    fn sig(&self, user: &str, kind: Kind, pos: &str) -> Vec<u8> {
        let mut m = mac(&self.key);
        m.update(format!("{user}\n{}:{pos}", kind.tag()).as_bytes());
        m.finalize().into_bytes()[..16].to_vec()
    }

    /// `<base64url(kind:pos)>.<base64url(mac)>`: at most 256 characters of `A-Z a-z 0-9 - _ .`.
    pub fn encode(&self, user: &str, kind: Kind, pos: &str) -> String {
        let payload = format!("{}:{pos}", kind.tag());
        format!("{}.{}", B64.encode(payload), B64.encode(self.sig(user, kind, pos)))
    }

    /// The position inside a cursor this server issued to `user` for `kind`.
    pub fn decode(&self, user: &str, kind: Kind, cursor: &str) -> Result<String, ApiError> {
        let bad = || {
            ApiError::bad_request(
                "INVALID_CURSOR",
                "the cursor is not one this server issued here; start again without it",
            )
        };
        let (payload, sig) = cursor.split_once('.').ok_or_else(bad)?;
        let payload = String::from_utf8(B64.decode(payload).map_err(|_| bad())?).map_err(|_| bad())?;
        let pos = payload.strip_prefix(kind.tag()).and_then(|p| p.strip_prefix(':')).ok_or_else(bad)?;
        let mut m = mac(&self.key);
        m.update(format!("{user}\n{}:{pos}", kind.tag()).as_bytes());
        let sig = B64.decode(sig).ok().filter(|s| s.len() == 16).ok_or_else(bad)?;
        m.verify_truncated_left(&sig).map_err(|_| bad())?;
        Ok(pos.to_owned())
    }
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_bound_to_user_and_endpoint() {
        let c = Cursors::new(b"k");
        let t = c.encode("alice", Kind::Changes, "42");
        assert!(t.len() <= 256 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
        assert_eq!(c.decode("alice", Kind::Changes, &t).unwrap(), "42");
        assert!(c.decode("bob", Kind::Changes, &t).is_err(), "another user's cursor");
        assert!(c.decode("alice", Kind::List, &t).is_err(), "a changes cursor on list");
        assert!(Cursors::new(b"other").decode("alice", Kind::Changes, &t).is_err(), "another key");
        let forged = format!("{}.{}", B64.encode("c:1"), t.split_once('.').unwrap().1);
        assert!(c.decode("alice", Kind::Changes, &forged).is_err(), "moved position");
        for bad in ["", "v1:zzzz", "djE6NDc", "x.y", "."] {
            assert!(c.decode("alice", Kind::Changes, bad).is_err(), "{bad}");
        }
    }
}
