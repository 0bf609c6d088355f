//! Who is asking: the user comes only from the request's credentials (bearer token or the
//! session cookie), never from an id the client sends. Two modes: verified HMAC tokens, and
//! an insecure dev mode for the demo.

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::ApiError;
use crate::AppState;

/// Name of the session cookie that may carry the same token as the bearer header.
pub const COOKIE: &str = "opfs_media_session";

/// How tokens are checked.
#[derive(Clone)]
pub enum AuthMode {
    /// `Bearer dev:<user>` is trusted as is. INSECURE: anyone can claim any user. Demo only.
    DevInsecure,
    /// `<user>.<expires-unix-secs>.<hex HMAC-SHA256(secret, "<user>.<expires>")>`.
    Hmac(Vec<u8>),
}

/// The authenticated user of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User(pub String);

/// A user id: 1-64 of `A-Z a-z 0-9 _ -` (it becomes a path segment).
pub fn valid_user(u: &str) -> bool {
    !u.is_empty() && u.len() <= 64 && u.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl AuthMode {
    /// Checks a token; `now` is Unix seconds.
    pub fn verify(&self, token: &str, now: u64) -> Result<User, ApiError> {
        let bad = || ApiError::unauthenticated("invalid or expired token; sign in again");
        match self {
            AuthMode::DevInsecure => {
                let user = token.strip_prefix("dev:").ok_or_else(bad)?;
                valid_user(user).then(|| User(user.to_owned())).ok_or_else(bad)
            }
            AuthMode::Hmac(secret) => {
                let mut parts = token.rsplitn(2, '.');
                let (sig, signed) = (parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?);
                let (user, expires) = signed.split_once('.').ok_or_else(bad)?;
                let sig = hex::decode(sig).map_err(|_| bad())?;
                let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| bad())?;
                mac.update(signed.as_bytes());
                mac.verify_slice(&sig).map_err(|_| bad())?;
                let expires: u64 = expires.parse().map_err(|_| bad())?;
                if expires < now || !valid_user(user) {
                    return Err(bad());
                }
                Ok(User(user.to_owned()))
            }
        }
    }

    /// Mints a token for `user` valid until `expires` (HMAC mode; dev mode ignores expiry).
    pub fn mint(&self, user: &str, expires: u64) -> String {
        match self {
            AuthMode::DevInsecure => format!("dev:{user}"),
            AuthMode::Hmac(secret) => {
                let signed = format!("{user}.{expires}");
                let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
                mac.update(signed.as_bytes());
                format!("{signed}.{}", hex::encode(mac.finalize().into_bytes()))
            }
        }
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn token_from(parts: &Parts) -> Option<String> {
    if let Some(v) = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return v.strip_prefix("Bearer ").map(|t| t.trim().to_owned());
    }
    let cookies = parts.headers.get_all(header::COOKIE);
    cookies.iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == COOKIE).then(|| v.to_owned())
    })
}

impl FromRequestParts<AppState> for User {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = token_from(parts).ok_or_else(|| {
            ApiError::unauthenticated("missing credentials: send `Authorization: Bearer <token>` or the session cookie")
        })?;
        state.auth.verify(&token, now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_tokens_verify_and_reject_tampering() {
        let m = AuthMode::Hmac(b"secret".to_vec());
        let t = m.mint("alice", 2000);
        assert_eq!(m.verify(&t, 1000).unwrap(), User("alice".into()));
        assert!(m.verify(&t, 2001).is_err(), "expired");
        assert!(m.verify(&t.replace("alice", "bob"), 1000).is_err(), "user swapped");
        assert!(AuthMode::Hmac(b"other".to_vec()).verify(&t, 1000).is_err(), "other secret");
        assert!(m.verify("dev:alice", 1000).is_err());
        assert!(m.verify("", 1000).is_err());
    }

    #[test]
    fn dev_tokens_need_a_valid_user() {
        let m = AuthMode::DevInsecure;
        assert_eq!(m.verify("dev:bob", 0).unwrap(), User("bob".into()));
        for bad in ["bob", "dev:", "dev:../x", "dev:a b"] {
            assert!(m.verify(bad, 0).is_err(), "{bad}");
        }
    }
}
