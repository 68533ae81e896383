//! PagerDuty Events API v2.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::{ConfigError, Settings, bad, check_env_name};

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
    "sev1".into()
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
