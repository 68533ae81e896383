//! Request rate limits on sign-in and the API, per client address or per API token, with the
//! `governor` crate's keyed GCRA limiter (MIT; the actix wrapper crate for it is GPL, so this small
//! middleware is our own). Over the limit: 429 with `Retry-After`, as a page or a problem
//! document.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::HttpResponse;
use actix_web::http::{Method, StatusCode, header};
use actix_web::web;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::state::AppState;

/// Keys kept before forgotten ones are swept.
const SWEEP_ABOVE: usize = 50_000;

/// The limiters.
pub struct RateLimits {
    sign_in: DefaultKeyedRateLimiter<String>,
    api: DefaultKeyedRateLimiter<String>,
    checks: AtomicU64,
}

impl RateLimits {
    /// Limits of `sign_in` attempts per address and `api` requests per token per minute.
    pub fn new(sign_in_per_minute: u32, api_per_minute: u32) -> Self {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Self {
            sign_in: RateLimiter::keyed(quota(sign_in_per_minute)),
            api: RateLimiter::keyed(quota(api_per_minute)),
            checks: AtomicU64::new(0),
        }
    }

    /// `Ok` to go on, or how many seconds to wait.
    fn check(&self, limiter: &DefaultKeyedRateLimiter<String>, key: String) -> Result<(), u64> {
        // Now and then, forget keys whose allowance has fully come back, so memory stays bounded
        // however many addresses call.
        if self.checks.fetch_add(1, Ordering::Relaxed).is_multiple_of(1024) && limiter.len() > SWEEP_ABOVE {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()).as_secs().max(1))
    }
}

/// Which limiter a request counts against, and its key.
enum Bucket {
    SignIn(String),
    Api(String),
}

fn bucket(req: &actix_web::dev::ServiceRequest) -> Option<Bucket> {
    let path = req.path();
    let addr = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    if crate::web::session::is_api(path) {
        // Per token when the request carries one that looks right, else per address.
        let token_id = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|t| crate::auth::tokens::split(t.trim()))
            .map(|(id, _)| id.to_string());
        return Some(Bucket::Api(match token_id {
            Some(id) => format!("token:{id}"),
            None => format!("addr:{addr}"),
        }));
    }
    let signing_in =
        matches!(path, "/auth/login" | "/auth/callback") || (path == "/identify" && req.method() == Method::POST);
    signing_in.then_some(Bucket::SignIn(addr))
}

/// Middleware: counts sign-in and API requests and answers 429 past the limit.
pub async fn limit(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<actix_web::body::BoxBody>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let (Some(state), Some(bucket)) = (req.app_data::<web::Data<AppState>>().cloned(), bucket(&req)) else {
        return next.call(req).await;
    };
    let limits = &state.limits;
    let (outcome, api) = match bucket {
        Bucket::SignIn(key) => (limits.check(&limits.sign_in, key), false),
        Bucket::Api(key) => (limits.check(&limits.api, key), true),
    };
    match outcome {
        Ok(()) => next.call(req).await,
        Err(wait) => {
            tracing::warn!(path = req.path(), retry_after_s = wait, "rate limit reached");
            let mut response: HttpResponse = if api {
                crate::web::problem::problem(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("Too many API requests with this token; wait {wait} s and try again."),
                )
            } else {
                crate::web::error_page(
                    StatusCode::TOO_MANY_REQUESTS,
                    &format!("Too many sign-in attempts from your address; wait {wait} s and try again."),
                )
            };
            if let Ok(v) = header::HeaderValue::from_str(&wait.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Ok(req.into_response(response))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_runs_out_and_others_do_not() {
        let limits = RateLimits::new(3, 3);
        for _ in 0..3 {
            assert!(limits.check(&limits.sign_in, "a".into()).is_ok());
        }
        let wait = limits.check(&limits.sign_in, "a".into()).unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(limits.check(&limits.sign_in, "b".into()).is_ok());
        assert!(limits.check(&limits.api, "a".into()).is_ok(), "separate limiters");
    }
}
