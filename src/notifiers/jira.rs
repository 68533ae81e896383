//! Jira: a ticket per incident (Cloud REST v3 with Atlassian Document Format, or Server/Data
//! Center REST v2 with wiki text).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::{ConfigError, Settings, bad, check_emails, check_env_name};

/// Which Jira, which decides the API version and the text format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum JiraFlavor {
    /// Jira Cloud: `/rest/api/3`, descriptions and comments in Atlassian Document Format.
    #[default]
    Cloud,
    /// Jira Server or Data Center: `/rest/api/2`, wiki-markup strings.
    Server,
}

/// How we sign in.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum JiraAuth {
    /// `Authorization: Basic base64(email:api_token)` (Cloud).
    #[default]
    Basic,
    /// `Authorization: Bearer <personal access token>` (Server/Data Center).
    Bearer,
}

/// `[integrations.jira]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JiraSettings {
    /// Site, e.g. `https://example.atlassian.net`.
    pub base_url: String,
    /// `cloud` (default) or `server`.
    #[serde(default)]
    pub flavor: JiraFlavor,
    /// `basic` (default) or `bearer`.
    #[serde(default)]
    pub auth: JiraAuth,
    /// Account email for basic auth.
    #[serde(default)]
    pub email: Option<String>,
    /// Environment variable with the API token (basic) or personal access token (bearer).
    pub token_env: String,
    /// Project key for new tickets.
    pub project: String,
    /// Issue type name for new tickets.
    #[serde(default = "default_issue_type")]
    pub issue_type: String,
    /// Labels on every ticket, besides `<label_prefix>` and `<label_prefix>-inc-<number>`.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Prefix of the label that names the incident (and finds its ticket again).
    #[serde(default = "default_label_prefix")]
    pub label_prefix: String,
    /// Severity id → Jira priority name; unlisted levels map by position (Highest, High,
    /// Medium, Low, Lowest). An empty map and `set_priority = false` leave priority unset.
    #[serde(default)]
    pub priorities: BTreeMap<String, String>,
    /// Whether to set the priority at all (some projects have no priority field on the screen).
    #[serde(default = "yes")]
    pub set_priority: bool,
    /// Transition names tried, in order, when the incident resolves.
    #[serde(default = "default_resolve")]
    pub resolve_transitions: Vec<String>,
    /// Transition names tried, in order, when a resolved incident is reopened.
    #[serde(default = "default_reopen")]
    pub reopen_transitions: Vec<String>,
    /// Per service: another project, and extra fields (custom fields) set on create.
    #[serde(default)]
    pub services: BTreeMap<String, JiraService>,
}

/// `[integrations.jira.services.<id>]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JiraService {
    /// Project key for this service's tickets.
    #[serde(default)]
    pub project: Option<String>,
    /// Fields set as given on create, e.g. `customfield_10010 = "checkout"` or
    /// `components = [{ name = "Checkout" }]`.
    #[serde(default)]
    pub fields: BTreeMap<String, toml::Value>,
}

fn default_issue_type() -> String {
    "Task".into()
}
fn default_label_prefix() -> String {
    "redbutton".into()
}
fn default_resolve() -> Vec<String> {
    vec![
        "Done".into(),
        "Resolve Issue".into(),
        "Resolved".into(),
        "Close Issue".into(),
    ]
}
fn default_reopen() -> Vec<String> {
    vec![
        "Reopen Issue".into(),
        "Reopen".into(),
        "To Do".into(),
        "In Progress".into(),
    ]
}
fn yes() -> bool {
    true
}

impl JiraSettings {
    /// Checks the section.
    pub fn validate(&self, key: &str, settings: &Settings) -> Result<(), ConfigError> {
        super::common::base_url(&format!("{key}.base_url"), &self.base_url)?;
        check_env_name(&format!("{key}.token_env"), &self.token_env)?;
        match (self.auth, &self.email) {
            (JiraAuth::Basic, None) => {
                return Err(bad(format!("{key}.email"), "basic auth needs the account email"));
            }
            (JiraAuth::Basic, Some(e)) => check_emails(&format!("{key}.email"), std::slice::from_ref(e))?,
            (JiraAuth::Bearer, _) => {}
        }
        check_project(&format!("{key}.project"), &self.project)?;
        if self.issue_type.trim().is_empty() {
            return Err(bad(format!("{key}.issue_type"), "must not be empty"));
        }
        check_label(&format!("{key}.label_prefix"), &self.label_prefix)?;
        for l in &self.labels {
            check_label(&format!("{key}.labels"), l)?;
        }
        for sev in self.priorities.keys() {
            super::common::check_severity(&format!("{key}.priorities"), sev, settings)?;
        }
        for (id, s) in &self.services {
            super::common::check_service(&format!("{key}.services.{id}"), id, settings)?;
            if let Some(p) = &s.project {
                check_project(&format!("{key}.services.{id}.project"), p)?;
            }
            for f in s.fields.keys() {
                if ["summary", "description", "project", "issuetype", "labels", "priority"].contains(&f.as_str()) {
                    return Err(bad(
                        format!("{key}.services.{id}.fields.{f}"),
                        "is set by Big Red Button; remove it here",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The secrets it names.
    pub fn secret_envs(&self) -> Vec<(String, String)> {
        vec![("integrations.jira.token_env".to_string(), self.token_env.clone())]
    }
}

fn check_project(key: &str, p: &str) -> Result<(), ConfigError> {
    if p.is_empty() || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(bad(key, format!("\u{201c}{p}\u{201d} is not a project key like OPS")));
    }
    Ok(())
}

fn check_label(key: &str, l: &str) -> Result<(), ConfigError> {
    if l.is_empty() || l.len() > 255 || l.chars().any(char::is_whitespace) {
        return Err(bad(key, format!("\u{201c}{l}\u{201d} is not a Jira label (no spaces)")));
    }
    Ok(())
}
