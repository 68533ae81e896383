//! Configuration: one TOML file, every key optional, unknown keys refused by name.
//!
//! Secrets never live in the file: it names environment variables (`password_env`,
//! `session_secret_env`) and the values are read from the environment when the app starts.
//! Precedence for the two deployment knobs: command-line flag, then environment
//! (`REDBUTTON_LISTEN`, `DATABASE_URL`), then the file, then the default.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

use crate::domain::{EventKind, UNKNOWN_SEVERITY, is_plausible_email};

pub mod alertmanager;
pub mod roles;
pub use alertmanager::AlertmanagerSettings;
pub use roles::{Role, RoleSetting};
pub mod insights;
pub use insights::InsightsSettings;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// HTTP server.
    pub server: ServerSettings,
    /// Database.
    pub database: DatabaseSettings,
    /// Who is who.
    pub auth: AuthSettings,
    /// Severity levels, most severe first.
    pub severities: Vec<SeverityLevel>,
    /// Services incidents can affect.
    pub services: Vec<Service>,
    /// Which notifiers an event reaches.
    pub routing: Vec<RoutingRule>,
    /// Delivery worker.
    pub outbox: OutboxSettings,
    /// Reminders when an incident lacks a lead, an update or a resolution.
    pub nudges: NudgeSettings,
    /// External systems.
    pub integrations: Integrations,
    /// Meeting links for incident calls.
    pub conference: ConferenceSettings,
    /// Incident roles besides the built-in lead (see [`roles`]); none configured means a comms
    /// lead and a scribe.
    pub roles: Vec<RoleSetting>,
    /// Where drills go, and the scenarios the dashboard's "Start a drill" offers.
    pub drills: Option<DrillSettings>,
    /// Who may scrape `/metrics` without a token.
    pub metrics: MetricsSettings,
    /// The Prometheus Alertmanager receiver; off (404) without this section.
    pub alertmanager: Option<AlertmanagerSettings>,
    /// Working hours and high severity for the insights page (see [`insights`]).
    pub insights: InsightsSettings,
    /// Values for secret variables supplied in code (tests, embedders); looked up before the
    /// process environment. Never read from the file.
    #[serde(skip)]
    pub secret_values: SecretValues,
}

/// Secret values supplied in code, by variable name. Its `Debug` shows names only.
#[derive(Clone, Default)]
pub struct SecretValues(std::collections::BTreeMap<String, String>);

impl SecretValues {
    /// Sets a value.
    pub fn insert(&mut self, var: String, value: String) {
        self.0.insert(var, value);
    }

    /// Reads a value.
    pub fn get(&self, var: &str) -> Option<&String> {
        self.0.get(var)
    }
}

impl std::fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.keys().map(|k| format!("{k}=<redacted>")))
            .finish()
    }
}

/// `[conference]`: the call responders join.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ConferenceSettings {
    /// The bridge for incidents whose services name none.
    pub default_url: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            server: ServerSettings::default(),
            database: DatabaseSettings::default(),
            auth: AuthSettings::default(),
            severities: default_severities(),
            services: Vec::new(),
            routing: Vec::new(),
            outbox: OutboxSettings::default(),
            nudges: NudgeSettings::default(),
            integrations: Integrations::default(),
            conference: ConferenceSettings::default(),
            roles: Vec::new(),
            drills: None,
            metrics: MetricsSettings::default(),
            alertmanager: None,
            insights: InsightsSettings::default(),
            secret_values: Default::default(),
        }
    }
}

/// `[server]`
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on; default `127.0.0.1:8080`.
    pub listen: Option<String>,
    /// Public URL of this server, used for links in notifications; default `http://<listen>`.
    pub base_url: Option<String>,
}

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` or `postgres://…`; `DATABASE_URL` wins. Default `sqlite://data/redbutton.db`.
    pub url: Option<String>,
    /// Pool size.
    pub max_connections: u32,
    /// How long SQLite waits for a lock held by another writer, in milliseconds.
    pub sqlite_busy_timeout_ms: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 10,
            sqlite_busy_timeout_ms: 5000,
        }
    }
}

/// How people are identified.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// People name themselves; loopback only, with a banner on every page. For trying the tool
    /// out on one machine.
    #[default]
    Dev,
    /// OpenID Connect sign-in (`[auth.oidc]`): Okta, Google, Entra ID, Keycloak, Authentik…
    Oidc,
    /// Identity from headers set by an authenticating proxy (`[auth.proxy]`).
    Proxy,
}

impl AuthMode {
    /// The name used in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Dev => "dev",
            AuthMode::Oidc => "oidc",
            AuthMode::Proxy => "proxy",
        }
    }
}

/// `[auth]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Sign-in mode.
    pub mode: AuthMode,
    /// Environment variable holding the session signing key (32+ characters). When unset, a key is
    /// generated once and stored in the database, so sessions survive restarts.
    pub session_secret_env: Option<String>,
    /// How long a session lasts, in hours.
    pub session_hours: u32,
    /// Dev mode only: allow a non-loopback listen address. Only for a container whose port is
    /// published on the host's loopback interface (as docker-compose.yml does); never on a
    /// network other people can reach.
    pub dev_allow_non_loopback: bool,
    /// People who are admins (manage API tokens), by email.
    pub admin_emails: Vec<String>,
    /// Groups (from the provider's groups claim or the proxy's groups header) whose members are
    /// admins.
    pub admin_groups: Vec<String>,
    /// When set, only members of these groups may declare and work incidents; everyone else who
    /// signs in is a viewer. Empty (the default): everyone signed in is a responder, because
    /// anyone who sees impact must be able to declare.
    pub responder_groups: Vec<String>,
    /// People who may only read, by email.
    pub viewer_emails: Vec<String>,
    /// OpenID Connect provider, for `mode = "oidc"`.
    pub oidc: Option<crate::auth::oidc::OidcSettings>,
    /// Authenticating proxy, for `mode = "proxy"`.
    pub proxy: Option<ProxySettings>,
    /// Sign-in attempts allowed per client address per minute (OpenID Connect start and
    /// callback, development sign-in).
    pub sign_in_per_minute: u32,
    /// API requests allowed per token (or, before a token is known, per client address) per
    /// minute.
    pub api_per_minute: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            mode: AuthMode::Dev,
            session_secret_env: None,
            session_hours: 12,
            dev_allow_non_loopback: false,
            admin_emails: Vec::new(),
            admin_groups: Vec::new(),
            responder_groups: Vec::new(),
            viewer_emails: Vec::new(),
            oidc: None,
            proxy: None,
            sign_in_per_minute: 30,
            api_per_minute: 600,
        }
    }
}

/// `[auth.proxy]`: which proxy to believe, and the headers it sets (oauth2-proxy's by default).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxySettings {
    /// Addresses or networks the proxy connects from (`127.0.0.1`, `10.0.0.0/8`). Required:
    /// headers from any other address are ignored.
    pub trusted_proxies: Vec<String>,
    /// Header with the person's email.
    pub email_header: String,
    /// Header with their display name (falls back to the user header, then the email).
    pub name_header: String,
    /// Header with their user name.
    pub user_header: String,
    /// Header with their groups, comma-separated.
    pub groups_header: String,
}

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            trusted_proxies: Vec::new(),
            email_header: "X-Forwarded-Email".into(),
            name_header: "X-Forwarded-Preferred-Username".into(),
            user_header: "X-Forwarded-User".into(),
            groups_header: "X-Forwarded-Groups".into(),
        }
    }
}

impl ProxySettings {
    /// The trusted networks, parsed (validated at start).
    pub fn trusted(&self) -> Vec<crate::auth::proxy::TrustedNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|raw| crate::auth::proxy::TrustedNet::parse(raw).ok())
            .collect()
    }
}

/// One `[[severities]]` level.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SeverityLevel {
    /// Stored id, e.g. `SEV1`.
    pub id: String,
    /// Short label, e.g. `Major`.
    #[serde(default)]
    pub label: String,
    /// One line saying when to pick this level.
    pub criterion: String,
    /// How often stakeholders expect a status update at this level, in minutes: the default
    /// "next update by" and the no-update nudge. Falls back to `[nudges] no_update_minutes`.
    #[serde(default)]
    pub update_every_minutes: Option<u32>,
    /// Nudge when nobody leads the incident this many minutes after it was declared (`0`: never).
    /// Falls back to `[nudges] no_lead_minutes`.
    #[serde(default)]
    pub no_lead_minutes: Option<u32>,
    /// Nudge when the incident has been mitigated but not resolved for this many hours (`0`:
    /// never). Falls back to `[nudges] mitigated_hours`.
    #[serde(default)]
    pub mitigated_hours: Option<u32>,
}

/// The default levels, SEV0 (worst) to SEV4.
pub fn default_severities() -> Vec<SeverityLevel> {
    [
        (
            "SEV0",
            "Critical",
            "Whole product down or data loss or a security breach; everyone affected.",
        ),
        (
            "SEV1",
            "Major",
            "A core feature is broken for many customers, or revenue is being lost now.",
        ),
        (
            "SEV2",
            "Significant",
            "A feature is degraded or broken for some customers; a workaround may exist.",
        ),
        (
            "SEV3",
            "Minor",
            "Limited impact: a small group of customers or an internal tool is affected.",
        ),
        (
            "SEV4",
            "Low",
            "No customer impact yet, but something needs a coordinated look.",
        ),
    ]
    .into_iter()
    .zip([(5, 15, 2), (10, 30, 4), (15, 60, 8), (30, 120, 24), (60, 240, 48)])
    .map(|((id, label, criterion), (lead, update, mitigated))| SeverityLevel {
        id: id.into(),
        label: label.into(),
        criterion: criterion.into(),
        update_every_minutes: Some(update),
        no_lead_minutes: Some(lead),
        mitigated_hours: Some(mitigated),
    })
    .collect()
}

/// `[nudges]`: reminders posted to the incident channel when something is overdue. The minute and
/// hour values are the defaults for severities that do not set their own; `0` turns one off.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NudgeSettings {
    /// Whether this process looks for overdue incidents at all.
    pub enabled: bool,
    /// How often to look, in seconds.
    pub check_every_seconds: u64,
    /// Also email each nudge to the incident's lead (needs `[integrations.email]`).
    pub email_lead: bool,
    /// Nobody leads the incident this many minutes after it was declared.
    pub no_lead_minutes: u32,
    /// No status update for this many minutes (while the incident is not yet mitigated).
    pub no_update_minutes: u32,
    /// Mitigated but not resolved for this many hours.
    pub mitigated_hours: u32,
}

impl Default for NudgeSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            check_every_seconds: 30,
            email_lead: false,
            no_lead_minutes: 15,
            no_update_minutes: 60,
            mitigated_hours: 8,
        }
    }
}

/// `[metrics]`: the Prometheus endpoint `/metrics`. It always answers a bearer API token with
/// the `metrics:read` scope; `allow_from` lists networks (addresses or CIDRs) whose scrapers need
/// no token. Empty by default: loopback is not trusted either, because a reverse proxy on the same
/// host would make every visitor look local.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Networks allowed to scrape without a token, e.g. `["10.0.0.0/8"]`.
    pub allow_from: Vec<String>,
}

impl MetricsSettings {
    /// The allowed networks, parsed (validated at start).
    pub fn networks(&self) -> Vec<crate::auth::proxy::TrustedNet> {
        self.allow_from
            .iter()
            .filter_map(|raw| crate::auth::proxy::TrustedNet::parse(raw).ok())
            .collect()
    }
}

/// The nudge and update periods that apply to one severity, in minutes (`None`: off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    /// How often an update is expected, and the no-update nudge.
    pub update_minutes: Option<u32>,
    /// The no-lead nudge.
    pub no_lead_minutes: Option<u32>,
    /// The mitigated-not-resolved nudge, in minutes.
    pub mitigated_minutes: Option<u32>,
}

impl Settings {
    /// The cadence for a severity id (the `[nudges]` defaults for `unknown` and unknown ids).
    pub fn cadence(&self, severity: &str) -> Cadence {
        let level = self.severities.iter().find(|s| s.id == severity);
        let n = &self.nudges;
        let on = |v: u32| (v > 0).then_some(v);
        Cadence {
            update_minutes: on(level
                .and_then(|l| l.update_every_minutes)
                .unwrap_or(n.no_update_minutes)),
            no_lead_minutes: on(level.and_then(|l| l.no_lead_minutes).unwrap_or(n.no_lead_minutes)),
            mitigated_minutes: on(level
                .and_then(|l| l.mitigated_hours)
                .unwrap_or(n.mitigated_hours)
                .saturating_mul(60)),
        }
    }
}

/// One `[[services]]` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Stored id, e.g. `checkout`.
    pub id: String,
    /// Display name; defaults to the id.
    #[serde(default)]
    pub name: String,
    /// What the service is.
    #[serde(default)]
    pub description: String,
    /// Owners' emails.
    #[serde(default)]
    pub owners: Vec<String>,
    /// Lists that hear about incidents on this service when a rule routes email.
    #[serde(default)]
    pub email_to: Vec<String>,
    /// People (emails) brought into the incident channel for this service's incidents.
    #[serde(default)]
    pub responders: Vec<String>,
    /// This service's conference bridge, used instead of `conference.default_url`.
    #[serde(default)]
    pub conference_url: Option<String>,
}

impl Service {
    /// The name to show.
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() { &self.id } else { &self.name }
    }
}

/// One `[[routing]]` rule: events matching every listed condition go to `notifiers`.
/// An empty list means "any". With no rules at all, every event except notes goes to every
/// configured notifier.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoutingRule {
    /// A name for messages and the settings page.
    #[serde(default)]
    pub name: String,
    /// Events this rule matches; default: all except `note_added`.
    #[serde(default = "default_rule_events")]
    pub events: Vec<String>,
    /// Severities it matches; empty = all.
    #[serde(default)]
    pub severities: Vec<String>,
    /// Services it matches (an incident matches if it affects any of them); empty = all.
    #[serde(default)]
    pub services: Vec<String>,
    /// Whether drills match this rule.
    #[serde(default = "yes")]
    pub drills: bool,
    /// Notifier names, e.g. `["email"]`.
    pub notifiers: Vec<String>,
    /// Extra email recipients when this rule routes email.
    #[serde(default)]
    pub email_to: Vec<String>,
    /// Also email the affected services' `email_to` lists.
    #[serde(default = "yes")]
    pub service_lists: bool,
}

fn yes() -> bool {
    true
}

/// `[drills]`: the drill targets and scenarios. When this section is present, a drill reaches
/// exactly the notifiers listed here (never a pager) and its email goes only to `email_to`; the
/// `[[routing]]` rules are not consulted for drills. Without it, drills follow the rules that
/// have `drills = true` (pagers still refuse them).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DrillSettings {
    /// Notifier names that receive drills, e.g. `["slack", "email"]`. Pagers are refused.
    #[serde(default)]
    pub notifiers: Vec<String>,
    /// The only recipients of drill email.
    #[serde(default)]
    pub email_to: Vec<String>,
    /// The events drill targets receive; default: all but notes.
    #[serde(default = "default_rule_events")]
    pub events: Vec<String>,
    /// Ready-made drills for the dashboard's "Start a drill" button.
    #[serde(default)]
    pub scenarios: Vec<DrillScenario>,
}

/// `[[drills.scenarios]]`: one ready-made drill.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DrillScenario {
    /// Stable id, chosen on the dashboard form.
    pub id: String,
    /// The drill incident's title.
    pub title: String,
    /// Its severity (a configured id, or `unknown`).
    #[serde(default = "unknown_severity")]
    pub severity: String,
    /// Affected services.
    #[serde(default)]
    pub services: Vec<String>,
    /// What the responders are to imagine, in Markdown.
    #[serde(default)]
    pub summary: String,
}

fn unknown_severity() -> String {
    UNKNOWN_SEVERITY.to_string()
}

/// The events a rule matches when it lists none: all but notes, which are too chatty to send, and
/// nudges, which never go through rules.
pub fn default_rule_events() -> Vec<String> {
    EventKind::ALL
        .iter()
        .filter(|k| !matches!(k, EventKind::NoteAdded | EventKind::Nudge))
        .map(|k| k.as_str().to_string())
        .collect()
}

/// `[outbox]`: the delivery worker. Durations are in milliseconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxSettings {
    /// Attempts before a delivery is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay; doubles each attempt.
    pub backoff_base_ms: u64,
    /// Longest retry delay.
    pub backoff_max_ms: u64,
    /// How long a worker holds a claimed delivery before another may take it over.
    pub lease_ms: u64,
    /// Time limit for one delivery attempt (every notifier call is bounded by it).
    pub delivery_timeout_ms: u64,
    /// Deliveries in flight at once; one integration gets at most half of them (rounded up), so
    /// a vendor that hangs cannot hold up the others.
    pub concurrency: u32,
    /// Fallback poll interval (the worker is also woken on commit).
    pub poll_interval_ms: u64,
    /// On shutdown, how long to let in-flight deliveries finish.
    pub shutdown_grace_ms: u64,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            backoff_base_ms: 2_000,
            backoff_max_ms: 600_000,
            lease_ms: 120_000,
            delivery_timeout_ms: 30_000,
            concurrency: 16,
            poll_interval_ms: 1_000,
            shutdown_grace_ms: 10_000,
        }
    }
}

/// `[integrations]`
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Integrations {
    /// Email over SMTP; off when absent.
    pub email: Option<EmailSettings>,
    /// Slack (Web API, bot token); off when absent.
    pub slack: Option<crate::notifiers::slack::SlackSettings>,
    /// Jira Cloud or Server/Data Center; off when absent.
    pub jira: Option<crate::notifiers::jira::JiraSettings>,
    /// PagerDuty Events API v2; off when absent.
    pub pagerduty: Option<crate::notifiers::pagerduty::PagerDutySettings>,
    /// Opsgenie Alert API; off when absent.
    pub opsgenie: Option<crate::notifiers::opsgenie::OpsgenieSettings>,
    /// Outgoing signed webhooks, each its own notifier named `webhook:<name>`.
    pub webhooks: Vec<crate::notifiers::webhook::WebhookSettings>,
    /// Microsoft Teams channels (Workflows webhooks); off when absent.
    pub teams: Option<crate::notifiers::teams::TeamsSettings>,
}

/// SMTP transport security.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (a local relay or mail catcher only).
    None,
    /// Upgrade with STARTTLS (required).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

/// `[integrations.email]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    /// SMTP server host.
    pub host: String,
    /// Port; default 25 with `tls = "none"`, 587 with starttls, 465 with tls.
    #[serde(default)]
    pub port: Option<u16>,
    /// Transport security.
    #[serde(default)]
    pub tls: SmtpTls,
    /// SMTP user name, if the server needs one.
    #[serde(default)]
    pub username: Option<String>,
    /// Environment variable holding the SMTP password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// The From header.
    #[serde(default = "default_from")]
    pub from: String,
    /// Recipients for every routed email, besides rule and service lists.
    #[serde(default)]
    pub always_to: Vec<String>,
}

fn default_from() -> String {
    "Big Red Button <redbutton@localhost>".into()
}

impl EmailSettings {
    /// The effective port.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        })
    }
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// The offending key, e.g. `routing[1].notifiers`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// Refuses anything but an absolute http(s) URL with a host.
pub(crate) fn check_http_url(key: &str, raw: &str) -> Result<(), ConfigError> {
    match url::Url::parse(raw) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => Ok(()),
        _ => Err(bad(key, format!("\u{201c}{raw}\u{201d} is not an http(s) URL"))),
    }
}

impl Settings {
    /// The conference bridge for an incident on `services`: the first service that has one, or
    /// the default.
    pub fn bridge_for(&self, services: &[String]) -> Option<String> {
        self.services
            .iter()
            .filter(|s| services.contains(&s.id))
            .find_map(|s| s.conference_url.clone())
            .or_else(|| self.conference.default_url.clone())
    }
}

pub(crate) fn bad(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        message: message.into(),
    }
}

/// The notifier kinds this build knows.
pub const BUILTIN_NOTIFIERS: &[&str] = &["email", "slack", "jira", "pagerduty", "opsgenie", "teams"];

impl Settings {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Parses and validates TOML text (notifier names checked against the built-in ones).
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let settings: Settings = toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))?;
        settings.validate(&[])?;
        Ok(settings)
    }

    /// Names of the notifiers that are configured (enabled).
    pub fn enabled_notifiers(&self) -> Vec<String> {
        let i = &self.integrations;
        let mut v: Vec<String> = [
            ("email", i.email.is_some()),
            ("slack", i.slack.is_some()),
            ("jira", i.jira.is_some()),
            ("pagerduty", i.pagerduty.is_some()),
            ("opsgenie", i.opsgenie.is_some()),
            ("teams", i.teams.is_some()),
        ]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| n.to_string())
        .collect();
        v.extend(i.webhooks.iter().map(|w| w.notifier_name()));
        v
    }

    /// The value of a secret variable (trimmed, non-empty), from `secret_values` or the
    /// environment. The one way secrets are read.
    pub fn secret(&self, var: &str) -> Option<String> {
        self.secret_values
            .get(var)
            .cloned()
            .or_else(|| std::env::var(var).ok())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// Every secret the configuration names: (config key, environment variable).
    pub fn secret_envs(&self) -> Vec<(String, String)> {
        let i = &self.integrations;
        let mut v = Vec::new();
        if let Some(email) = &i.email
            && let Some(var) = &email.password_env
        {
            v.push(("integrations.email.password_env".to_string(), var.clone()));
        }
        if let Some(x) = &i.slack {
            v.extend(x.secret_envs());
        }
        if let Some(x) = &i.jira {
            v.extend(x.secret_envs());
        }
        if let Some(x) = &i.pagerduty {
            v.extend(x.secret_envs());
        }
        if let Some(x) = &i.opsgenie {
            v.extend(x.secret_envs());
        }
        for (n, x) in i.webhooks.iter().enumerate() {
            v.extend(x.secret_envs(n));
        }
        if let Some(x) = &i.teams {
            v.extend(x.secret_envs());
        }
        if self.auth.mode == AuthMode::Oidc
            && let Some(var) = self.auth.oidc.as_ref().and_then(|o| o.client_secret_env.clone())
        {
            v.push(("auth.oidc.client_secret_env".to_string(), var));
        }
        v
    }

    /// Checks cross-field rules. `extra_notifiers` are notifier names registered in code
    /// (tests, embedders) that routing may also name.
    pub fn validate(&self, extra_notifiers: &[&str]) -> Result<(), ConfigError> {
        if let Some(listen) = &self.server.listen {
            listen.parse::<std::net::SocketAddr>().map_err(|_| {
                bad(
                    "server.listen",
                    format!("\u{201c}{listen}\u{201d} is not an address like 127.0.0.1:8080"),
                )
            })?;
        }
        if let Some(url) = &self.server.base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(bad("server.base_url", "must start with http:// or https://"));
        }
        if let Some(url) = &self.database.url {
            crate::db::DbUrl::parse(url).map_err(|e| bad("database.url", e))?;
        }
        if self.database.max_connections == 0 {
            return Err(bad("database.max_connections", "must be at least 1"));
        }
        if let Some(var) = &self.auth.session_secret_env {
            check_env_name("auth.session_secret_env", var)?;
        }
        if self.auth.session_hours == 0 || self.auth.session_hours > 24 * 90 {
            return Err(bad("auth.session_hours", "must be between 1 and 2160"));
        }
        self.validate_auth()?;
        if self.nudges.check_every_seconds == 0 || self.nudges.check_every_seconds > 3600 {
            return Err(bad("nudges.check_every_seconds", "must be between 1 and 3600"));
        }
        for raw in &self.metrics.allow_from {
            crate::auth::proxy::TrustedNet::parse(raw).map_err(|e| bad("metrics.allow_from", &e))?;
        }
        if self.nudges.email_lead && self.integrations.email.is_none() {
            return Err(bad(
                "nudges.email_lead",
                "emailing nudges to the lead needs [integrations.email]",
            ));
        }

        let mut seen = HashSet::new();
        if self.severities.is_empty() {
            return Err(bad("severities", "at least one severity level is needed"));
        }
        for (i, s) in self.severities.iter().enumerate() {
            check_id(&format!("severities[{i}].id"), &s.id)?;
            if s.id == UNKNOWN_SEVERITY {
                return Err(bad(
                    format!("severities[{i}].id"),
                    "\u{201c}unknown\u{201d} is built in; do not configure it",
                ));
            }
            if !seen.insert(s.id.as_str()) {
                return Err(bad(
                    format!("severities[{i}].id"),
                    format!("duplicate severity {}", s.id),
                ));
            }
            if s.criterion.trim().is_empty() {
                return Err(bad(
                    format!("severities[{i}].criterion"),
                    "say in one line when to choose this level",
                ));
            }
        }
        let mut seen = HashSet::new();
        for (i, s) in self.services.iter().enumerate() {
            check_id(&format!("services[{i}].id"), &s.id)?;
            if !seen.insert(s.id.as_str()) {
                return Err(bad(format!("services[{i}].id"), format!("duplicate service {}", s.id)));
            }
            check_emails(&format!("services[{i}].owners"), &s.owners)?;
            check_emails(&format!("services[{i}].email_to"), &s.email_to)?;
            check_emails(&format!("services[{i}].responders"), &s.responders)?;
            if let Some(url) = &s.conference_url {
                check_http_url(&format!("services[{i}].conference_url"), url)?;
            }
        }

        if let Some(url) = &self.conference.default_url {
            check_http_url("conference.default_url", url)?;
        }
        roles::validate(self)?;
        insights::validate(self)?;

        let configured = self.enabled_notifiers();
        let known: Vec<&str> = BUILTIN_NOTIFIERS
            .iter()
            .copied()
            .chain(
                configured
                    .iter()
                    .map(String::as_str)
                    .filter(|n| n.starts_with("webhook:")),
            )
            .chain(extra_notifiers.iter().copied())
            .collect();
        let enabled: Vec<&str> = configured
            .iter()
            .map(String::as_str)
            .chain(extra_notifiers.iter().copied())
            .collect();
        for (i, r) in self.routing.iter().enumerate() {
            let key = |f: &str| format!("routing[{i}].{f}");
            if r.notifiers.is_empty() {
                return Err(bad(key("notifiers"), "name at least one notifier, e.g. [\"email\"]"));
            }
            for n in &r.notifiers {
                if !known.contains(&n.as_str()) {
                    return Err(bad(
                        key("notifiers"),
                        format!("unknown notifier \u{201c}{n}\u{201d}; known: {}", known.join(", ")),
                    ));
                }
                if !enabled.contains(&n.as_str()) {
                    return Err(bad(
                        key("notifiers"),
                        format!("notifier \u{201c}{n}\u{201d} is not configured: add [integrations.{n}]"),
                    ));
                }
            }
            for e in &r.events {
                if EventKind::parse(e) == Some(EventKind::Nudge) {
                    return Err(bad(
                        key("events"),
                        "nudges are not routed by rules: they go to the incident's Slack channel, and to the lead by email with [nudges] email_lead = true",
                    ));
                }
                if EventKind::parse(e).is_none() {
                    let all: Vec<_> = EventKind::ALL
                        .iter()
                        .filter(|k| **k != EventKind::Nudge)
                        .map(|k| k.as_str())
                        .collect();
                    return Err(bad(
                        key("events"),
                        format!("unknown event \u{201c}{e}\u{201d}; known: {}", all.join(", ")),
                    ));
                }
            }
            for s in &r.severities {
                if s != UNKNOWN_SEVERITY && !self.severities.iter().any(|l| &l.id == s) {
                    return Err(bad(key("severities"), format!("unknown severity \u{201c}{s}\u{201d}")));
                }
            }
            for s in &r.services {
                if !self.services.iter().any(|l| &l.id == s) {
                    return Err(bad(key("services"), format!("unknown service \u{201c}{s}\u{201d}")));
                }
            }
            check_emails(&key("email_to"), &r.email_to)?;
        }

        if let Some(d) = &self.drills {
            self.validate_drills(d, &known, &enabled)?;
        }
        if let Some(a) = &self.alertmanager {
            a.validate(self)?;
        }

        let o = &self.outbox;
        if o.max_attempts == 0 {
            return Err(bad("outbox.max_attempts", "must be at least 1"));
        }
        if o.concurrency == 0 {
            return Err(bad("outbox.concurrency", "must be at least 1"));
        }
        if o.backoff_base_ms == 0 || o.backoff_max_ms < o.backoff_base_ms {
            return Err(bad(
                "outbox.backoff_max_ms",
                "must be at least outbox.backoff_base_ms, which must be positive",
            ));
        }
        if o.poll_interval_ms == 0 {
            return Err(bad("outbox.poll_interval_ms", "must be positive"));
        }
        if o.lease_ms < 2 * o.delivery_timeout_ms {
            return Err(bad(
                "outbox.lease_ms",
                "must be at least twice outbox.delivery_timeout_ms, or a slow delivery could be taken over and sent twice",
            ));
        }

        if let Some(email) = &self.integrations.email {
            if email.host.trim().is_empty() {
                return Err(bad("integrations.email.host", "must not be empty"));
            }
            if email.from.parse::<lettre::message::Mailbox>().is_err() {
                return Err(bad(
                    "integrations.email.from",
                    "must be an address like Big Red Button <redbutton@example.com>",
                ));
            }
            if let Some(var) = &email.password_env {
                check_env_name("integrations.email.password_env", var)?;
                if email.username.is_none() {
                    return Err(bad(
                        "integrations.email.username",
                        "is required when password_env is set",
                    ));
                }
            }
            check_emails("integrations.email.always_to", &email.always_to)?;
        }
        if let Some(x) = &self.integrations.slack {
            x.validate("integrations.slack", self)?;
        }
        if let Some(x) = &self.integrations.jira {
            x.validate("integrations.jira", self)?;
        }
        if let Some(x) = &self.integrations.pagerduty {
            x.validate("integrations.pagerduty", self)?;
        }
        if let Some(x) = &self.integrations.opsgenie {
            x.validate("integrations.opsgenie", self)?;
        }
        let mut seen = HashSet::new();
        for (n, x) in self.integrations.webhooks.iter().enumerate() {
            x.validate(&format!("integrations.webhooks[{n}]"), self)?;
            if !seen.insert(x.name.as_str()) {
                return Err(bad(
                    format!("integrations.webhooks[{n}].name"),
                    format!("duplicate webhook name {}", x.name),
                ));
            }
        }
        if let Some(x) = &self.integrations.teams {
            x.validate("integrations.teams", self)?;
        }
        Ok(())
    }

    fn validate_drills(&self, d: &DrillSettings, known: &[&str], enabled: &[&str]) -> Result<(), ConfigError> {
        for n in &d.notifiers {
            if matches!(n.as_str(), "pagerduty" | "opsgenie") {
                return Err(bad(
                    "drills.notifiers",
                    format!("\u{201c}{n}\u{201d} is a pager, and drills never page anyone"),
                ));
            }
            if !known.contains(&n.as_str()) {
                return Err(bad(
                    "drills.notifiers",
                    format!("unknown notifier \u{201c}{n}\u{201d}; known: {}", known.join(", ")),
                ));
            }
            if !enabled.contains(&n.as_str()) {
                return Err(bad(
                    "drills.notifiers",
                    format!("notifier \u{201c}{n}\u{201d} is not configured: add [integrations.{n}]"),
                ));
            }
        }
        check_emails("drills.email_to", &d.email_to)?;
        if d.notifiers.iter().any(|n| n == "email") && d.email_to.is_empty() {
            return Err(bad(
                "drills.email_to",
                "name who receives drill email (drills never go to the usual lists)",
            ));
        }
        for e in &d.events {
            if EventKind::parse(e).is_none() {
                let all: Vec<_> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                return Err(bad(
                    "drills.events",
                    format!("unknown event \u{201c}{e}\u{201d}; known: {}", all.join(", ")),
                ));
            }
        }
        let mut seen = HashSet::new();
        for (i, s) in d.scenarios.iter().enumerate() {
            let key = |f: &str| format!("drills.scenarios[{i}].{f}");
            check_id(&key("id"), &s.id)?;
            if !seen.insert(s.id.as_str()) {
                return Err(bad(key("id"), format!("duplicate scenario {}", s.id)));
            }
            crate::domain::Title::parse(&s.title).map_err(|e| bad(key("title"), e))?;
            if s.severity != UNKNOWN_SEVERITY && !self.severities.iter().any(|l| l.id == s.severity) {
                return Err(bad(
                    key("severity"),
                    format!("unknown severity \u{201c}{}\u{201d}", s.severity),
                ));
            }
            for svc in &s.services {
                if !self.services.iter().any(|l| &l.id == svc) {
                    return Err(bad(key("services"), format!("unknown service \u{201c}{svc}\u{201d}")));
                }
            }
            if s.summary.chars().count() > crate::domain::declaration::SUMMARY_MAX_CHARS {
                return Err(bad(key("summary"), "can be at most 20,000 characters"));
            }
        }
        Ok(())
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        let a = &self.auth;
        for (key, list) in [
            ("auth.admin_emails", &a.admin_emails),
            ("auth.viewer_emails", &a.viewer_emails),
        ] {
            if let Some(e) = list.iter().find(|e| !is_plausible_email(e)) {
                return Err(bad(key, format!("\u{201c}{e}\u{201d} is not an email address")));
            }
        }
        if a.sign_in_per_minute == 0 {
            return Err(bad("auth.sign_in_per_minute", "must be at least 1"));
        }
        if a.api_per_minute == 0 {
            return Err(bad("auth.api_per_minute", "must be at least 1"));
        }
        match a.mode {
            AuthMode::Dev => {}
            AuthMode::Oidc => {
                let oidc = a
                    .oidc
                    .as_ref()
                    .ok_or_else(|| bad("auth.oidc", "mode = \"oidc\" needs an [auth.oidc] section"))?;
                oidc.validate().map_err(|e| {
                    let (key, message) = e.split_once(": ").unwrap_or(("auth.oidc", e.as_str()));
                    bad(key, message)
                })?;
                if let Some(var) = &oidc.client_secret_env {
                    check_env_name("auth.oidc.client_secret_env", var)?;
                }
            }
            AuthMode::Proxy => {
                let proxy = a
                    .proxy
                    .as_ref()
                    .ok_or_else(|| bad("auth.proxy", "mode = \"proxy\" needs an [auth.proxy] section"))?;
                if proxy.trusted_proxies.is_empty() {
                    return Err(bad(
                        "auth.proxy.trusted_proxies",
                        "name the addresses your proxy connects from; headers from anywhere else are ignored",
                    ));
                }
                for raw in &proxy.trusted_proxies {
                    crate::auth::proxy::TrustedNet::parse(raw).map_err(|e| bad("auth.proxy.trusted_proxies", e))?;
                }
                for (key, h) in [
                    ("auth.proxy.email_header", &proxy.email_header),
                    ("auth.proxy.name_header", &proxy.name_header),
                    ("auth.proxy.user_header", &proxy.user_header),
                    ("auth.proxy.groups_header", &proxy.groups_header),
                ] {
                    if actix_web::http::header::HeaderName::try_from(h.as_str()).is_err() {
                        return Err(bad(key, format!("\u{201c}{h}\u{201d} is not a header name")));
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks that every secret the file names is present in the environment.
    pub fn check_secrets(&self) -> Result<(), ConfigError> {
        for (key, var) in self.secret_envs() {
            if self.secret(&var).is_none() {
                return Err(bad(key, format!("environment variable {var} is not set")));
            }
        }
        if let Some(var) = &self.auth.session_secret_env {
            match std::env::var(var) {
                Ok(v) if v.len() >= 32 => {}
                Ok(_) => {
                    return Err(bad(
                        "auth.session_secret_env",
                        format!("{var} must hold at least 32 characters"),
                    ));
                }
                Err(_) => {
                    return Err(bad(
                        "auth.session_secret_env",
                        format!("environment variable {var} is not set"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Severity ids in order, without `unknown`.
    pub fn severity_ids(&self) -> Vec<&str> {
        self.severities.iter().map(|s| s.id.as_str()).collect()
    }

    /// The incident roles in force, the lead first (see [`roles::effective`]).
    pub fn roles(&self) -> Vec<Role> {
        roles::effective(&self.roles)
    }

    /// One role by id.
    pub fn role(&self, id: &str) -> Option<Role> {
        self.roles().into_iter().find(|r| r.id == id)
    }

    /// Service ids.
    pub fn service_ids(&self) -> Vec<&str> {
        self.services.iter().map(|s| s.id.as_str()).collect()
    }

    /// Sort rank of a severity: 0 is the most severe. `unknown` sorts right after the most
    /// severe level, because an unassessed incident may be a big one and deserves attention.
    pub fn severity_rank(&self, id: &str) -> usize {
        match self.severities.iter().position(|s| s.id == id) {
            Some(0) => 0,
            Some(i) => 2 * i,
            None => 1,
        }
    }
}

pub(crate) fn check_id(key: &str, id: &str) -> Result<(), ConfigError> {
    let ok = !id.is_empty()
        && id.len() <= 40
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(bad(key, "use 1-40 letters, digits, '-', '_' or '.'"))
    }
}

pub(crate) fn check_emails(key: &str, emails: &[String]) -> Result<(), ConfigError> {
    for e in emails {
        if !is_plausible_email(e) {
            return Err(bad(key, format!("\u{201c}{e}\u{201d} is not an email address")));
        }
    }
    Ok(())
}

pub(crate) fn check_env_name(key: &str, var: &str) -> Result<(), ConfigError> {
    let ok = !var.is_empty()
        && var
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(bad(
            key,
            "must name an environment variable (A-Z, 0-9, _), not hold the secret itself",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let s = Settings::parse("").unwrap();
        assert_eq!(s.severity_ids(), vec!["SEV0", "SEV1", "SEV2", "SEV3", "SEV4"]);
        assert!(s.enabled_notifiers().is_empty());
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Settings::parse("[server]\nlisten = \"127.0.0.1:1\"\nlistne = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("listne"), "{e}");
        let e = Settings::parse("[integrations.email]\nhost = \"x\"\nhots = \"y\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("hots"), "{e}");
    }

    #[test]
    fn routing_to_an_unconfigured_notifier_is_refused() {
        let e = Settings::parse("[[routing]]\nnotifiers = [\"email\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("routing[0].notifiers") && e.contains("not configured"),
            "{e}"
        );
        let e = Settings::parse("[[routing]]\nnotifiers = [\"fax\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown notifier"), "{e}");
    }

    #[test]
    fn drill_settings_are_checked_and_name_the_bad_key() {
        let ok = Settings::parse(
            "[integrations.email]\nhost = \"h\"\ntls = \"none\"\n[[services]]\nid = \"checkout\"\n\
             [drills]\nnotifiers = [\"email\"]\nemail_to = [\"drills@example.com\"]\n\
             [[drills.scenarios]]\nid = \"checkout-down\"\ntitle = \"Checkout is down\"\nseverity = \"SEV1\"\n\
             services = [\"checkout\"]\nsummary = \"Pretend the card processor times out.\"\n",
        )
        .unwrap();
        let d = ok.drills.unwrap();
        assert_eq!(d.scenarios[0].id, "checkout-down");
        assert_eq!(d.events, default_rule_events(), "all but notes (and nudges) by default");
        let email = "[integrations.email]\nhost = \"h\"\ntls = \"none\"\n";
        for (toml, key) in [
            (format!("{email}[drills]\nnotifiers = [\"email\"]\n"), "drills.email_to"),
            (
                "[drills]\nnotifiers = [\"pagerduty\"]\n".to_string(),
                "drills.notifiers",
            ),
            ("[drills]\nnotifiers = [\"slack\"]\n".to_string(), "drills.notifiers"),
            ("[drills]\nevents = [\"exploded\"]\n".to_string(), "drills.events"),
            ("[drills]\nemail_to = [\"nope\"]\n".to_string(), "drills.email_to"),
            ("[drills]\nnotifers = []\n".to_string(), "notifers"),
            (
                "[[drills.scenarios]]\nid = \"a b\"\ntitle = \"t\"\n".to_string(),
                "drills.scenarios[0].id",
            ),
            (
                "[[drills.scenarios]]\nid = \"a\"\ntitle = \" \"\n".to_string(),
                "drills.scenarios[0].title",
            ),
            (
                "[[drills.scenarios]]\nid = \"a\"\ntitle = \"t\"\nseverity = \"SEV9\"\n".to_string(),
                "drills.scenarios[0].severity",
            ),
            (
                "[[drills.scenarios]]\nid = \"a\"\ntitle = \"t\"\nservices = [\"nope\"]\n".to_string(),
                "drills.scenarios[0].services",
            ),
            (
                "[[drills.scenarios]]\nid = \"a\"\ntitle = \"t\"\n[[drills.scenarios]]\nid = \"a\"\ntitle = \"u\"\n"
                    .to_string(),
                "drills.scenarios[1].id",
            ),
            (
                "[[drills.scenarios]]\nid = \"a\"\ntitle = \"t\"\nsumary = \"\"\n".to_string(),
                "sumary",
            ),
        ] {
            let e = Settings::parse(&toml).unwrap_err().to_string();
            assert!(e.contains(key), "{toml}: {e}");
        }
    }

    #[test]
    fn bad_values_name_their_key() {
        for (toml, key) in [
            ("[server]\nlisten = \"nowhere\"", "server.listen"),
            ("[[services]]\nid = \"a b\"", "services[0].id"),
            ("[[services]]\nid = \"a\"\nowners = [\"nope\"]", "services[0].owners"),
            ("[outbox]\nlease_ms = 30\ndelivery_timeout_ms = 20", "outbox.lease_ms"),
            (
                "[integrations.email]\nhost = \"h\"\npassword_env = \"hunter2 is my password\"\nusername = \"u\"",
                "integrations.email.password_env",
            ),
            (
                "[[severities]]\nid = \"unknown\"\ncriterion = \"x\"",
                "severities[0].id",
            ),
            ("[auth]\nmode = \"oidc\"", "auth.oidc"),
            ("[auth]\nmode = \"proxy\"", "auth.proxy"),
            ("[auth]\nmode = \"proxy\"\n[auth.proxy]", "auth.proxy.trusted_proxies"),
            (
                "[auth]\nmode = \"proxy\"\n[auth.proxy]\ntrusted_proxies = [\"10.0.0.0/40\"]",
                "auth.proxy.trusted_proxies",
            ),
            (
                "[auth]\nmode = \"proxy\"\n[auth.proxy]\ntrusted_proxies = [\"::1\"]\nemail_header = \"bad header\"",
                "auth.proxy.email_header",
            ),
            ("[auth]\nadmin_emails = [\"not-an-email\"]", "auth.admin_emails"),
            ("[auth]\napi_per_minute = 0", "auth.api_per_minute"),
            (
                "[auth]\nmode = \"oidc\"\n[auth.oidc]\nissuer = \"http://login.example.com\"\nclient_id = \"x\"",
                "auth.oidc.issuer",
            ),
        ] {
            let e = Settings::parse(toml).unwrap_err().to_string();
            assert!(e.contains(key), "{toml}: {e}");
        }
    }

    #[test]
    fn the_readme_configuration_with_every_integration_is_valid() {
        let readme = include_str!("../README.md");
        let start = readme.find("### A complete configuration").expect("README section");
        let block = &readme[start..];
        let body = &block[block.find("```toml\n").expect("toml block") + 8..];
        let toml = &body[..body.find("```").expect("end of block")];
        let s = Settings::parse(toml).unwrap();
        assert_eq!(
            s.enabled_notifiers(),
            vec!["email", "slack", "jira", "pagerduty", "opsgenie", "webhook:audit"]
        );
    }

    #[test]
    fn nudge_cadence_falls_back_to_the_defaults_and_bad_nudge_settings_are_named() {
        let s = Settings::default();
        let sev1 = s.cadence("SEV1");
        assert_eq!(
            (sev1.no_lead_minutes, sev1.update_minutes, sev1.mitigated_minutes),
            (Some(10), Some(30), Some(240))
        );
        let unknown = s.cadence("unknown");
        assert_eq!(
            (
                unknown.no_lead_minutes,
                unknown.update_minutes,
                unknown.mitigated_minutes
            ),
            (Some(15), Some(60), Some(480))
        );
        let custom = Settings::parse(
            "[nudges]\nno_update_minutes = 0\n[[severities]]\nid = \"P1\"\ncriterion = \"Bad\"\nno_lead_minutes = 3\n",
        )
        .unwrap();
        let p1 = custom.cadence("P1");
        assert_eq!((p1.no_lead_minutes, p1.update_minutes), (Some(3), None), "0 is off");
        for (toml, key) in [
            ("[nudges]\ncheck_every_seconds = 0\n", "nudges.check_every_seconds"),
            ("[metrics]\nallow_from = [\"10.0.0.0/33\"]\n", "metrics.allow_from"),
            ("[nudges]\nemail_lead = true\n", "nudges.email_lead"),
            ("[nudges]\nsoon = 1\n", "soon"),
            (
                "[integrations.email]\nhost = \"localhost\"\ntls = \"none\"\n[[routing]]\nevents = [\"nudge\"]\nnotifiers = [\"email\"]\n",
                "routing[0].events",
            ),
        ] {
            let e = match Settings::parse(toml) {
                Ok(s) => s.validate(&[]).unwrap_err().to_string(),
                Err(e) => format!("{e:#}"),
            };
            assert!(e.contains(key), "{toml}: {e}");
        }
    }

    #[test]
    fn example_configs_are_valid() {
        let example = Settings::parse(include_str!("../examples/redbutton.toml")).unwrap();
        assert_eq!(example.services.len(), 2);
        assert_eq!(
            example.roles().iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["lead", "comms", "scribe", "sme"]
        );
        assert_eq!(
            example.enabled_notifiers(),
            vec!["email", "slack", "jira", "pagerduty", "teams", "webhook:audit"]
        );
        let local = Settings::parse(include_str!("../examples/local-mail.toml")).unwrap();
        assert_eq!(local.enabled_notifiers(), vec!["email"]);
        let docker = Settings::parse(include_str!("../examples/docker.toml")).unwrap();
        assert!(docker.auth.dev_allow_non_loopback);
    }
}
