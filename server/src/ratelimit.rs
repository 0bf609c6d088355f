//! Per-credential request rate limit (token bucket): over the limit, `429 RATE_LIMITED` with
//! `Retry-After`. Keyed by the credential string, so it applies before any database work.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// A token bucket per credential: `per_sec` sustained, bursts up to `burst`.
#[derive(Clone)]
pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: Arc<Mutex<HashMap<String, (f64, Instant)>>>,
}

impl RateLimiter {
    /// A limiter allowing `per_sec` requests a second with bursts of `2 * per_sec`.
    pub fn new(per_sec: u32) -> Self {
        let per_sec = f64::from(per_sec.max(1));
        Self { per_sec, burst: (per_sec * 2.0).max(1.0), buckets: Arc::default() }
    }

    /// Takes one token for `key`; on refusal, the seconds until one is available.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), u64> {
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            // Bound memory: idle buckets are full anyway, so forgetting them changes nothing.
            map.retain(|_, (_, at)| now.duration_since(*at).as_secs_f64() * self.per_sec < self.burst);
        }
        let (tokens, at) = map.entry(key.to_owned()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_sec).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_sec).ceil().max(1.0) as u64)
        }
    }
}

/// Middleware: limits requests that carry credentials (anonymous ones are rejected later anyway).
pub async fn limit(State(limiter): State<RateLimiter>, req: Request, next: Next) -> Response {
    let key = req
        .headers()
        .get(header::AUTHORIZATION)
        .or_else(|| req.headers().get(header::COOKIE))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(key) = key {
        if let Err(secs) = limiter.take(&key, Instant::now()) {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                "too many requests; retry after the number of seconds in Retry-After",
            );
            e.retry_after = Some(secs);
            return e.into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_refuses_then_refills() {
        let l = RateLimiter::new(2);
        let t = Instant::now();
        for _ in 0..4 {
            assert!(l.take("a", t).is_ok());
        }
        assert_eq!(l.take("a", t), Err(1));
        assert!(l.take("b", t).is_ok(), "other users are not affected");
        assert!(l.take("a", t + Duration::from_millis(600)).is_ok());
    }
}
