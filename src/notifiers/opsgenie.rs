//! Opsgenie Alert API (legacy: Atlassian ends the Opsgenie API on 2027-04-05).

use std::collections::BTreeMap;

use serde::Deserialize;

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
    "sev1".into()
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
