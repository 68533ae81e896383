//! Small pieces several integrations share: reading secrets, mapping severities, checking
//! config values.

use crate::config::{ConfigError, Settings, bad};
use crate::notifiers::NotifyError;

/// Reads a secret at start. `check_secrets` has already proved it is set; this is the one place
/// integrations read the value.
pub fn secret(settings: &Settings, var: &str) -> anyhow::Result<String> {
    settings
        .secret(var)
        .ok_or_else(|| anyhow::anyhow!("environment variable {var} is not set"))
}

/// Trims a configured base URL and refuses anything but http(s).
pub fn base_url(key: &str, raw: &str) -> Result<String, ConfigError> {
    crate::config::check_http_url(key, raw)?;
    Ok(raw.trim_end_matches('/').to_string())
}

/// Checks that `id` names a configured severity (or `unknown`).
pub fn check_severity(key: &str, id: &str, settings: &Settings) -> Result<(), ConfigError> {
    if id == crate::domain::UNKNOWN_SEVERITY || settings.severities.iter().any(|s| s.id == id) {
        Ok(())
    } else {
        let ids: Vec<&str> = settings.severities.iter().map(|s| s.id.as_str()).collect();
        Err(bad(
            key,
            format!("unknown severity \u{201c}{id}\u{201d}; known: {}", ids.join(", ")),
        ))
    }
}

/// Checks that `id` names a configured service.
pub fn check_service(key: &str, id: &str, settings: &Settings) -> Result<(), ConfigError> {
    if settings.services.iter().any(|s| s.id == id) {
        Ok(())
    } else {
        Err(bad(key, format!("unknown service \u{201c}{id}\u{201d}")))
    }
}

/// Whether `severity` is at or above `threshold` (more or equally severe). `unknown` counts as
/// just below the most severe level: an unassessed incident may be a big one.
pub fn at_or_above(settings: &Settings, severity: &str, threshold: &str) -> bool {
    settings.severity_rank(severity) <= settings.severity_rank(threshold)
}

/// The position of a severity among the configured levels, `unknown` counting as the first.
pub fn level_index(settings: &Settings, severity: &str) -> usize {
    settings.severities.iter().position(|s| s.id == severity).unwrap_or(0)
}

/// A config-time failure turned into a delivery error (should not happen after validation).
pub fn config_error(e: impl std::fmt::Display) -> NotifyError {
    NotifyError::Permanent(format!("configuration: {e}"))
}
