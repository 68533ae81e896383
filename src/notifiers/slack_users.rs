//! Who a Slack member is, for the `/incident` slash command: `users.info` with the bot token, at
//! the configured Web API base, with a short time limit (Slack wants the command answered within
//! three seconds). Needs the `users:read` and `users:read.email` scopes the notifier already uses.

use std::time::Duration;

use serde_json::Value;

use super::http;
use super::slack::SlackSettings;
use crate::config::Settings;

/// How long `users.info` may take before the command answers without it.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_millis(1500);

/// A Slack member as `users.info` describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackPerson {
    /// Member id (`U…`).
    pub id: String,
    /// Real name, else display name, else handle; `None` when Slack gave none.
    pub name: Option<String>,
    /// Email address (lowercase), when the token may read it.
    pub email: Option<String>,
}

/// Reads members from Slack.
pub struct SlackDirectory {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl std::fmt::Debug for SlackDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("SlackDirectory")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

fn non_empty(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl SlackDirectory {
    /// Built from the Slack section; reads the bot token.
    pub fn new(slack: &SlackSettings, settings: &Settings) -> anyhow::Result<Self> {
        Ok(Self {
            base: slack.base_url.trim_end_matches('/').to_string(),
            token: super::common::secret(settings, &slack.token_env)?,
            client: http::client(LOOKUP_TIMEOUT)?,
        })
    }

    /// Looks one member up. The error says what went wrong in words for the person waiting
    /// (never the token).
    pub async fn user(&self, id: &str) -> Result<SlackPerson, String> {
        let url = reqwest::Url::parse_with_params(&format!("{}/users.info", self.base), &[("user", id)])
            .map_err(|e| format!("the Slack base_url is not usable: {e}"))?;
        let request = self.client.get(url).bearer_auth(&self.token);
        let answer = http::send(request, "Slack users.info")
            .await
            .map_err(|e| e.into_notify().to_string())?;
        if !answer.status.is_success() {
            return Err(http::status_error("Slack users.info", &answer).to_string());
        }
        let body: Value = answer.json("Slack users.info").map_err(|e| e.to_string())?;
        if body.get("ok").and_then(Value::as_bool) != Some(true) {
            let code = body.get("error").and_then(Value::as_str).unwrap_or("unknown_error");
            return Err(format!("Slack users.info answered {code}"));
        }
        let user = body.get("user").cloned().unwrap_or(Value::Null);
        let profile = user.get("profile");
        Ok(SlackPerson {
            id: id.to_string(),
            name: non_empty(user.get("real_name"))
                .or_else(|| non_empty(profile.and_then(|p| p.get("real_name"))))
                .or_else(|| non_empty(profile.and_then(|p| p.get("display_name"))))
                .or_else(|| non_empty(user.get("name"))),
            email: non_empty(profile.and_then(|p| p.get("email"))).map(|e| e.to_ascii_lowercase()),
        })
    }
}
