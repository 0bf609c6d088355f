//! The gate in front of every authenticated endpoint: credentials are checked, then the rate
//! limit is applied per authenticated user, or per client address for requests without valid
//! credentials (so invalid tokens cannot grow the limiter's state). Over the limit:
//! `429 RATE_LIMITED` with `Retry-After`; refused requests take no token.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::{authenticate, User};
use crate::error::ApiError;
use crate::AppState;

/// Most buckets kept; beyond it the idle (full) ones go, then the least recently used.
pub const MAX_BUCKETS: usize = 65_536;

/// Whose allowance a request uses.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// An authenticated user, however the credential was spelt.
    User(String),
    /// A client address, for requests without valid credentials.
    Addr(IpAddr),
}

/// A token bucket per key: `per_sec` sustained, bursts up to `burst`, at most [`MAX_BUCKETS`].
#[derive(Clone)]
pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: Arc<Mutex<HashMap<Key, (f64, Instant)>>>,
}

impl RateLimiter {
    /// A limiter allowing `per_sec` requests a second with bursts of `2 * per_sec`.
    pub fn new(per_sec: u32) -> Self {
        let per_sec = f64::from(per_sec.max(1));
        Self { per_sec, burst: (per_sec * 2.0).max(1.0), buckets: Arc::default() }
    }

    /// Takes one token for `key`; on refusal, the seconds until one is available.
    pub fn take(&self, key: &Key, now: Instant) -> Result<(), u64> {
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_BUCKETS && !map.contains_key(key) {
            self.shrink(&mut map, now);
        }
        let (tokens, at) = map.entry(key.clone()).or_insert((self.burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * self.per_sec).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_sec).ceil().max(1.0) as u64)
        }
    }

    /// Forgets refilled buckets (forgetting a full bucket changes nothing), then, if still
    /// at the cap, the least recently used half.
    fn shrink(&self, map: &mut HashMap<Key, (f64, Instant)>, now: Instant) {
        map.retain(|_, (t, at)| *t + now.saturating_duration_since(*at).as_secs_f64() * self.per_sec < self.burst);
        if map.len() >= MAX_BUCKETS {
            let mut ages: Vec<Instant> = map.values().map(|(_, at)| *at).collect();
            let (_, median, _) = ages.select_nth_unstable(map.len() / 2);
            let cut = *median;
            map.retain(|_, (_, at)| *at > cut);
        }
    }

    /// Buckets currently held.
    pub fn len(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Middleware: authenticates (the user goes into the request's extensions for [`User`]),
/// applies the rate limit, then answers `401` for bad credentials.
pub async fn gate(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let who = authenticate(&s.auth, req.headers());
    if let Some(limiter) = &s.limiter {
        let key = match &who {
            Ok(u) => Key::User(u.0.clone()),
            Err(_) => Key::Addr(
                req.extensions().get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip()),
            ),
        };
        if let Err(secs) = limiter.take(&key, Instant::now()) {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                "too many requests; retry after the number of seconds in Retry-After",
            );
            e.retry_after = Some(secs);
            return refuse(req, e).await;
        }
    }
    match who {
        Ok(user) => {
            req.extensions_mut().insert::<User>(user);
            next.run(req).await
        }
        Err(e) => refuse(req, e).await,
    }
}

/// Answers `e` after draining the request's body (an upload's), so the client can read it.
async fn refuse(req: Request, e: ApiError) -> Response {
    crate::body::drain(req.into_body()).await;
    e.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn user(u: &str) -> Key {
        Key::User(u.into())
    }

    #[test]
    fn bursts_then_refuses_then_refills() {
        let l = RateLimiter::new(2);
        let t = Instant::now();
        for _ in 0..4 {
            assert!(l.take(&user("a"), t).is_ok());
        }
        assert_eq!(l.take(&user("a"), t), Err(1));
        assert!(l.take(&user("b"), t).is_ok(), "other users are not affected");
        assert!(l.take(&user("a"), t + Duration::from_millis(600)).is_ok());
    }

    #[test]
    fn state_stays_bounded_under_many_keys() {
        let l = RateLimiter::new(1);
        let t = Instant::now();
        for i in 0..(3 * MAX_BUCKETS as u32) {
            let _ = l.take(&Key::Addr(IpAddr::from(i.to_be_bytes())), t + Duration::from_micros(u64::from(i)));
        }
        assert!(l.len() <= MAX_BUCKETS, "{} buckets", l.len());
    }
}
