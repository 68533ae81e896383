//! PagerDuty Events API v2: one alert per incident that should page, triggered when it starts
//! paging (declared at or above the threshold, raised to it, reopened) and resolved when it stops
//! (resolved, lowered below the threshold). The dedup key is derived from the incident number, so
//! a repeated trigger or resolve is harmless and retries need no bookkeeping.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{SecondsFormat, TimeZone, Utc};
use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::http::{self, Answer};
use super::{Delivered, Delivery, EventPayload, Notifier, NotifyError};
use crate::config::{ConfigError, Settings, bad, check_env_name};
use crate::domain::EventKind;

/// `[integrations.pagerduty]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutySettings {
    /// Events API base, without `/v2/enqueue`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Environment variable with the default integration (routing) key.
    #[serde(default)]
    pub routing_key_env: Option<String>,
    /// Page for incidents at or above this severity.
    #[serde(default = "default_threshold")]
    pub page_at_or_above: String,
    /// Severity id → PagerDuty severity (`critical|error|warning|info`); unlisted levels map by
    /// position (first critical, second error, third warning, the rest info).
    #[serde(default)]
    pub severity_map: BTreeMap<String, String>,
    /// Per service: its own routing key.
    #[serde(default)]
    pub services: BTreeMap<String, PagerDutyService>,
}

/// `[integrations.pagerduty.services.<id>]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyService {
    /// Environment variable with this service's routing key.
    pub routing_key_env: String,
}

fn default_base_url() -> String {
    "https://events.pagerduty.com".into()
}

fn default_threshold() -> String {
    "SEV1".into()
}

impl PagerDutySettings {
    /// Checks the section.
    pub fn validate(&self, key: &str, settings: &Settings) -> Result<(), ConfigError> {
        super::common::base_url(&format!("{key}.base_url"), &self.base_url)?;
        super::common::check_severity(&format!("{key}.page_at_or_above"), &self.page_at_or_above, settings)?;
        if let Some(var) = &self.routing_key_env {
            check_env_name(&format!("{key}.routing_key_env"), var)?;
        } else if self.services.is_empty() {
            return Err(bad(
                format!("{key}.routing_key_env"),
                "set a default routing key, or one per service under [integrations.pagerduty.services.<id>]",
            ));
        }
        for (sev, to) in &self.severity_map {
            super::common::check_severity(&format!("{key}.severity_map"), sev, settings)?;
            if !["critical", "error", "warning", "info"].contains(&to.as_str()) {
                return Err(bad(
                    format!("{key}.severity_map.{sev}"),
                    "must be one of critical, error, warning, info",
                ));
            }
        }
        for (id, s) in &self.services {
            super::common::check_service(&format!("{key}.services.{id}"), id, settings)?;
            check_env_name(&format!("{key}.services.{id}.routing_key_env"), &s.routing_key_env)?;
        }
        Ok(())
    }

    /// The secrets it names.
    pub fn secret_envs(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .routing_key_env
            .iter()
            .map(|e| ("integrations.pagerduty.routing_key_env".to_string(), e.clone()))
            .collect();
        for (id, s) in &self.services {
            v.push((
                format!("integrations.pagerduty.services.{id}.routing_key_env"),
                s.routing_key_env.clone(),
            ));
        }
        v
    }
}

// ---------------------------------------------------------------------------------------------
// Whether an incident pages. Opsgenie shares this reading.

/// What a pager should do for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageAction {
    /// The incident starts paging: trigger (PagerDuty) or create (Opsgenie).
    Open,
    /// It stops paging: resolve or close.
    Close,
}

/// Whether an incident in this state pages: a real (not drill), open (not resolved, declined or
/// merged) incident at or above the threshold.
pub(crate) fn pages(settings: &Settings, threshold: &str, severity: &str, status: &str, drill: bool) -> bool {
    !drill && !crate::domain::Status::is_closed_str(status) && super::common::at_or_above(settings, severity, threshold)
}

/// Whether `action`, decided from the event, still fits the incident as it is now. A delivery
/// can run long after its event (a retry, a dead delivery retried by hand): a trigger for an
/// incident resolved since, or a resolve for one reopened since, would be wrong, so it is skipped.
pub(crate) async fn still_fits(
    settings: &Settings,
    threshold: &str,
    delivery: &Delivery,
    action: PageAction,
) -> Result<bool, NotifyError> {
    let Some((status, severity)) = delivery.store.incident_now().await? else {
        return Ok(false);
    };
    let pages_now = pages(settings, threshold, &severity, &status, delivery.payload.incident.drill);
    Ok(match action {
        PageAction::Open => pages_now,
        PageAction::Close => !pages_now,
    })
}

/// Compares whether the incident paged before the event with whether it pages after it. `None`
/// when nothing changes for the pager (including drills, lead changes and notes).
pub(crate) fn page_action(settings: &Settings, threshold: &str, payload: &EventPayload) -> Option<PageAction> {
    let inc = &payload.incident;
    if inc.drill {
        return None;
    }
    let now = pages(settings, threshold, &inc.severity, &inc.status, false);
    let old = || payload.change.as_ref().and_then(|c| c.old.as_deref());
    let was = match payload.event {
        EventKind::Declared => false,
        EventKind::SeverityChanged => pages(settings, threshold, old()?, &inc.status, false),
        EventKind::StatusChanged => pages(settings, threshold, &inc.severity, old()?, false),
        EventKind::LeadChanged
        | EventKind::NoteAdded
        | EventKind::RoleChanged
        | EventKind::StatusUpdate
        | EventKind::Nudge
        | EventKind::FollowUpAdded => return None,
    };
    match (was, now) {
        (false, true) => Some(PageAction::Open),
        (true, false) => Some(PageAction::Close),
        _ => None,
    }
}

/// The dedup key (PagerDuty) and alias (Opsgenie) of an incident: stable for its whole life.
pub(crate) fn incident_key(incident: &super::IncidentSnapshot) -> String {
    format!("redbutton-{}", incident.external_key())
}

/// `INC-12 [SEV1] title`, at most `max` characters (cut on a character boundary).
pub(crate) fn headline(payload: &EventPayload, max: usize) -> String {
    let inc = &payload.incident;
    let full = format!("{} [{}] {}", inc.reference(), inc.severity, inc.title);
    if full.chars().count() <= max {
        full
    } else {
        let mut cut: String = full.chars().take(max.saturating_sub(1)).collect();
        cut.push('\u{2026}');
        cut
    }
}

/// A vendor's 400/422 answer `{message, errors}` read into a permanent error; anything else goes
/// through the shared status reading.
pub(crate) fn refusal(vendor: &str, answer: &Answer) -> NotifyError {
    let code = answer.status.as_u16();
    if !matches!(code, 400 | 422) {
        return http::status_error(vendor, answer);
    }
    #[derive(Deserialize)]
    struct Refusal {
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        errors: Option<Value>,
    }
    let Ok(r) = serde_json::from_slice::<Refusal>(&answer.body) else {
        return http::status_error(vendor, answer);
    };
    let mut parts: Vec<String> = r.message.into_iter().collect();
    match r.errors {
        Some(Value::Array(items)) => parts.extend(items.iter().map(plain)),
        Some(Value::Object(fields)) => parts.extend(fields.iter().map(|(k, v)| format!("{k}: {}", plain(v)))),
        Some(Value::Null) | None => {}
        Some(other) => parts.push(plain(&other)),
    }
    let said = if parts.is_empty() {
        http::excerpt(&answer.body)
    } else {
        http::excerpt(parts.join("; ").as_bytes())
    };
    NotifyError::Permanent(format!("{vendor} refused the request (HTTP {code}): {said}"))
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// The notifier.

const VENDOR: &str = "PagerDuty";
/// Where the last trigger went, so the resolve goes to the same integration.
const ROUTE_REF: &str = "route";
const SUMMARY_MAX_CHARS: usize = 1024;

/// Which routing key an event uses.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    /// The key of one of the incident's services.
    Service(String),
    /// The default key.
    Default,
}

impl Route {
    fn stored(&self) -> String {
        match self {
            Route::Service(id) => format!("service:{id}"),
            Route::Default => "default".into(),
        }
    }

    fn parse(raw: &str) -> Option<Route> {
        match raw.strip_prefix("service:") {
            Some(id) => Some(Route::Service(id.to_string())),
            None if raw == "default" => Some(Route::Default),
            None => None,
        }
    }
}

/// Sends PagerDuty Events API v2 triggers and resolves.
pub struct PagerDutyNotifier {
    client: reqwest::Client,
    enqueue_url: String,
    default_key: Option<String>,
    service_keys: BTreeMap<String, String>,
    threshold: String,
    severity_map: BTreeMap<String, String>,
    settings: Arc<Settings>,
}

impl std::fmt::Debug for PagerDutyNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PagerDutyNotifier")
            .field("enqueue_url", &self.enqueue_url)
            .field("services", &self.service_keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl PagerDutyNotifier {
    /// Builds it from the validated section, reading the routing keys now.
    pub fn new(pd: &PagerDutySettings, settings: &Settings) -> anyhow::Result<Self> {
        let base = super::common::base_url("integrations.pagerduty.base_url", &pd.base_url)?;
        let default_key = match &pd.routing_key_env {
            Some(var) => Some(super::common::secret(settings, var)?),
            None => None,
        };
        let mut service_keys = BTreeMap::new();
        for (id, s) in &pd.services {
            service_keys.insert(id.clone(), super::common::secret(settings, &s.routing_key_env)?);
        }
        Ok(Self {
            client: http::client(Duration::from_millis(settings.outbox.delivery_timeout_ms))?,
            enqueue_url: format!("{base}/v2/enqueue"),
            default_key,
            service_keys,
            threshold: pd.page_at_or_above.clone(),
            severity_map: pd.severity_map.clone(),
            settings: Arc::new(settings.clone()),
        })
    }

    /// The first of the incident's services with its own key, else the default.
    fn route_for(&self, services: &[String]) -> Option<Route> {
        services
            .iter()
            .find(|s| self.service_keys.contains_key(*s))
            .map(|s| Route::Service(s.clone()))
            .or_else(|| self.default_key.as_ref().map(|_| Route::Default))
    }

    fn key_of(&self, route: &Route) -> Option<&str> {
        match route {
            Route::Service(id) => self.service_keys.get(id).map(String::as_str),
            Route::Default => self.default_key.as_deref(),
        }
    }

    fn no_key(services: &[String]) -> NotifyError {
        NotifyError::Permanent(format!(
            "no PagerDuty routing key for services [{}]: set integrations.pagerduty.routing_key_env or \
             integrations.pagerduty.services.<id>.routing_key_env",
            services.join(", ")
        ))
    }

    /// PagerDuty's severity for one of ours: the configured map, else by position.
    pub fn severity_for(&self, severity: &str) -> String {
        map_severity(&self.settings, &self.severity_map, severity)
    }

    fn trigger_body(&self, key: &str, payload: &EventPayload) -> Value {
        let inc = &payload.incident;
        let source = url::Url::parse(&inc.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "redbutton".into());
        let mut details = Map::new();
        details.insert("status".into(), json!(inc.status));
        details.insert("services".into(), json!(inc.services));
        details.insert("declared_by".into(), json!(inc.declared_by.name));
        if let Some(lead) = &inc.lead {
            details.insert("lead".into(), json!(lead.name));
        }
        if !inc.summary.trim().is_empty() {
            details.insert("summary".into(), json!(inc.summary));
        }
        if let Some(bridge) = &inc.bridge_url {
            details.insert("bridge".into(), json!(bridge));
        }
        let mut event_payload = Map::new();
        event_payload.insert("summary".into(), json!(headline(payload, SUMMARY_MAX_CHARS)));
        event_payload.insert("source".into(), json!(source));
        event_payload.insert("severity".into(), json!(self.severity_for(&inc.severity)));
        event_payload.insert(
            "timestamp".into(),
            json!(
                Utc.from_utc_datetime(&inc.declared_at)
                    .to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
        );
        if !inc.services.is_empty() {
            event_payload.insert("component".into(), json!(inc.services.join(", ")));
        }
        event_payload.insert("group".into(), json!(inc.reference()));
        event_payload.insert("class".into(), json!("incident"));
        event_payload.insert("custom_details".into(), Value::Object(details));
        let mut links = vec![json!({"href": inc.url, "text": format!("{} in Big Red Button", inc.reference())})];
        if let Some(bridge) = &inc.bridge_url {
            links.push(json!({"href": bridge, "text": "Conference bridge"}));
        }
        json!({
            "routing_key": key,
            "event_action": "trigger",
            "dedup_key": incident_key(inc),
            "payload": Value::Object(event_payload),
            "client": "Big Red Button",
            "client_url": inc.url,
            "links": links,
        })
    }

    async fn send(&self, body: &Value) -> Result<String, NotifyError> {
        let request = self.client.post(&self.enqueue_url).json(body);
        let answer = http::send(request, VENDOR).await?;
        if !answer.status.is_success() {
            return Err(refusal(VENDOR, &answer));
        }
        #[derive(Deserialize)]
        struct Accepted {
            #[serde(default)]
            dedup_key: Option<String>,
        }
        let accepted: Accepted = answer.json(VENDOR)?;
        Ok(accepted
            .dedup_key
            .unwrap_or_else(|| body["dedup_key"].as_str().unwrap_or_default().to_string()))
    }
}

/// Severity id → `critical|error|warning|info`: the configured map first, then by position among
/// the configured levels (`unknown` counts as the first).
pub fn map_severity(settings: &Settings, map: &BTreeMap<String, String>, severity: &str) -> String {
    if let Some(to) = map.get(severity) {
        return to.clone();
    }
    // `unknown` is not a configured level, so it takes the first position.
    let index = super::common::level_index(settings, severity);
    ["critical", "error", "warning"]
        .get(index)
        .copied()
        .unwrap_or("info")
        .to_string()
}

impl Notifier for PagerDutyNotifier {
    fn name(&self) -> &str {
        "pagerduty"
    }

    fn accepts(&self, payload: &EventPayload) -> bool {
        page_action(&self.settings, &self.threshold, payload).is_some()
    }

    fn target(&self, payload: &EventPayload) -> Option<String> {
        let services = &payload.incident.services;
        Some(match self.route_for(services) {
            Some(Route::Service(id)) => {
                let name = self
                    .settings
                    .services
                    .iter()
                    .find(|s| s.id == id)
                    .map_or(id.as_str(), |s| s.name.as_str());
                format!("routing key of {name}")
            }
            Some(Route::Default) => "default routing key".into(),
            None => "no routing key".into(),
        })
    }

    fn deliver<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<Delivered, NotifyError>> {
        Box::pin(async move {
            let payload = &delivery.payload;
            let inc = &payload.incident;
            let Some(action) = page_action(&self.settings, &self.threshold, payload) else {
                return Ok(Delivered::default());
            };
            if !still_fits(&self.settings, &self.threshold, delivery, action).await? {
                return Ok(Delivered::default());
            }
            let dedup_key = match action {
                PageAction::Open => {
                    let route = self
                        .route_for(&inc.services)
                        .ok_or_else(|| Self::no_key(&inc.services))?;
                    let key = self.key_of(&route).ok_or_else(|| Self::no_key(&inc.services))?;
                    let dedup_key = self.send(&self.trigger_body(key, payload)).await?;
                    delivery
                        .store
                        .put("pagerduty", ROUTE_REF, &route.stored(), None)
                        .await?;
                    dedup_key
                }
                PageAction::Close => {
                    // Resolve where the trigger went, if that key is still configured.
                    let stored = delivery.store.get("pagerduty", ROUTE_REF).await?;
                    let route = stored
                        .and_then(|r| Route::parse(&r.value))
                        .filter(|r| self.key_of(r).is_some())
                        .or_else(|| self.route_for(&inc.services))
                        .ok_or_else(|| Self::no_key(&inc.services))?;
                    let key = self.key_of(&route).ok_or_else(|| Self::no_key(&inc.services))?;
                    let body = json!({
                        "routing_key": key,
                        "event_action": "resolve",
                        "dedup_key": incident_key(inc),
                    });
                    self.send(&body).await?
                }
            };
            Ok(Delivered {
                external_id: Some(dedup_key),
                external_url: None,
            })
        })
    }

    fn probe(&self) -> BoxFuture<'_, Result<String, String>> {
        let keys = self.service_keys.len() + usize::from(self.default_key.is_some());
        Box::pin(async move {
            Ok(format!(
                "the Events API has no read-only call to check a routing key; {keys} routing key(s) are set"
            ))
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::Actor;
    use crate::notifiers::{Change, IncidentSnapshot};

    pub(crate) fn payload(
        event: EventKind,
        severity: &str,
        status: &str,
        change: Option<(&str, &str)>,
    ) -> EventPayload {
        let ada = Actor {
            name: "Ada".into(),
            email: "ada@example.com".into(),
        };
        EventPayload {
            event,
            at: chrono::NaiveDateTime::default(),
            actor: ada.clone(),
            incident: IncidentSnapshot {
                number: 12,
                title: "Checkout down".into(),
                severity: severity.into(),
                status: status.into(),
                services: vec!["checkout".into(), "search".into()],
                summary: String::new(),
                declared_by: ada,
                lead: None,
                drill: false,
                declared_at: chrono::NaiveDateTime::default(),
                url: "https://rb.example.com/incidents/12".into(),
                bridge_url: None,
                latest_update: None,
                closed_reason: None,
                merged_into: None,
            },
            change: change.map(|(old, new)| Change {
                field: if event == EventKind::StatusChanged {
                    "status"
                } else {
                    "severity"
                }
                .into(),
                old: Some(old.into()),
                new: Some(new.into()),
            }),
            note: None,
            email_to: vec![],
            step: None,
            follow_up: None,
            role: None,
        }
    }

    fn action(p: &EventPayload) -> Option<PageAction> {
        page_action(&Settings::default(), "SEV1", p)
    }

    #[test]
    fn severities_map_by_position_unless_configured() {
        let s = Settings::default();
        let none = BTreeMap::new();
        let got: Vec<String> = ["SEV0", "SEV1", "SEV2", "SEV3", "SEV4", "unknown"]
            .iter()
            .map(|sev| map_severity(&s, &none, sev))
            .collect();
        assert_eq!(got, ["critical", "error", "warning", "info", "info", "critical"]);
        let map = BTreeMap::from([("SEV1".to_string(), "critical".to_string())]);
        assert_eq!(map_severity(&s, &map, "SEV1"), "critical");
        assert_eq!(map_severity(&s, &map, "SEV2"), "warning");
    }

    #[test]
    fn declaring_pages_only_at_or_above_the_threshold() {
        use EventKind::*;
        assert_eq!(
            action(&payload(Declared, "SEV0", "investigating", None)),
            Some(PageAction::Open)
        );
        assert_eq!(
            action(&payload(Declared, "SEV1", "investigating", None)),
            Some(PageAction::Open)
        );
        assert_eq!(
            action(&payload(Declared, "unknown", "investigating", None)),
            Some(PageAction::Open),
            "an unassessed incident may be a big one"
        );
        assert_eq!(action(&payload(Declared, "SEV2", "investigating", None)), None);
    }

    #[test]
    fn changes_open_or_close_only_when_crossing_the_line() {
        use EventKind::*;
        let sev = |old, new| action(&payload(SeverityChanged, new, "identified", Some((old, new))));
        assert_eq!(sev("SEV3", "SEV1"), Some(PageAction::Open), "upgrade");
        assert_eq!(sev("SEV1", "SEV3"), Some(PageAction::Close), "downgrade");
        assert_eq!(sev("SEV1", "SEV0"), None, "already paging");
        assert_eq!(sev("SEV3", "SEV2"), None, "still below");
        let status = |sev, old, new| action(&payload(StatusChanged, sev, new, Some((old, new))));
        assert_eq!(
            status("SEV1", "mitigated", "resolved"),
            Some(PageAction::Close),
            "resolve"
        );
        assert_eq!(status("SEV3", "mitigated", "resolved"), None, "never paged");
        assert_eq!(
            status("SEV1", "resolved", "investigating"),
            Some(PageAction::Open),
            "reopen"
        );
        assert_eq!(status("SEV3", "resolved", "investigating"), None);
        assert_eq!(status("SEV1", "investigating", "identified"), None);
        // A severity change on a resolved incident changes nothing.
        assert_eq!(
            action(&payload(SeverityChanged, "SEV0", "resolved", Some(("SEV3", "SEV0")))),
            None
        );
        assert_eq!(action(&payload(LeadChanged, "SEV0", "investigating", None)), None);
        assert_eq!(action(&payload(NoteAdded, "SEV0", "investigating", None)), None);
    }

    #[test]
    fn drills_never_page() {
        let mut p = payload(EventKind::Declared, "SEV0", "investigating", None);
        p.incident.drill = true;
        assert_eq!(action(&p), None);
        let mut p = payload(
            EventKind::SeverityChanged,
            "SEV0",
            "investigating",
            Some(("SEV3", "SEV0")),
        );
        p.incident.drill = true;
        assert_eq!(action(&p), None);
    }

    #[test]
    fn headlines_are_cut_on_a_character_boundary() {
        let mut p = payload(EventKind::Declared, "SEV1", "investigating", None);
        assert_eq!(headline(&p, 1024), "INC-12 [SEV1] Checkout down");
        p.incident.title = "é".repeat(2000);
        let h = headline(&p, 1024);
        assert_eq!(h.chars().count(), 1024);
        assert!(h.starts_with("INC-12 [SEV1] éé") && h.ends_with('\u{2026}'));
    }

    #[test]
    fn refusals_carry_the_vendors_message_and_errors() {
        let answer = |code: u16, body: &str| Answer {
            status: reqwest::StatusCode::from_u16(code).unwrap(),
            headers: Default::default(),
            body: body.as_bytes().to_vec(),
            truncated: false,
        };
        let e = refusal(
            "PagerDuty",
            &answer(
                400,
                r#"{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect (should be 32 characters)"]}"#,
            ),
        );
        assert_eq!(
            e,
            NotifyError::Permanent(
                "PagerDuty refused the request (HTTP 400): Event object is invalid; Length of 'routing_key' is \
                 incorrect (should be 32 characters)"
                    .into()
            )
        );
        let e = refusal(
            "Opsgenie",
            &answer(
                422,
                r#"{"message":"Request body is not processable","errors":{"message":"Message can not be empty."},"took":0.0,"requestId":"r"}"#,
            ),
        );
        assert_eq!(
            e,
            NotifyError::Permanent(
                "Opsgenie refused the request (HTTP 422): Request body is not processable; message: Message can \
                 not be empty."
                    .into()
            )
        );
        assert!(
            matches!(refusal("PagerDuty", &answer(400, "<html>")), NotifyError::Permanent(m) if m.contains("<html>"))
        );
        assert!(matches!(
            refusal("PagerDuty", &answer(503, "{}")),
            NotifyError::Retryable(_)
        ));
    }

    fn notifier(default: bool) -> PagerDutyNotifier {
        let mut settings = Settings::default();
        settings
            .secret_values
            .insert("PD_DEFAULT".into(), "default-key-0000".into());
        settings
            .secret_values
            .insert("PD_SEARCH".into(), "search-key-0000".into());
        let pd = PagerDutySettings {
            base_url: "http://127.0.0.1:9".into(),
            routing_key_env: default.then(|| "PD_DEFAULT".to_string()),
            page_at_or_above: "SEV1".into(),
            severity_map: BTreeMap::new(),
            services: BTreeMap::from([(
                "search".to_string(),
                PagerDutyService {
                    routing_key_env: "PD_SEARCH".into(),
                },
            )]),
        };
        PagerDutyNotifier::new(&pd, &settings).unwrap()
    }

    #[test]
    fn the_first_service_with_a_key_wins_and_targets_never_show_keys() {
        let n = notifier(true);
        let p = payload(EventKind::Declared, "SEV1", "investigating", None);
        assert_eq!(n.route_for(&p.incident.services), Some(Route::Service("search".into())));
        assert_eq!(n.target(&p).as_deref(), Some("routing key of search"));
        assert_eq!(n.route_for(&["checkout".into()]), Some(Route::Default));
        assert_eq!(notifier(false).route_for(&["checkout".into()]), None);
        assert!(!format!("{n:?}").contains("key-0000"), "Debug hides keys");
        assert_eq!(
            Route::parse(&Route::Service("a".into()).stored()),
            Some(Route::Service("a".into()))
        );
        assert_eq!(Route::parse("default"), Some(Route::Default));
        assert_eq!(Route::parse("other"), None);
    }

    #[test]
    fn a_minimal_section_validates_with_the_default_threshold_and_bad_values_name_their_key() {
        let s = Settings::parse("[integrations.pagerduty]\nrouting_key_env = \"PD_KEY\"\n").unwrap();
        let pd = s.integrations.pagerduty.as_ref().unwrap();
        assert_eq!(pd.page_at_or_above, "SEV1");
        assert_eq!(pd.base_url, "https://events.pagerduty.com");
        let e = Settings::parse(
            "[integrations.pagerduty]\nrouting_key_env = \"PD_KEY\"\nseverity_map = { SEV2 = \"loud\" }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("integrations.pagerduty.severity_map.SEV2"), "{e}");
        let e = Settings::parse("[integrations.pagerduty]\n").unwrap_err().to_string();
        assert!(e.contains("integrations.pagerduty.routing_key_env"), "{e}");
        let s = Settings::parse("[integrations.opsgenie]\napi_key_env = \"OG_KEY\"\n").unwrap();
        assert_eq!(s.integrations.opsgenie.as_ref().unwrap().page_at_or_above, "SEV1");
    }

    #[test]
    fn accepts_only_what_needs_a_call() {
        let n = notifier(true);
        assert!(n.accepts(&payload(EventKind::Declared, "SEV1", "investigating", None)));
        assert!(!n.accepts(&payload(EventKind::Declared, "SEV3", "investigating", None)));
        assert!(!n.accepts(&payload(EventKind::LeadChanged, "SEV1", "investigating", None)));
        let mut drill = payload(EventKind::Declared, "SEV0", "investigating", None);
        drill.incident.drill = true;
        assert!(!n.accepts(&drill));
    }
}
