//! Who is asking: the user comes only from the request's credentials (bearer token or the
//! session cookie), never from an id the client sends. Two modes: verified HMAC tokens, and
//! an insecure dev mode for the demo.

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts, HeaderMap};
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
                // One spelling per token: 64 lowercase hex digits, a canonical expiry.
                if sig.len() != 64 || !sig.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                    return Err(bad());
                }
                let sig = hex::decode(sig).map_err(|_| bad())?;
                let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| bad())?;
                mac.update(signed.as_bytes());
                mac.verify_slice(&sig).map_err(|_| bad())?;
                let canonical =
                    !expires.is_empty() && !expires.starts_with('0') && expires.bytes().all(|b| b.is_ascii_digit());
                let expires: u64 = expires.parse().ok().filter(|_| canonical).ok_or_else(bad)?;
                // Valid up to, not including, the expiry second.
                if expires <= now || !valid_user(user) {
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

/// The credential of a request. A present `Authorization` header alone decides, readable or
/// not (an unreadable or non-Bearer one is `None`, hence 401, never the cookie's turn).
fn token_from(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned());
    }
    let cookies = headers.get_all(header::COOKIE);
    cookies.iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == COOKIE).then(|| v.to_owned())
    })
}

/// The user of a request with these headers, or `401 UNAUTHENTICATED`.
pub fn authenticate(mode: &AuthMode, headers: &HeaderMap) -> Result<User, ApiError> {
    let missing = || match headers.contains_key(header::AUTHORIZATION) {
        true => ApiError::unauthenticated("Authorization must be `Bearer <token>` in ASCII"),
        false => {
            ApiError::unauthenticated("missing credentials: send `Authorization: Bearer <token>` or the session cookie")
        }
    };
    let token = token_from(headers).ok_or_else(missing)?;
    mode.verify(&token, now())
}

impl FromRequestParts<AppState> for User {
    type Rejection = ApiError;

    /// The user the gate ([`crate::ratelimit::gate`]) authenticated, else checked here.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<User>() {
            Some(u) => Ok(u.clone()),
            None => authenticate(&state.auth, &parts.headers),
        }
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
        assert!(m.verify(&t, 2000).is_err(), "expires at the stated second");
        assert!(m.verify(&t, 1999).is_ok());
        assert!(m.verify(&t.to_uppercase().replace("ALICE", "alice"), 1000).is_err(), "uppercase hex");
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
