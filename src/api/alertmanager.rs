//! `POST /api/v1/alertmanager`: the Prometheus Alertmanager webhook receiver.
//!
//! Alertmanager posts a version 4 webhook body for an alert group every time the group changes
//! and again every `repeat_interval`; this handler checks the body (unknown fields are ignored,
//! as Alertmanager adds some over time) and hands it to `services::alertmanager`, which opens one
//! incident per group and records the alerts on its timeline. A body it cannot read is a 400,
//! which Alertmanager does not retry.

use std::collections::BTreeMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiError;
use crate::auth::Declare;
use crate::domain::alert::{self, Alert, AlertStatus, Notification, WEBHOOK_VERSION};
use crate::services::alertmanager::receive;
use crate::state::AppState;
use crate::web::session::Access;

/// Firing or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WebhookStatus {
    /// At least one alert fires (for the whole group), or this alert fires.
    Firing,
    /// Every alert is resolved (for the whole group), or this alert is.
    Resolved,
}

impl From<WebhookStatus> for AlertStatus {
    fn from(s: WebhookStatus) -> Self {
        match s {
            WebhookStatus::Firing => AlertStatus::Firing,
            WebhookStatus::Resolved => AlertStatus::Resolved,
        }
    }
}

/// An Alertmanager webhook body (version 4). Fields not listed here are ignored.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertmanagerWebhook {
    /// The body's version; only `"4"` is read.
    #[schema(pattern = "^4$", example = "4")]
    pub version: String,
    /// The group's identity within Alertmanager; one incident per group key.
    #[schema(min_length = 1)]
    pub group_key: String,
    /// The receiver's name in alertmanager.yml.
    pub receiver: String,
    /// Whether any alert of the group fires.
    pub status: WebhookStatus,
    /// The group's alerts.
    #[schema(min_items = 1)]
    pub alerts: Vec<WebhookAlert>,
    /// The labels the group is grouped by.
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    /// Labels every alert shares.
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    /// Annotations every alert shares.
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    /// The sending Alertmanager's address.
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    /// How many alerts were left out of `alerts` (`max_alerts`).
    #[serde(default)]
    #[schema(minimum = 0)]
    pub truncated_alerts: i64,
}

/// One alert of the group.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    /// Whether this alert fires.
    pub status: WebhookStatus,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// When it started (RFC 3339).
    #[schema(format = DateTime, example = "2026-11-21T03:41:48Z")]
    pub starts_at: String,
    /// When it ended (RFC 3339); `0001-01-01T00:00:00Z` while it fires.
    #[serde(default)]
    #[schema(format = DateTime, example = "0001-01-01T00:00:00Z")]
    pub ends_at: Option<String>,
    /// The link to the rule's expression in Prometheus.
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    /// Alertmanager's hash of the labels; with `startsAt`, the alert's identity.
    #[schema(pattern = "^[!-~]{1,128}$", min_length = 1, max_length = 128)]
    pub fingerprint: String,
}

/// What a notification did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertmanagerReceipt {
    /// The group's incident number; null when nothing fires in a group never seen before.
    pub incident: Option<i64>,
    /// Whether this notification opened that incident.
    pub opened: bool,
    /// How many alerts this notification newly recorded (fired or resolved); 0 for a repeat.
    pub recorded: usize,
    /// Whether this notification marked the incident mitigated.
    pub mitigated: bool,
}

/// A strict RFC 3339 shape: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn rfc3339_shape(raw: &str) -> bool {
    let b = raw.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || !matches!(b[10], b'T' | b't')
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => i + 6 == b.len() && digits(i + 1..i + 3) && b[i + 3] == b':' && digits(i + 4..i + 6),
        _ => false,
    }
}

fn time(field: &str, raw: &str) -> Result<Option<chrono::NaiveDateTime>, ApiError> {
    if !rfc3339_shape(raw) {
        return Err(ApiError::bad_request(format!(
            "{field}: \u{201c}{}\u{201d} is not an RFC 3339 time such as 2026-11-21T03:41:48Z.",
            crate::domain::declaration::shorten(raw)
        )));
    }
    alert::parse_time(raw).map_err(|m| ApiError::bad_request(format!("{field}: {m}.")))
}

fn no_nul<'a>(field: &str, values: impl IntoIterator<Item = &'a String>) -> Result<(), ApiError> {
    if values.into_iter().any(|v| v.contains('\0')) {
        return Err(ApiError::bad_request(format!(
            "{field} contains a NUL character, which no alert has; nothing was stored."
        )));
    }
    Ok(())
}

fn map_no_nul(field: &str, m: &BTreeMap<String, String>) -> Result<(), ApiError> {
    no_nul(field, m.keys().chain(m.values()))
}

impl AlertmanagerWebhook {
    /// Checks what serde could not: the version, the times, the fingerprints, no NUL anywhere.
    pub fn check(self) -> Result<Notification, ApiError> {
        if self.version != WEBHOOK_VERSION {
            return Err(ApiError::bad_request(format!(
                "version: this receiver reads Alertmanager webhook bodies of version \u{201c}4\u{201d}, not \u{201c}{}\u{201d}.",
                crate::domain::declaration::shorten(&self.version)
            )));
        }
        if self.group_key.trim().is_empty() {
            return Err(ApiError::bad_request("groupKey: must not be empty."));
        }
        if self.truncated_alerts < 0 {
            return Err(ApiError::bad_request("truncatedAlerts: must not be negative."));
        }
        if self.alerts.is_empty() {
            return Err(ApiError::bad_request("alerts: must hold at least one alert."));
        }
        no_nul("The body", [&self.group_key, &self.receiver, &self.external_url])?;
        map_no_nul("groupLabels", &self.group_labels)?;
        map_no_nul("commonLabels", &self.common_labels)?;
        map_no_nul("commonAnnotations", &self.common_annotations)?;
        let mut alerts = Vec::with_capacity(self.alerts.len());
        for (i, a) in self.alerts.into_iter().enumerate() {
            let field = |f: &str| format!("alerts[{i}].{f}");
            alert::check_fingerprint(&a.fingerprint)
                .map_err(|m| ApiError::bad_request(format!("{}: {m}.", field("fingerprint"))))?;
            map_no_nul(&field("labels"), &a.labels)?;
            map_no_nul(&field("annotations"), &a.annotations)?;
            no_nul(&field("generatorURL"), [&a.generator_url])?;
            let starts_at = time(&field("startsAt"), &a.starts_at)?.ok_or_else(|| {
                ApiError::bad_request(format!("{}: an alert must have a start time.", field("startsAt")))
            })?;
            let ends_at = match &a.ends_at {
                Some(raw) => time(&field("endsAt"), raw)?,
                None => None,
            };
            alerts.push(Alert {
                status: a.status.into(),
                labels: a.labels,
                annotations: a.annotations,
                starts_at,
                ends_at,
                generator_url: a.generator_url,
                fingerprint: a.fingerprint,
            });
        }
        Ok(Notification {
            receiver: self.receiver,
            status: self.status.into(),
            alerts,
            group_labels: self.group_labels,
            common_labels: self.common_labels,
            common_annotations: self.common_annotations,
            external_url: self.external_url,
            group_key: self.group_key,
            truncated_alerts: self.truncated_alerts.unsigned_abs(),
        })
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/alertmanager",
    operation_id = "receiveAlertmanager",
    tag = "alertmanager",
    summary = "Receive a Prometheus Alertmanager notification",
    description = "Point an Alertmanager webhook receiver here with a token that has the `incidents:declare` \
                   scope (`http_config.authorization`). A firing group opens one incident (status investigating); \
                   later notifications of the same `groupKey` add their new alerts (by `fingerprint` and \
                   `startsAt`) and resolutions to its timeline, and repeats add nothing. With \
                   `mitigate_on_resolved`, the incident becomes mitigated once every alert of the group is \
                   resolved. A group that fires again after its incident was closed opens a new incident that \
                   names the old one. Off (404) unless the server has an `[alertmanager]` section. Unknown \
                   fields are ignored.",
    request_body(content = AlertmanagerWebhook, content_type = "application/json"),
    responses((status = 200, description = "Recorded (or a repeat that changed nothing).", body = AlertmanagerReceipt)),
)]
/// `POST /api/v1/alertmanager`
pub async fn receive_webhook(
    who: Access<Declare>,
    state: web::Data<AppState>,
    body: web::Json<AlertmanagerWebhook>,
) -> Result<HttpResponse, ApiError> {
    let Some(cfg) = state.settings.alertmanager.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "The Alertmanager receiver is off on this server: add an [alertmanager] section to its configuration.",
        ));
    };
    let notification = body.into_inner().check()?;
    let received = receive(&state, &cfg, who.actor.clone(), notification)
        .await
        .map_err(|e| ApiError::from_service(e, None))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(AlertmanagerReceipt {
            incident: received.incident,
            opened: received.opened,
            recorded: received.recorded,
            mitigated: received.mitigated,
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_shapes() {
        for ok in [
            "2026-11-21T03:41:48Z",
            "2026-11-21T03:41:48.123456789Z",
            "0001-01-01T00:00:00Z",
            "2026-11-21t03:41:48+01:00",
        ] {
            assert!(rfc3339_shape(ok), "{ok}");
        }
        for bad in [
            "2026-11-21 03:41:48Z",
            "2026-11-21T03:41:48",
            "2026-11-21T03:41:48.Z",
            "2026-11-21T03:41:48+0100",
            "yesterday",
            "",
        ] {
            assert!(!rfc3339_shape(bad), "{bad}");
        }
    }
}
