//! Structured logs with tracing: human-readable by default, JSON with `REDBUTTON_LOG_FORMAT=json`,
//! filtered by `RUST_LOG` (default `info`). Secrets are never logged: configuration values that
//! hold them are never formatted, and database URLs are redacted before they reach a log line.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (once; later calls are ignored, which suits tests).
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn"));
    let json = std::env::var("REDBUTTON_LOG_FORMAT")
        .map(|v| v == "json")
        .unwrap_or(false);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
