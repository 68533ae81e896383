//! Slack: an incident channel per incident, an announcement in a central channel kept current,
//! and a post for every change.

use serde::Deserialize;

use crate::config::{ConfigError, Settings, bad, check_env_name};

/// `[integrations.slack]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSettings {
    /// Web API base.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Environment variable with the bot token (`xoxb-…`).
    pub token_env: String,
    /// Central incidents channel id (e.g. `C0123ABCD`) where every incident is announced.
    #[serde(default)]
    pub announce_channel: Option<String>,
    /// Create incident channels as private channels.
    #[serde(default)]
    pub private_channels: bool,
    /// Channel names are `<prefix>-<number>-<slug of title>`.
    #[serde(default = "default_prefix")]
    pub channel_prefix: String,
    /// Drills get `<drill_channel_prefix>-<number>-<slug>` channels instead.
    #[serde(default = "default_drill_prefix")]
    pub drill_channel_prefix: String,
    /// Where drills are announced; drills are not announced when unset.
    #[serde(default)]
    pub drill_announce_channel: Option<String>,
    /// Archive the incident channel this many minutes after it resolves; never when unset.
    #[serde(default)]
    pub archive_after_minutes: Option<u64>,
}

fn default_base_url() -> String {
    "https://slack.com/api".into()
}
fn default_prefix() -> String {
    "inc".into()
}
fn default_drill_prefix() -> String {
    "drill".into()
}

fn check_channel_id(key: &str, id: &str) -> Result<(), ConfigError> {
    let ok = id.len() >= 9 && id.len() <= 24 && id.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if ok && (id.starts_with('C') || id.starts_with('G')) {
        Ok(())
    } else {
        Err(bad(
            key,
            format!(
                "\u{201c}{id}\u{201d} is not a channel id like C0123ABCD (open the channel details in Slack to copy it)"
            ),
        ))
    }
}

fn check_prefix(key: &str, p: &str) -> Result<(), ConfigError> {
    let ok = !p.is_empty()
        && p.len() <= 20
        && p.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(bad(key, "use up to 20 lowercase letters, digits, - or _"))
    }
}

impl SlackSettings {
    /// Checks the section.
    pub fn validate(&self, key: &str, _settings: &Settings) -> Result<(), ConfigError> {
        super::common::base_url(&format!("{key}.base_url"), &self.base_url)?;
        check_env_name(&format!("{key}.token_env"), &self.token_env)?;
        if let Some(c) = &self.announce_channel {
            check_channel_id(&format!("{key}.announce_channel"), c)?;
        }
        if let Some(c) = &self.drill_announce_channel {
            check_channel_id(&format!("{key}.drill_announce_channel"), c)?;
        }
        check_prefix(&format!("{key}.channel_prefix"), &self.channel_prefix)?;
        check_prefix(&format!("{key}.drill_channel_prefix"), &self.drill_channel_prefix)?;
        if self.channel_prefix == self.drill_channel_prefix {
            return Err(bad(
                format!("{key}.drill_channel_prefix"),
                "must differ from channel_prefix, so drills never look like incidents",
            ));
        }
        Ok(())
    }

    /// The secrets it names.
    pub fn secret_envs(&self) -> Vec<(String, String)> {
        vec![("integrations.slack.token_env".to_string(), self.token_env.clone())]
    }
}
