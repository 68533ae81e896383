//! Structured logs with tracing: human-readable by default, JSON with `REDBUTTON_LOG_FORMAT=json`,
//! filtered by `RUST_LOG` (default `info`). Secrets are never logged: configuration values that
//! hold them are never formatted, and database URLs are redacted before they reach a log line.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (once; later calls are ignored, which suits tests).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn"));
    let json = std::env::var("REDBUTTON_LOG_FORMAT")
        .map(|v| v == "json")
        .unwrap_or(false);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// One span per request, as tracing-actix-web makes it, except that answers which are the
/// client's business (a redirect to `/identify`, a refused form) are not logged as errors: only
/// server errors are.
pub struct RequestSpan;

impl tracing_actix_web::RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        // The same fields tracing-actix-web's root span has, but the address's query values that
        // are secrets (the sign-in code and state on /auth/callback, any token) are redacted.
        let empty = tracing::field::Empty;
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %request.match_pattern().unwrap_or_default(),
            http.target = %redacted_target(request.uri()),
            http.client_ip = %request.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default(),
            http.user_agent = %request
                .headers()
                .get(actix_web::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
            http.status_code = empty,
            otel.kind = "server",
            otel.status_code = empty,
            request_id = %uuid::Uuid::new_v4(),
            exception.message = empty,
            exception.details = empty,
        )
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        match outcome {
            Ok(response) if !response.status().is_server_error() => {
                span.record("http.status_code", response.status().as_u16());
                span.record("otel.status_code", "OK");
            }
            _ => tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome),
        }
    }
}

/// Query parameters whose values never reach a log line.
const SECRET_PARAMS: [&str; 7] = ["code", "state", "nonce", "token", "access_token", "id_token", "secret"];

/// The request target with the values of secret query parameters replaced.
pub fn redacted_target(uri: &actix_web::http::Uri) -> String {
    let path = uri.path();
    let Some(query) = uri.query() else {
        return path.to_string();
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if SECRET_PARAMS.iter().any(|s| k.eq_ignore_ascii_case(s)) => format!("{k}=[redacted]"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}?{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_codes_and_states_are_redacted() {
        let uri: actix_web::http::Uri = "/auth/callback?code=abc123&state=xyz&iss=http%3A%2F%2Fidp"
            .parse()
            .unwrap();
        let t = redacted_target(&uri);
        assert_eq!(
            t,
            "/auth/callback?code=[redacted]&state=[redacted]&iss=http%3A%2F%2Fidp"
        );
        let plain: actix_web::http::Uri = "/?status=live&page=2".parse().unwrap();
        assert_eq!(redacted_target(&plain), "/?status=live&page=2");
        let no_query: actix_web::http::Uri = "/incidents/4".parse().unwrap();
        assert_eq!(redacted_target(&no_query), "/incidents/4");
    }
}
