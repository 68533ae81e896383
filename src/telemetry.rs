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
        tracing_actix_web::root_span!(request)
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
