//! `/metrics`: Prometheus text exposition for the operators of Big Red Button (see
//! [`crate::prometheus`]). A scraper proves itself with an API token holding the `metrics:read`
//! scope (`authorization: {credentials: rbt_…}` in Prometheus), or connects from a network listed
//! in `[metrics] allow_from`.

use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};

use crate::auth::{Principal, Scope, Via};
use crate::db::models::{incident, outbox};
use crate::domain::declaration::now_utc;
use crate::prometheus::{Gauges, render};
use crate::state::AppState;
use crate::web::problem::problem;

/// The route's path, which the sign-in middleware treats like the API (tokens, not cookies).
pub const PATH: &str = "/metrics";

/// The exposition, or a refusal saying how to get in.
pub async fn show(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let principal = req.extensions().get::<Principal>().cloned();
    let from_allowed_network = req
        .peer_addr()
        .is_some_and(|peer| state.settings.metrics.networks().iter().any(|n| n.contains(peer.ip())));
    match principal.as_ref().map(|p| &p.via) {
        Some(Via::Token { scopes, .. }) if scopes.contains(&Scope::MetricsRead) => {}
        Some(_) if !from_allowed_network => {
            return problem(
                StatusCode::FORBIDDEN,
                "This API token lacks the metrics:read scope. Make one with that scope on /admin/tokens.",
            );
        }
        None if !from_allowed_network => {
            let mut refusal = problem(
                StatusCode::UNAUTHORIZED,
                "Metrics need an API token with the metrics:read scope (\u{201c}Authorization: Bearer rbt_\u{2026}\u{201d}), \
                 or a scraper on a network listed in [metrics] allow_from.",
            );
            refusal.headers_mut().insert(
                actix_web::http::header::WWW_AUTHENTICATE,
                actix_web::http::header::HeaderValue::from_static("Bearer"),
            );
            return refusal;
        }
        _ => {}
    }
    let read = state
        .db
        .run(|conn| {
            let deliveries = outbox::count_by_notifier_and_state(conn)?;
            let oldest = outbox::oldest_unfinished(conn)?;
            let incidents = incident::count_by_status(conn)?;
            Ok(Gauges {
                deliveries,
                oldest_pending_seconds: oldest
                    .map(|at| ((now_utc() - at).num_milliseconds() as f64 / 1000.0).max(0.0))
                    .unwrap_or(0.0),
                incidents,
            })
        })
        .await;
    match read {
        Ok(gauges) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .insert_header(("cache-control", "no-store"))
            .body(render(
                &state.metrics,
                &gauges,
                env!("CARGO_PKG_VERSION"),
                state.started_unix,
            )),
        Err(e) => {
            tracing::warn!(error.message = %e, "reading the metrics failed");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database did not answer; try again.",
            )
        }
    }
}
