//! Outgoing webhooks, signed the Standard Webhooks way.

use serde::Deserialize;

use crate::config::{ConfigError, Settings, bad, check_env_name, check_id};
use crate::domain::EventKind;

/// One `[[integrations.webhooks]]` endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Short name; the notifier is `webhook:<name>` in routing rules and on the incident page.
    pub name: String,
    /// Where to POST.
    pub url: String,
    /// Environment variable with the signing secret (`whsec_<base64>`, or any string of at least
    /// 24 characters, used as raw bytes).
    pub secret_env: String,
    /// Event kinds to send; empty means all.
    #[serde(default)]
    pub events: Vec<String>,
    /// Whether drills are sent too.
    #[serde(default = "yes")]
    pub drills: bool,
}

fn yes() -> bool {
    true
}

impl WebhookSettings {
    /// `webhook:<name>`.
    pub fn notifier_name(&self) -> String {
        format!("webhook:{}", self.name)
    }

    /// Checks the entry.
    pub fn validate(&self, key: &str, _settings: &Settings) -> Result<(), ConfigError> {
        check_id(&format!("{key}.name"), &self.name)?;
        super::common::base_url(&format!("{key}.url"), &self.url)?;
        check_env_name(&format!("{key}.secret_env"), &self.secret_env)?;
        for e in &self.events {
            if EventKind::parse(e).is_none() {
                let all: Vec<_> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                return Err(bad(
                    format!("{key}.events"),
                    format!("unknown event \u{201c}{e}\u{201d}; known: {}", all.join(", ")),
                ));
            }
        }
        Ok(())
    }

    /// The secrets it names.
    pub fn secret_envs(&self, index: usize) -> Vec<(String, String)> {
        vec![(
            format!("integrations.webhooks[{index}].secret_env"),
            self.secret_env.clone(),
        )]
    }
}
