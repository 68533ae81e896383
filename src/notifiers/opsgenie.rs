//! Opsgenie Alert API (legacy: Atlassian ends the Opsgenie API on 2027-04-05).
//!
//! One alert per incident that should page, with the same reading as PagerDuty: created when the
//! incident starts paging, closed when it stops. The alias is derived from the incident number,
//! so Opsgenie folds a repeated create into the open alert and retries need no bookkeeping.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::http;
use super::pagerduty::{PageAction, headline, incident_key, page_action, refusal, still_fits};
use super::{Delivered, Delivery, EventPayload, Notifier, NotifyError};
use crate::config::{ConfigError, Settings, bad, check_env_name};

/// `[integrations.opsgenie]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsgenieSettings {
    /// API base (`https://api.opsgenie.com`, or `https://api.eu.opsgenie.com`).
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Environment variable with the API integration key (sent as `GenieKey`).
    pub api_key_env: String,
    /// Create alerts for incidents at or above this severity.
    #[serde(default = "default_threshold")]
    pub page_at_or_above: String,
    /// Severity id → `P1`..`P5`; unlisted levels map by position (first P1, second P2, …).
    #[serde(default)]
    pub priorities: BTreeMap<String, String>,
    /// Per service: teams to notify.
    #[serde(default)]
    pub services: BTreeMap<String, OpsgenieService>,
}

/// `[integrations.opsgenie.services.<id>]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsgenieService {
    /// Opsgenie team names to add as responders.
    #[serde(default)]
    pub teams: Vec<String>,
}

fn default_base_url() -> String {
    "https://api.opsgenie.com".into()
}

fn default_threshold() -> String {
    "SEV1".into()
}

impl OpsgenieSettings {
    /// Checks the section.
    pub fn validate(&self, key: &str, settings: &Settings) -> Result<(), ConfigError> {
        super::common::base_url(&format!("{key}.base_url"), &self.base_url)?;
        check_env_name(&format!("{key}.api_key_env"), &self.api_key_env)?;
        super::common::check_severity(&format!("{key}.page_at_or_above"), &self.page_at_or_above, settings)?;
        for (sev, p) in &self.priorities {
            super::common::check_severity(&format!("{key}.priorities"), sev, settings)?;
            if !["P1", "P2", "P3", "P4", "P5"].contains(&p.as_str()) {
                return Err(bad(
                    format!("{key}.priorities.{sev}"),
                    "must be one of P1, P2, P3, P4, P5",
                ));
            }
        }
        for id in self.services.keys() {
            super::common::check_service(&format!("{key}.services.{id}"), id, settings)?;
        }
        Ok(())
    }

    /// The secrets it names.
    pub fn secret_envs(&self) -> Vec<(String, String)> {
        vec![(
            "integrations.opsgenie.api_key_env".to_string(),
            self.api_key_env.clone(),
        )]
    }
}

// ---------------------------------------------------------------------------------------------
// The notifier.

const VENDOR: &str = "Opsgenie";
/// Opsgenie cuts `message` at 130 characters; we cut it ourselves so the cut is clean.
const MESSAGE_MAX_CHARS: usize = 130;
/// Opsgenie's limit for `description` is 15,000 characters; leave room for the link.
const DESCRIPTION_MAX_CHARS: usize = 14_000;
/// Opsgenie accepts at most 20 tags.
const TAGS_MAX: usize = 20;

/// Creates and closes Opsgenie alerts.
///
/// Legacy: Atlassian stopped selling Opsgenie on 2025-06-04 and ends the Opsgenie REST API on
/// 2027-04-05; this notifier stops working then.
pub struct OpsgenieNotifier {
    client: reqwest::Client,
    base_url: String,
    api_key: String,
    threshold: String,
    priorities: BTreeMap<String, String>,
    teams: BTreeMap<String, Vec<String>>,
    settings: Arc<Settings>,
}

impl std::fmt::Debug for OpsgenieNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpsgenieNotifier")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Severity id → `P1`..`P5`: the configured map first, then by position among the configured
/// levels (`unknown` counts as the first, so it is `P1`).
pub fn map_priority(settings: &Settings, map: &BTreeMap<String, String>, severity: &str) -> String {
    if let Some(p) = map.get(severity) {
        return p.clone();
    }
    let index = super::common::level_index(settings, severity).min(4);
    format!("P{}", index + 1)
}

impl OpsgenieNotifier {
    /// `GenieKey <key>`, marked sensitive so no debug output of the request shows it.
    fn authorization(&self) -> reqwest::header::HeaderValue {
        let mut v = reqwest::header::HeaderValue::from_str(&format!("GenieKey {}", self.api_key))
            .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static("GenieKey invalid"));
        v.set_sensitive(true);
        v
    }

    /// Builds it from the validated section, reading the API key now.
    pub fn new(og: &OpsgenieSettings, settings: &Settings) -> anyhow::Result<Self> {
        Ok(Self {
            client: http::client(Duration::from_millis(settings.outbox.delivery_timeout_ms))?,
            base_url: super::common::base_url("integrations.opsgenie.base_url", &og.base_url)?,
            api_key: super::common::secret(settings, &og.api_key_env)?,
            threshold: og.page_at_or_above.clone(),
            priorities: og.priorities.clone(),
            teams: og
                .services
                .iter()
                .map(|(id, s)| (id.clone(), s.teams.clone()))
                .collect(),
            settings: Arc::new(settings.clone()),
        })
    }

    /// The priority of one of our severities.
    pub fn priority_for(&self, severity: &str) -> String {
        map_priority(&self.settings, &self.priorities, severity)
    }

    /// The teams of the incident's services, each once, in the order met.
    fn teams_for(&self, services: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for team in services.iter().filter_map(|s| self.teams.get(s)).flatten() {
            if !out.contains(team) {
                out.push(team.clone());
            }
        }
        out
    }

    fn create_body(&self, payload: &EventPayload) -> Value {
        let inc = &payload.incident;
        let summary: String = inc.summary.trim().chars().take(DESCRIPTION_MAX_CHARS).collect();
        let description = if summary.is_empty() {
            format!("Incident page: {}", inc.url)
        } else {
            format!("{summary}\n\nIncident page: {}", inc.url)
        };
        let responders: Vec<Value> = self
            .teams_for(&inc.services)
            .into_iter()
            .map(|name| json!({"name": name, "type": "team"}))
            .collect();
        let mut tags = vec!["redbutton".to_string(), inc.severity.clone()];
        tags.extend(inc.services.iter().cloned());
        tags.truncate(TAGS_MAX);
        let mut details = Map::new();
        details.insert("incident".into(), json!(inc.url));
        details.insert("status".into(), json!(inc.status));
        details.insert("severity".into(), json!(inc.severity));
        details.insert("declared_by".into(), json!(inc.declared_by.name));
        if let Some(lead) = &inc.lead {
            details.insert("lead".into(), json!(lead.name));
        }
        if let Some(bridge) = &inc.bridge_url {
            details.insert("bridge".into(), json!(bridge));
        }
        json!({
            "message": headline(payload, MESSAGE_MAX_CHARS),
            "alias": incident_key(inc),
            "description": description,
            "responders": responders,
            "tags": tags,
            "details": Value::Object(details),
            "entity": inc.reference(),
            "priority": self.priority_for(&inc.severity),
            "source": "Big Red Button",
            "user": payload.actor.name,
        })
    }

    fn close_body(&self, payload: &EventPayload) -> Value {
        let inc = &payload.incident;
        let who = &payload.actor.name;
        let note = if let Some(words) = inc.closure_words() {
            format!("{} {words} in Big Red Button by {who}.", inc.reference())
        } else if inc.status == "resolved" {
            format!("{} resolved in Big Red Button by {who}.", inc.reference())
        } else {
            format!(
                "{} lowered to {} by {who}, below the paging threshold {}.",
                inc.reference(),
                inc.severity,
                self.threshold
            )
        };
        json!({
            "user": who,
            "source": "Big Red Button",
            "note": note,
        })
    }

    async fn post(&self, url: String, body: &Value) -> Result<(), NotifyError> {
        let request = self
            .client
            .post(url)
            .header(reqwest::header::AUTHORIZATION, self.authorization())
            .json(body);
        let answer = http::send(request, VENDOR).await?;
        if !answer.status.is_success() {
            return Err(refusal(VENDOR, &answer));
        }
        // Processing is asynchronous: a 202 with a request id is all Opsgenie promises now.
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Accepted {
            #[allow(dead_code)]
            request_id: String,
        }
        answer.json::<Accepted>(VENDOR)?;
        Ok(())
    }
}

impl Notifier for OpsgenieNotifier {
    fn name(&self) -> &str {
        "opsgenie"
    }

    fn accepts(&self, payload: &EventPayload) -> bool {
        page_action(&self.settings, &self.threshold, payload).is_some()
    }

    fn target(&self, payload: &EventPayload) -> Option<String> {
        let teams = self.teams_for(&payload.incident.services);
        Some(if teams.is_empty() {
            "the API key's own routing".into()
        } else {
            format!("teams {}", teams.join(", "))
        })
    }

    fn deliver<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<Delivered, NotifyError>> {
        Box::pin(async move {
            let payload = &delivery.payload;
            let Some(action) = page_action(&self.settings, &self.threshold, payload) else {
                return Ok(Delivered::default());
            };
            if !still_fits(&self.settings, &self.threshold, delivery, action).await? {
                return Ok(Delivered::default());
            }
            let alias = incident_key(&payload.incident);
            match action {
                PageAction::Open => {
                    self.post(format!("{}/v2/alerts", self.base_url), &self.create_body(payload))
                        .await?
                }
                PageAction::Close => {
                    let url = format!("{}/v2/alerts/{alias}/close?identifierType=alias", self.base_url);
                    self.post(url, &self.close_body(payload)).await?
                }
            }
            // The alias, not the request id: it names the alert for as long as it lives.
            Ok(Delivered {
                external_id: Some(alias),
                external_url: None,
            })
        })
    }

    /// Lists at most one alert: a read every API integration key may make (team keys included,
    /// unlike the account and heartbeat APIs), creating nothing.
    fn probe(&self) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            let request = self
                .client
                .get(format!("{}/v2/alerts?limit=1", self.base_url))
                .header(reqwest::header::AUTHORIZATION, self.authorization());
            let answer = http::send(request, VENDOR)
                .await
                .map_err(|e| e.into_notify().to_string())?;
            match answer.status.as_u16() {
                200..=299 => Ok("the API key can read alerts".to_string()),
                code @ (401 | 403) => Err(format!(
                    "Opsgenie refused the API key (HTTP {code}): {}; use the key of an API integration \
                     (not a heartbeat or email one) with read access, and check base_url is your \
                     region (api.opsgenie.com or api.eu.opsgenie.com)",
                    http::excerpt(&answer.body)
                )),
                _ => Err(http::status_error(VENDOR, &answer).to_string()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EventKind;
    use crate::notifiers::pagerduty::tests::payload;

    #[test]
    fn priorities_map_by_position_unless_configured() {
        let s = Settings::default();
        let none = BTreeMap::new();
        let got: Vec<String> = ["SEV0", "SEV1", "SEV2", "SEV3", "SEV4", "unknown"]
            .iter()
            .map(|sev| map_priority(&s, &none, sev))
            .collect();
        assert_eq!(got, ["P1", "P2", "P3", "P4", "P5", "P1"]);
        let mut six = Settings::default();
        six.severities.push(six.severities[4].clone());
        six.severities[5].id = "SEV5".into();
        assert_eq!(map_priority(&six, &none, "SEV5"), "P5", "levels past the fifth stay P5");
        let map = BTreeMap::from([("SEV2".to_string(), "P1".to_string())]);
        assert_eq!(map_priority(&s, &map, "SEV2"), "P1");
    }

    fn notifier() -> OpsgenieNotifier {
        let mut settings = Settings::default();
        settings.secret_values.insert("OG_KEY".into(), "genie-secret".into());
        let og = OpsgenieSettings {
            base_url: "http://127.0.0.1:9".into(),
            api_key_env: "OG_KEY".into(),
            page_at_or_above: "SEV1".into(),
            priorities: BTreeMap::new(),
            services: BTreeMap::from([
                (
                    "checkout".to_string(),
                    OpsgenieService {
                        teams: vec!["payments".into(), "sre".into()],
                    },
                ),
                (
                    "search".to_string(),
                    OpsgenieService {
                        teams: vec!["sre".into()],
                    },
                ),
            ]),
        };
        OpsgenieNotifier::new(&og, &settings).unwrap()
    }

    #[test]
    fn messages_are_cut_to_130_characters_and_teams_are_listed_once() {
        let n = notifier();
        let mut p = payload(EventKind::Declared, "SEV1", "investigating", None);
        p.incident.title = "ü".repeat(300);
        let body = n.create_body(&p);
        let message = body["message"].as_str().unwrap();
        assert_eq!(message.chars().count(), 130);
        assert_eq!(
            body["responders"],
            json!([{"name": "payments", "type": "team"}, {"name": "sre", "type": "team"}])
        );
        assert_eq!(n.target(&p).as_deref(), Some("teams payments, sre"));
        assert!(!format!("{n:?}").contains("genie-secret"));
    }

    #[test]
    fn drills_lead_changes_and_minor_incidents_are_not_accepted() {
        let n = notifier();
        assert!(n.accepts(&payload(EventKind::Declared, "SEV0", "investigating", None)));
        assert!(!n.accepts(&payload(EventKind::Declared, "SEV2", "investigating", None)));
        assert!(!n.accepts(&payload(EventKind::NoteAdded, "SEV0", "investigating", None)));
        let mut drill = payload(EventKind::Declared, "SEV0", "investigating", None);
        drill.incident.drill = true;
        assert!(!n.accepts(&drill));
    }
}
