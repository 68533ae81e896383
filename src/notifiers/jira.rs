//! Jira: a ticket per incident (Cloud REST v3 with Atlassian Document Format, or Server/Data
//! Center REST v2 with wiki text).

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use futures_util::future::BoxFuture;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::{self, Answer, SendError};
use super::{Awaited, Delivered, Delivery, EventPayload, FollowUpPayload, IncidentSnapshot, Notifier, NotifyError};
use crate::config::{ConfigError, Settings, bad, check_emails, check_env_name};
use crate::domain::EventKind;

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
    /// Open a Jira issue for each follow-up recorded on an incident, linked to the incident's
    /// ticket, and keep the follow-up's status in step with it.
    #[serde(default)]
    pub follow_ups: bool,
    /// Issue type of follow-up issues; `issue_type` when not set.
    #[serde(default)]
    pub follow_up_issue_type: Option<String>,
    /// Name of the issue link type between a follow-up issue and the incident's ticket.
    #[serde(default = "default_link_type")]
    pub follow_up_link_type: String,
    /// Whether to set Jira's due date field (`duedate`) from the follow-up's due date; turn off
    /// for projects whose create screen lacks it.
    #[serde(default = "yes")]
    pub follow_up_due_date: bool,
    /// How often every server asks Jira for the status of open follow-up issues, in seconds.
    #[serde(default = "default_sync_seconds")]
    pub follow_up_sync_seconds: u64,
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
fn default_link_type() -> String {
    "Relates".into()
}
fn default_sync_seconds() -> u64 {
    300
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
        if self
            .follow_up_issue_type
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return Err(bad(format!("{key}.follow_up_issue_type"), "must not be empty"));
        }
        if self.follow_up_link_type.trim().is_empty() {
            return Err(bad(
                format!("{key}.follow_up_link_type"),
                "must name an issue link type, like Relates",
            ));
        }
        if !(10..=86_400).contains(&self.follow_up_sync_seconds) {
            return Err(bad(
                format!("{key}.follow_up_sync_seconds"),
                "must be between 10 and 86400 (seconds)",
            ));
        }
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

// ---------------------------------------------------------------------------------------------
// The notifier.

const VENDOR: &str = "Jira";
/// Our integration name in the ref store.
const STORE: &str = "jira";
/// The ticket key, with its browse link.
const ISSUE: &str = "issue";
/// Written before the create is sent, removed once the key is stored: when a later attempt finds
/// it without a key, the create may have happened, so it searches before creating again.
const CREATING: &str = "issue-create";
/// Prefix of the marker written before a follow-up's issue is created (`follow-up-create:<id>`).
const FOLLOW_UP_CREATING: &str = "follow-up-create";
/// Issue keys per status search of the follow-up sync.
pub const SYNC_BATCH: usize = 50;
/// How long after a create whose answer was lost a search that finds nothing is not trusted.
const SEARCH_LAG_SECS: i64 = 30;
/// The comment property that names the delivery which posted a comment.
const COMMENT_PROPERTY: &str = "redbutton";
/// Jira's limit on the summary, in UTF-16 code units (Java string length).
const SUMMARY_MAX: usize = 255;
/// Priority names of a stock Jira scheme, most urgent first.
const POSITIONAL: [&str; 5] = ["Highest", "High", "Medium", "Low", "Lowest"];
/// Characters escaped in a path segment (issue keys are `ABC-12`, but the key comes from outside).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Opens one Jira ticket per incident and comments on it as the incident changes.
pub struct JiraNotifier {
    client: reqwest::Client,
    base: String,
    flavor: JiraFlavor,
    authorization: HeaderValue,
    cfg: JiraSettings,
    priorities: BTreeMap<String, String>,
    severity_labels: BTreeMap<String, String>,
    service_names: BTreeMap<String, String>,
}

impl std::fmt::Debug for JiraNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JiraNotifier")
            .field("base", &self.base)
            .field("flavor", &self.flavor)
            .finish_non_exhaustive()
    }
}

/// Severity id → priority name for every configured level and `unknown`: the configured name,
/// else the stock name at the level's position. `unknown` is treated as the most severe level
/// unless it is mapped itself.
pub fn priority_map(settings: &Settings, cfg: &JiraSettings) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for (i, level) in settings.severities.iter().enumerate() {
        let name = cfg
            .priorities
            .get(&level.id)
            .cloned()
            .unwrap_or_else(|| POSITIONAL[i.min(POSITIONAL.len() - 1)].to_string());
        map.insert(level.id.clone(), name);
    }
    let unknown = cfg
        .priorities
        .get(crate::domain::UNKNOWN_SEVERITY)
        .cloned()
        .or_else(|| settings.severities.first().and_then(|l| map.get(&l.id).cloned()))
        .unwrap_or_else(|| POSITIONAL[0].to_string());
    map.insert(crate::domain::UNKNOWN_SEVERITY.to_string(), unknown);
    map
}

impl JiraNotifier {
    /// Builds the notifier from its section; `token` is the value of `token_env`.
    pub fn new(cfg: &JiraSettings, settings: &Settings, token: &str, timeout_ms: u64) -> anyhow::Result<Self> {
        let base = super::common::base_url("integrations.jira.base_url", &cfg.base_url)?;
        let raw = match cfg.auth {
            JiraAuth::Basic => {
                let email = cfg
                    .email
                    .as_deref()
                    .ok_or_else(|| anyhow::anyhow!("integrations.jira.email: basic auth needs the account email"))?;
                let pair = base64::engine::general_purpose::STANDARD.encode(format!("{email}:{token}"));
                format!("Basic {pair}")
            }
            JiraAuth::Bearer => format!("Bearer {token}"),
        };
        let mut authorization = HeaderValue::from_str(&raw).map_err(|_| {
            anyhow::anyhow!(
                "integrations.jira.token_env: the token in {} holds characters an HTTP header cannot carry",
                cfg.token_env
            )
        })?;
        authorization.set_sensitive(true);
        Ok(Self {
            client: http::client(Duration::from_millis(timeout_ms))?,
            base,
            flavor: cfg.flavor,
            authorization,
            cfg: cfg.clone(),
            priorities: priority_map(settings, cfg),
            severity_labels: settings
                .severities
                .iter()
                .map(|s| (s.id.clone(), s.label.clone()))
                .collect(),
            service_names: settings
                .services
                .iter()
                .map(|s| (s.id.clone(), s.name.clone()))
                .collect(),
        })
    }

    fn api(&self, tail: &str) -> String {
        let version = match self.flavor {
            JiraFlavor::Cloud => 3,
            JiraFlavor::Server => 2,
        };
        format!("{}/rest/api/{version}/{tail}", self.base)
    }

    fn issue_api(&self, key: &str, tail: &str) -> String {
        self.api(&format!("issue/{}/{tail}", segment(key)))
    }

    /// The page a person opens for a ticket.
    pub fn browse(&self, key: &str) -> String {
        format!("{}/browse/{}", self.base, segment(key))
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, url)
            .header(AUTHORIZATION, self.authorization.clone())
            .header(ACCEPT, "application/json")
    }

    fn post_json(&self, url: &str, body: &Value) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::POST, url)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string())
    }

    /// The project of an incident's ticket: the first of its services with its own project,
    /// else the configured one.
    pub fn project_for(&self, services: &[String]) -> &str {
        services
            .iter()
            .find_map(|s| self.cfg.services.get(s).and_then(|x| x.project.as_deref()))
            .unwrap_or(&self.cfg.project)
    }

    fn priority(&self, severity: &str) -> Option<String> {
        if !self.cfg.set_priority {
            return None;
        }
        self.priorities
            .get(severity)
            .or_else(|| self.priorities.get(crate::domain::UNKNOWN_SEVERITY))
            .cloned()
    }

    fn severity_text(&self, id: &str) -> String {
        match self.severity_labels.get(id) {
            Some(label) if !label.is_empty() => format!("{id} ({label})"),
            _ => id.to_string(),
        }
    }

    fn labels(&self, inc: &IncidentSnapshot) -> Vec<String> {
        let (prefix, drill) = (&self.cfg.label_prefix, inc.drill);
        let mut all = vec![prefix.clone(), incident_label(prefix, inc)];
        all.extend(self.cfg.labels.iter().cloned());
        if drill {
            all.push("drill".into());
        }
        let mut seen = std::collections::HashSet::new();
        all.retain(|l| seen.insert(l.clone()));
        all
    }

    fn render(&self, blocks: &[Block]) -> Value {
        match self.flavor {
            JiraFlavor::Cloud => to_adf(blocks),
            JiraFlavor::Server => Value::String(to_wiki(blocks)),
        }
    }

    /// The body of `POST /issue`.
    pub fn create_body(&self, p: &EventPayload) -> Value {
        let inc = &p.incident;
        let mut fields = serde_json::Map::new();
        for id in &inc.services {
            if let Some(s) = self.cfg.services.get(id) {
                for (k, v) in &s.fields {
                    fields.entry(k.clone()).or_insert_with(|| toml_to_json(v));
                }
            }
        }
        fields.insert("project".into(), json!({ "key": self.project_for(&inc.services) }));
        fields.insert("issuetype".into(), json!({ "name": self.cfg.issue_type }));
        // A drill says so in the summary, where every board and search shows it.
        let reference = if inc.drill {
            format!("[DRILL] {}", inc.reference())
        } else {
            inc.reference()
        };
        fields.insert("summary".into(), json!(issue_summary(&reference, &inc.title)));
        fields.insert("description".into(), self.render(&self.description(p)));
        if let Some(priority) = self.priority(&inc.severity) {
            fields.insert("priority".into(), json!({ "name": priority }));
        }
        fields.insert("labels".into(), json!(self.labels(inc)));
        json!({ "fields": fields })
    }

    /// The body of `POST /issue` for a follow-up: in the incident ticket's project, labelled so a
    /// lost create can be found again, linked to the incident's ticket `link_to` when there is one.
    pub fn follow_up_body(&self, p: &EventPayload, fu: &FollowUpPayload, link_to: Option<&str>) -> Value {
        let inc = &p.incident;
        let mut fields = serde_json::Map::new();
        for id in &inc.services {
            if let Some(s) = self.cfg.services.get(id) {
                for (k, v) in &s.fields {
                    fields.entry(k.clone()).or_insert_with(|| toml_to_json(v));
                }
            }
        }
        let issue_type = self.cfg.follow_up_issue_type.as_ref().unwrap_or(&self.cfg.issue_type);
        fields.insert("project".into(), json!({ "key": self.project_for(&inc.services) }));
        fields.insert("issuetype".into(), json!({ "name": issue_type }));
        fields.insert(
            "summary".into(),
            json!(issue_summary(&format!("{} follow-up", inc.reference()), &fu.title)),
        );
        fields.insert("description".into(), self.render(&self.follow_up_description(p, fu)));
        if self.cfg.follow_up_due_date {
            fields.insert("duedate".into(), json!(fu.due_on));
        }
        let prefix = &self.cfg.label_prefix;
        let mut labels = vec![
            prefix.clone(),
            format!("{prefix}-follow-up"),
            follow_up_label(prefix, inc, fu.id),
        ];
        labels.extend(self.cfg.labels.iter().cloned());
        if inc.drill {
            labels.push("drill".into());
        }
        let mut seen = std::collections::HashSet::new();
        labels.retain(|l| seen.insert(l.clone()));
        fields.insert("labels".into(), json!(labels));
        let mut body = json!({ "fields": fields });
        if let Some(key) = link_to {
            body["update"] = json!({ "issuelinks": [{ "add": {
                "type": { "name": self.cfg.follow_up_link_type },
                "outwardIssue": { "key": key }
            } }] });
        }
        body
    }

    /// What a follow-up issue says.
    pub fn follow_up_description(&self, p: &EventPayload, fu: &FollowUpPayload) -> Vec<Block> {
        let inc = &p.incident;
        let owner = match &fu.owner_email {
            Some(e) if !e.eq_ignore_ascii_case(&fu.owner_name) => format!("{} ({e})", fu.owner_name),
            _ => fu.owner_name.clone(),
        };
        vec![
            Block::Paragraph(vec![
                Inline::Text(format!("{} recorded this follow-up of ", p.actor.name)),
                Inline::Link {
                    text: inc.reference(),
                    href: inc.url.clone(),
                },
                Inline::Text(format!(" ({}).", inc.title)),
            ]),
            Block::Bullets(vec![
                labelled("What", &fu.title),
                labelled("Owner", &owner),
                labelled("Due", &fu.due_on),
            ]),
            link_line("Incident page", &inc.url),
        ]
    }

    /// What the ticket says about the incident.
    pub fn description(&self, p: &EventPayload) -> Vec<Block> {
        let inc = &p.incident;
        let mut blocks = Vec::new();
        if inc.drill {
            blocks.push(Block::Paragraph(vec![Inline::Strong(
                "This is a drill, not a real incident.".into(),
            )]));
        }
        blocks.push(Block::Paragraph(vec![
            Inline::Text(format!("{} declared ", inc.declared_by.name)),
            Inline::Link {
                text: inc.reference(),
                href: inc.url.clone(),
            },
            Inline::Text(".".into()),
        ]));
        let services = if inc.services.is_empty() {
            "none named".to_string()
        } else {
            inc.services
                .iter()
                .map(|id| self.service_names.get(id).cloned().unwrap_or_else(|| id.clone()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        blocks.push(Block::Bullets(vec![
            labelled("What", &inc.title),
            labelled("Severity", &self.severity_text(&inc.severity)),
            labelled("Status", &inc.status),
            labelled("Services", &services),
            labelled("Declared by", &person(&inc.declared_by)),
            labelled(
                "Lead",
                &inc.lead.as_ref().map(person).unwrap_or_else(|| "nobody yet".into()),
            ),
        ]));
        if !inc.summary.trim().is_empty() {
            blocks.push(Block::Heading(3, vec![Inline::Text("Summary".into())]));
            blocks.push(Block::Verbatim(inc.summary.clone()));
        }
        blocks.push(link_line("Incident page", &inc.url));
        if let Some(bridge) = &inc.bridge_url {
            blocks.push(link_line("Conference bridge", bridge));
        }
        blocks
    }

    /// What a comment says about a change.
    pub fn comment(&self, p: &EventPayload) -> Vec<Block> {
        let who = &p.actor.name;
        let mut blocks = Vec::new();
        match (p.event, &p.change) {
            (EventKind::StatusUpdate, _) if p.incident.latest_update.is_some() => {
                let u = p.incident.latest_update.as_ref().expect("checked");
                blocks.push(Block::Paragraph(vec![Inline::Strong(format!(
                    "Status update from {}",
                    u.author.name
                ))]));
                blocks.push(Block::Heading(3, vec![Inline::Text("What we know".into())]));
                blocks.push(Block::Verbatim(u.known.clone()));
                blocks.push(Block::Heading(3, vec![Inline::Text("What we are doing".into())]));
                blocks.push(Block::Verbatim(u.doing.clone()));
                blocks.push(Block::Paragraph(vec![Inline::Text(match u.next_update_at {
                    Some(next) => format!("Next update by {}.", next.format("%Y-%m-%d %H:%M UTC")),
                    None => "No further update is planned.".into(),
                })]));
            }
            (EventKind::NoteAdded, _) => {
                blocks.push(Block::Paragraph(vec![Inline::Text(format!("{who} added a note:"))]));
                if let Some(note) = p.note.as_deref().filter(|n| !n.trim().is_empty()) {
                    blocks.push(Block::Verbatim(note.to_string()));
                }
            }
            (EventKind::RoleChanged, Some(c)) if let Some(r) = &p.role => {
                let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "nobody".into());
                blocks.push(Block::Paragraph(vec![
                    Inline::Text(format!(
                        "{who} changed the {} from ",
                        crate::config::roles::in_sentence(&r.name)
                    )),
                    Inline::Strong(show(&c.old)),
                    Inline::Text(" to ".into()),
                    Inline::Strong(show(&c.new)),
                    Inline::Text(".".into()),
                ]));
            }
            (_, Some(c)) => {
                let show = |v: &Option<String>| match (c.field.as_str(), v.as_deref()) {
                    ("severity", Some(s)) => self.severity_text(s),
                    ("lead", None) => "nobody".to_string(),
                    (_, Some(s)) => s.to_string(),
                    (_, None) => "none".to_string(),
                };
                blocks.push(Block::Paragraph(vec![
                    Inline::Text(format!("{who} changed the {} from ", c.field)),
                    Inline::Strong(show(&c.old)),
                    Inline::Text(" to ".into()),
                    Inline::Strong(show(&c.new)),
                    Inline::Text(".".into()),
                ]));
            }
            (_, None) => blocks.push(Block::Paragraph(vec![Inline::Text(format!(
                "{who} updated {}.",
                p.incident.reference()
            ))])),
        }
        let inc = &p.incident;
        if p.event == EventKind::StatusChanged {
            match (inc.status.as_str(), &inc.merged_into) {
                ("declined", _) => blocks.push(Block::Paragraph(vec![
                    Inline::Strong("Not an incident. Reason: ".into()),
                    Inline::Text(inc.closed_reason.clone().unwrap_or_else(|| "none given".into())),
                ])),
                ("merged", Some(m)) => blocks.push(Block::Paragraph(vec![
                    Inline::Text(format!("{} is a duplicate of ", inc.reference())),
                    Inline::Link {
                        text: m.reference(),
                        href: m.url.clone(),
                    },
                    Inline::Text(", where the work goes on.".into()),
                ])),
                _ => {}
            }
        }
        blocks.push(link_line("Incident page", &p.incident.url));
        blocks
    }

    /// Turns a failed answer into the worker's error, with Jira's own messages for refusals.
    fn error(&self, action: &str, answer: &Answer) -> NotifyError {
        let code = answer.status.as_u16();
        let detail = (!matches!(code, 401 | 403))
            .then(|| jira_messages(&answer.body))
            .flatten();
        match (http::status_error(VENDOR, answer), detail) {
            (NotifyError::Permanent(_), Some(d)) => {
                NotifyError::Permanent(format!("Jira refused to {action} (HTTP {code}): {d}"))
            }
            (other, _) => other.map_message(|m| format!("could not {action}: {m}")),
        }
    }

    /// The stored ticket, if the create went through.
    async fn stored_issue(&self, d: &Delivery) -> Result<Option<(String, String)>, NotifyError> {
        Ok(d.store.get(STORE, ISSUE).await?.map(|r| {
            let url = r.url.unwrap_or_else(|| self.browse(&r.value));
            (r.value, url)
        }))
    }

    /// The incident's ticket: the stored one, one an earlier unanswered create made (found by
    /// its label), or a new one.
    async fn ensure_issue(&self, d: &Delivery) -> Result<(String, String), NotifyError> {
        if let Some(found) = self.stored_issue(d).await? {
            return Ok(found);
        }
        let label = incident_label(&self.cfg.label_prefix, &d.payload.incident);
        let key = self
            .create_once(d, CREATING, &label, "the issue", self.create_body(&d.payload))
            .await?;
        self.adopt(d, &key).await
    }

    /// Creates an issue once: writes `marker` before sending, and when an earlier attempt left it
    /// (its answer was lost), looks for the issue by its unique `label` before creating again.
    /// Returns the key; the caller stores it and then removes the marker.
    async fn create_once(
        &self,
        d: &Delivery,
        marker_name: &str,
        label: &str,
        what: &str,
        body: Value,
    ) -> Result<String, NotifyError> {
        let marker = d.store.get(STORE, marker_name).await?;
        let earlier_create = marker.is_some();
        if let Some(marker) = &marker {
            if let Some(key) = self.find_by_label(label).await? {
                return Ok(key);
            }
            // Jira's search index can trail a brand-new issue by a few seconds; a search right
            // after a lost create may miss it. Only create again once that window has passed.
            let since = crate::domain::declaration::now_utc() - marker.at;
            if since < chrono::Duration::seconds(SEARCH_LAG_SECS) {
                // Waiting, not failing: this must not use up the delivery's attempts.
                return Err(NotifyError::Waiting(format!(
                    "an earlier create may have made the ticket but Jira's search does not show it yet; \
                     looking again before creating another (up to {SEARCH_LAG_SECS} s after the first try)"
                )));
            }
        } else {
            d.store.put(STORE, marker_name, &d.idempotency_key, None).await?;
        }
        let answer = match http::send(self.post_json(&self.api("issue"), &body), VENDOR).await {
            Ok(a) => a,
            Err(SendError::NotSent(m)) => {
                // Nothing reached Jira; the marker only matters if an earlier create may have.
                if !earlier_create {
                    d.store.delete(STORE, marker_name).await?;
                }
                return Err(NotifyError::Retryable(format!("could not create {what}: {m}")));
            }
            Err(SendError::Unknown(m)) => {
                return Err(NotifyError::Retryable(format!(
                    "could not create {what}: {m}; the next attempt looks for it before creating another"
                )));
            }
        };
        if !answer.status.is_success() {
            if answer.status.is_client_error() && !earlier_create {
                // Jira refused it, so nothing was created.
                d.store.delete(STORE, marker_name).await?;
            }
            return Err(self.error(&format!("create {what}"), &answer));
        }
        let created: Created = answer.json(VENDOR)?;
        Ok(created.key)
    }

    /// Opens the Jira issue of a follow-up, once, linked to the incident's ticket when it has one,
    /// and records its key on the follow-up.
    async fn follow_up_issue(&self, d: &Delivery) -> Result<Delivered, NotifyError> {
        let fu = d
            .payload
            .follow_up
            .as_ref()
            .ok_or_else(|| NotifyError::Permanent("this delivery names no follow-up".into()))?;
        if let Some((key, url)) = d.store.follow_up_issue(fu.id).await? {
            return Ok(Delivered {
                external_url: Some(url.unwrap_or_else(|| self.browse(&key))),
                external_id: Some(key),
            });
        }
        // The incident's ticket, to link to. This delivery runs after the declaration's in the
        // incident's Jira order, so it is there unless it was never routed to Jira or failed.
        let link_to = match d.store.made_by_declaration(STORE, ISSUE).await? {
            Ok(r) => Some(r.value),
            Err(Awaited::NotRouted | Awaited::Done) => None,
            Err(other) => {
                let what = format!(
                    "Jira issue for {} to link the follow-up to",
                    d.payload.incident.reference()
                );
                return Err(other
                    .blocking(&what)
                    .unwrap_or_else(|| NotifyError::Waiting(what.clone())));
            }
        };
        let label = follow_up_label(&self.cfg.label_prefix, &d.payload.incident, fu.id);
        let marker = format!("{FOLLOW_UP_CREATING}:{}", fu.id);
        let body = self.follow_up_body(&d.payload, fu, link_to.as_deref());
        let key = self
            .create_once(d, &marker, &label, "the follow-up issue", body)
            .await?;
        let url = self.browse(&key);
        let stored = d.store.set_follow_up_issue(fu.id, &key, &url).await?;
        d.store.delete(STORE, &marker).await?;
        let key = stored.unwrap_or(key);
        Ok(Delivered {
            external_url: Some(self.browse(&key)),
            external_id: Some(key),
        })
    }

    /// The status category key (`new`, `indeterminate`, `done`) of each issue Jira finds among
    /// `keys`: one search per [`SYNC_BATCH`] keys. A batch Jira refuses (a key that no longer
    /// exists makes the whole JQL invalid) is split until the unknown keys stand alone; those are
    /// left out of the answer.
    pub async fn status_categories(&self, keys: &[String]) -> Result<BTreeMap<String, String>, NotifyError> {
        let mut found = BTreeMap::new();
        let mut batches: Vec<Vec<String>> = keys.chunks(SYNC_BATCH).map(<[String]>::to_vec).collect();
        batches.reverse();
        while let Some(batch) = batches.pop() {
            match self.search_statuses(&batch).await? {
                Some(part) => found.extend(part),
                None if batch.len() > 1 => {
                    let (a, b) = batch.split_at(batch.len() / 2);
                    batches.push(b.to_vec());
                    batches.push(a.to_vec());
                }
                None => tracing::warn!(
                    jira.key = %batch[0],
                    "Jira does not find this follow-up issue (deleted, or no longer visible to us); its status is not synced"
                ),
            }
        }
        Ok(found)
    }

    /// One search `key in (…)` asking only for the status; `None` when Jira refuses the query.
    async fn search_statuses(&self, keys: &[String]) -> Result<Option<BTreeMap<String, String>>, NotifyError> {
        let list = keys
            .iter()
            .map(|k| format!("\"{}\"", jql_escape(k)))
            .collect::<Vec<_>>()
            .join(", ");
        let jql = format!("key in ({list})");
        let max = keys.len().to_string();
        let request = match self.flavor {
            JiraFlavor::Cloud => self.post_json(
                &self.api("search/jql"),
                &json!({ "jql": jql, "fields": ["status"], "maxResults": keys.len() }),
            ),
            JiraFlavor::Server => {
                let url = url::Url::parse_with_params(
                    &self.api("search"),
                    [
                        ("jql", jql.as_str()),
                        ("fields", "status"),
                        ("maxResults", max.as_str()),
                    ],
                )
                .map_err(super::common::config_error)?;
                self.request(reqwest::Method::GET, url.as_str())
            }
        };
        let answer = http::send(request, VENDOR).await.map_err(|e| {
            NotifyError::Retryable(format!(
                "could not search for the status of follow-up issues: {}",
                e.into_notify()
            ))
        })?;
        if answer.status.as_u16() == 400 {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(self.error("search for the status of follow-up issues", &answer));
        }
        let page: StatusPage = answer.json(VENDOR)?;
        Ok(Some(
            page.issues
                .into_iter()
                .filter_map(|i| {
                    let category = i.fields?.status?.status_category?.key?;
                    Some((i.key, category))
                })
                .collect(),
        ))
    }

    async fn adopt(&self, d: &Delivery, key: &str) -> Result<(String, String), NotifyError> {
        let url = self.browse(key);
        d.store.put(STORE, ISSUE, key, Some(&url)).await?;
        d.store.delete(STORE, CREATING).await?;
        Ok((key.to_string(), url))
    }

    /// Looks for the ticket carrying the incident's label.
    async fn find_by_label(&self, label: &str) -> Result<Option<String>, NotifyError> {
        let jql = format!("labels = \"{}\"", jql_escape(label));
        let request = match self.flavor {
            JiraFlavor::Cloud => self.post_json(
                &self.api("search/jql"),
                &json!({ "jql": jql, "fields": ["key"], "maxResults": 1 }),
            ),
            JiraFlavor::Server => {
                let url = url::Url::parse_with_params(
                    &self.api("search"),
                    [("jql", jql.as_str()), ("fields", "key"), ("maxResults", "1")],
                )
                .map_err(super::common::config_error)?;
                self.request(reqwest::Method::GET, url.as_str())
            }
        };
        let answer = http::send(request, VENDOR).await.map_err(|e| {
            NotifyError::Retryable(format!(
                "could not search for an issue an earlier attempt may have created: {}",
                e.into_notify()
            ))
        })?;
        if !answer.status.is_success() {
            return Err(self.error("search for an issue an earlier attempt may have created", &answer));
        }
        let found: Found = answer.json(VENDOR)?;
        Ok(found.issues.into_iter().next().map(|i| i.key))
    }

    /// The ticket for a later event. When the declaration was never routed here, the ticket is
    /// opened now; when its create failed or is still pending, this delivery waits or fails.
    async fn issue_for_update(&self, d: &Delivery) -> Result<(String, String), NotifyError> {
        let status = match d.store.made_by_declaration(STORE, ISSUE).await? {
            Ok(r) => {
                let url = r.url.unwrap_or_else(|| self.browse(&r.value));
                return Ok((r.value, url));
            }
            Err(status) => status,
        };
        let what = format!("Jira issue for {}", d.payload.incident.reference());
        match status {
            Awaited::NotRouted => self.ensure_issue(d).await,
            Awaited::Done => Err(NotifyError::Permanent(format!(
                "no key is stored for the {what} although its creation was delivered"
            ))),
            other => Err(other
                .blocking(&what)
                .unwrap_or_else(|| NotifyError::Waiting(what.clone()))),
        }
    }

    /// Posts the comment for this delivery unless an earlier attempt already did. The comment
    /// carries the delivery key as a comment property; an attempt that finds the "sent" marker
    /// but no result looks for that property among the newest comments before posting again.
    async fn comment_once(&self, d: &Delivery, key: &str) -> Result<Delivered, NotifyError> {
        let marker = format!("comment:{}", d.idempotency_key);
        let sent = format!("comment-sent:{}", d.idempotency_key);
        if let Some(done) = d.store.get(STORE, &marker).await? {
            return Ok(Delivered {
                external_id: Some(key.to_string()),
                external_url: done.url,
            });
        }
        let found = if d.store.get(STORE, &sent).await?.is_some() {
            self.find_comment(key, &d.idempotency_key).await?
        } else {
            None
        };
        let id = match found {
            Some(id) => id,
            None => {
                d.store.put(STORE, &sent, key, None).await?;
                let body = json!({
                    "body": self.render(&self.comment(&d.payload)),
                    "properties": [{ "key": COMMENT_PROPERTY, "value": { "delivery": d.idempotency_key } }],
                });
                let answer = match http::send(self.post_json(&self.issue_api(key, "comment"), &body), VENDOR).await {
                    Ok(a) => a,
                    Err(e) => {
                        if matches!(e, SendError::NotSent(_)) {
                            d.store.delete(STORE, &sent).await?;
                        }
                        return Err(NotifyError::Retryable(format!(
                            "could not comment on {key}: {}",
                            e.into_notify()
                        )));
                    }
                };
                if !answer.status.is_success() {
                    // Jira answered, and not with a comment: nothing to look for next time.
                    d.store.delete(STORE, &sent).await?;
                    return Err(self.error(&format!("comment on {key}"), &answer));
                }
                let created: CreatedComment = answer.json(VENDOR)?;
                created.id
            }
        };
        let url = format!("{}?focusedCommentId={}", self.browse(key), id);
        d.store.put(STORE, &marker, &id, Some(&url)).await?;
        d.store.delete(STORE, &sent).await?;
        Ok(Delivered {
            external_id: Some(key.to_string()),
            external_url: Some(url),
        })
    }

    /// Finds, among the issue's newest comments, the one a delivery posted (by its property).
    async fn find_comment(&self, key: &str, delivery: &str) -> Result<Option<String>, NotifyError> {
        let url = url::Url::parse_with_params(
            &self.issue_api(key, "comment"),
            [("orderBy", "-created"), ("maxResults", "100"), ("expand", "properties")],
        )
        .map_err(super::common::config_error)?;
        let answer = http::send(self.request(reqwest::Method::GET, url.as_str()), VENDOR)
            .await
            .map_err(|e| {
                NotifyError::Retryable(format!(
                    "could not read the comments of {key} to find one an earlier attempt may have posted: {}",
                    e.into_notify()
                ))
            })?;
        if !answer.status.is_success() {
            return Err(self.error(&format!("read the comments of {key}"), &answer));
        }
        let page: serde_json::Value = answer.json(VENDOR)?;
        Ok(page
            .get("comments")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .find(|c| {
                c.get("properties")
                    .and_then(serde_json::Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|p| {
                        p.get("key").and_then(serde_json::Value::as_str) == Some(COMMENT_PROPERTY)
                            && p.pointer("/value/delivery").and_then(serde_json::Value::as_str) == Some(delivery)
                    })
            })
            .and_then(|c| c.get("id").and_then(serde_json::Value::as_str))
            .map(str::to_string))
    }

    /// Moves the ticket with the first of `wanted` that Jira offers, once per delivery.
    async fn transition_once(&self, d: &Delivery, key: &str, kind: &str, wanted: &[String]) -> Result<(), NotifyError> {
        let done = format!("transition:{}", d.idempotency_key);
        let sent = format!("transition-sent:{}", d.idempotency_key);
        if d.store.get(STORE, &done).await?.is_some() {
            return Ok(());
        }
        let url = self.issue_api(key, "transitions");
        let answer = http::send(self.request(reqwest::Method::GET, &url), VENDOR)
            .await
            .map_err(|e| {
                NotifyError::Retryable(format!("could not read the transitions of {key}: {}", e.into_notify()))
            })?;
        if !answer.status.is_success() {
            return Err(self.error(&format!("read the transitions of {key}"), &answer));
        }
        let offered: Transitions = answer.json(VENDOR)?;
        let Some(pick) = pick_transition(&offered.transitions, wanted) else {
            if d.store.get(STORE, &sent).await?.is_some() {
                // An earlier attempt sent the transition and lost the answer; the ticket has
                // moved, which is why it is no longer offered.
                d.store.put(STORE, &done, "sent earlier", None).await?;
                return Ok(());
            }
            let available: Vec<&str> = offered.transitions.iter().map(|t| t.name.as_str()).collect();
            return Err(NotifyError::Permanent(format!(
                "none of the {kind} transitions ({}) is available on {key}; available: {}. Set integrations.jira.{kind}_transitions",
                wanted.join(", "),
                if available.is_empty() {
                    "none".to_string()
                } else {
                    available.join(", ")
                }
            )));
        };
        d.store.put(STORE, &sent, &pick.id, None).await?;
        let body = json!({ "transition": { "id": pick.id } });
        let answer = http::send(self.post_json(&url, &body), VENDOR).await.map_err(|e| {
            NotifyError::Retryable(format!(
                "could not move {key} with \u{201c}{}\u{201d}: {}",
                pick.name,
                e.into_notify()
            ))
        })?;
        if !answer.status.is_success() {
            return Err(self.error(&format!("move {key} with \u{201c}{}\u{201d}", pick.name), &answer));
        }
        d.store.put(STORE, &done, &pick.id, None).await?;
        Ok(())
    }

    async fn run(&self, d: &Delivery) -> Result<Delivered, NotifyError> {
        let p = &d.payload;
        if p.event == EventKind::FollowUpAdded {
            return self.follow_up_issue(d).await;
        }
        if p.event == EventKind::Declared {
            let (key, url) = self.ensure_issue(d).await?;
            return Ok(Delivered {
                external_id: Some(key),
                external_url: Some(url),
            });
        }
        let (key, _) = self.issue_for_update(d).await?;
        let delivered = self.comment_once(d, &key).await?;
        if let Some((kind, wanted)) = self.transition_for(p) {
            self.transition_once(d, &key, kind, wanted).await?;
        }
        Ok(delivered)
    }

    /// Resolving moves the ticket to done; reopening moves it back.
    fn transition_for(&self, p: &EventPayload) -> Option<(&'static str, &[String])> {
        let c = p.change.as_ref().filter(|c| c.field == "status")?;
        if p.event != EventKind::StatusChanged {
            return None;
        }
        // Declined and merged close the ticket as resolving does; reopening a declined incident
        // reopens it.
        let closed = |s: Option<&str>| s.is_some_and(crate::domain::Status::is_closed_str);
        let (old, new) = (c.old.as_deref(), c.new.as_deref());
        if closed(new) && !closed(old) {
            Some(("resolve", &self.cfg.resolve_transitions))
        } else if closed(old) && !closed(new) {
            Some(("reopen", &self.cfg.reopen_transitions))
        } else {
            None
        }
    }

    async fn check(&self) -> Result<String, String> {
        let answer = http::send(self.request(reqwest::Method::GET, &self.api("myself")), VENDOR)
            .await
            .map_err(|e| e.into_notify().to_string())?;
        if !answer.status.is_success() {
            return Err(self.error("read the signed-in account", &answer).to_string());
        }
        let me: Myself = answer.json(VENDOR).map_err(|e| e.to_string())?;
        let who = me
            .display_name
            .or(me.name)
            .unwrap_or_else(|| "an account without a name".into());
        Ok(format!("signed in as {who}"))
    }
}

impl Notifier for JiraNotifier {
    fn name(&self) -> &str {
        "jira"
    }

    fn deliver<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<Delivered, NotifyError>> {
        Box::pin(self.run(delivery))
    }

    fn accepts(&self, _payload: &EventPayload) -> bool {
        true
    }

    fn target(&self, payload: &EventPayload) -> Option<String> {
        Some(format!("project {}", self.project_for(&payload.incident.services)))
    }

    fn probe(&self) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(self.check())
    }
}

#[derive(Deserialize)]
struct Created {
    key: String,
}

#[derive(Deserialize)]
struct CreatedComment {
    id: String,
}

#[derive(Deserialize)]
struct Found {
    #[serde(default)]
    issues: Vec<FoundIssue>,
}

#[derive(Deserialize)]
struct FoundIssue {
    key: String,
}

#[derive(Deserialize)]
struct StatusPage {
    #[serde(default)]
    issues: Vec<StatusIssue>,
}

#[derive(Deserialize)]
struct StatusIssue {
    key: String,
    #[serde(default)]
    fields: Option<StatusFields>,
}

#[derive(Deserialize)]
struct StatusFields {
    #[serde(default)]
    status: Option<IssueStatus>,
}

#[derive(Deserialize)]
struct IssueStatus {
    #[serde(rename = "statusCategory", default)]
    status_category: Option<Category>,
}

#[derive(Deserialize)]
struct Category {
    #[serde(default)]
    key: Option<String>,
}

#[derive(Deserialize)]
struct Transitions {
    #[serde(default)]
    transitions: Vec<Transition>,
}

#[derive(Debug, Clone, Deserialize)]
struct Transition {
    id: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct Myself {
    #[serde(rename = "displayName", default)]
    display_name: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct ErrorCollection {
    #[serde(rename = "errorMessages", default)]
    error_messages: Vec<String>,
    #[serde(default)]
    errors: BTreeMap<String, String>,
}

fn pick_transition<'t>(offered: &'t [Transition], wanted: &[String]) -> Option<&'t Transition> {
    wanted.iter().find_map(|w| {
        let w = w.trim().to_lowercase();
        offered.iter().find(|t| t.name.trim().to_lowercase() == w)
    })
}

/// Jira's `errorMessages` and `errors{field: message}`, as one line.
fn jira_messages(body: &[u8]) -> Option<String> {
    let e: ErrorCollection = serde_json::from_slice(body).ok()?;
    let mut parts: Vec<String> = e.error_messages.into_iter().filter(|m| !m.trim().is_empty()).collect();
    parts.extend(e.errors.into_iter().map(|(field, m)| format!("{field}: {m}")));
    if parts.is_empty() {
        return None;
    }
    let line: String = parts
        .join("; ")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(1000)
        .collect();
    Some(line)
}

fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

fn incident_label(prefix: &str, inc: &IncidentSnapshot) -> String {
    format!("{prefix}-{}", inc.external_key())
}

/// The label that names one follow-up's issue: `<prefix>-inc-<n>-<hash>-fu<id>`. It never
/// equals the incident ticket's label, so neither search finds the other's issue.
fn follow_up_label(prefix: &str, inc: &IncidentSnapshot, id: i64) -> String {
    format!("{prefix}-{}-fu{id}", inc.external_key())
}

fn jql_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn person(a: &crate::domain::Actor) -> String {
    format!("{} ({})", a.name, a.email)
}

fn labelled(label: &str, value: &str) -> Vec<Inline> {
    vec![Inline::Strong(format!("{label}:")), Inline::Text(format!(" {value}"))]
}

fn link_line(label: &str, href: &str) -> Block {
    Block::Paragraph(vec![
        Inline::Strong(format!("{label}:")),
        Inline::Text(" ".into()),
        Inline::Link {
            text: href.to_string(),
            href: href.to_string(),
        },
    ])
}

/// `INC-12: title` on one line, cut to Jira's 255 UTF-16 units with an ellipsis.
pub fn issue_summary(reference: &str, title: &str) -> String {
    let full: String = format!("{reference}: {title}")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if full.encode_utf16().count() <= SUMMARY_MAX {
        return full;
    }
    let mut cut = String::new();
    let mut units = 0;
    for c in full.chars() {
        if units + c.len_utf16() > SUMMARY_MAX - 1 {
            break;
        }
        units += c.len_utf16();
        cut.push(c);
    }
    format!("{}\u{2026}", cut.trim_end())
}

/// A TOML value from the config as the JSON Jira receives.
pub fn toml_to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => json!(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(t.iter().map(|(k, v)| (k.clone(), toml_to_json(v))).collect()),
    }
}

// ---------------------------------------------------------------------------------------------
// Text: one small document model, written out as Atlassian Document Format (Cloud) or wiki
// markup (Server).

/// A run of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inline {
    /// Plain text.
    Text(String),
    /// Bold text.
    Strong(String),
    /// A link.
    Link {
        /// What is shown.
        text: String,
        /// Where it goes.
        href: String,
    },
}

/// A block of the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// A heading of level 1–6.
    Heading(u8, Vec<Inline>),
    /// A paragraph.
    Paragraph(Vec<Inline>),
    /// A bullet list, one item per entry.
    Bullets(Vec<Vec<Inline>>),
    /// Text people wrote (the summary, a note), shown as written without interpreting markup.
    Verbatim(String),
}

/// The blocks as an ADF document.
pub fn to_adf(blocks: &[Block]) -> Value {
    let content: Vec<Value> = blocks.iter().flat_map(adf_blocks).collect();
    json!({ "type": "doc", "version": 1, "content": content })
}

fn adf_blocks(b: &Block) -> Vec<Value> {
    match b {
        Block::Heading(level, inlines) => vec![json!({
            "type": "heading",
            "attrs": { "level": (*level).clamp(1, 6) },
            "content": adf_inlines(inlines),
        })],
        Block::Paragraph(inlines) => vec![adf_paragraph(adf_inlines(inlines))],
        Block::Bullets(items) if items.is_empty() => vec![],
        Block::Bullets(items) => vec![json!({
            "type": "bulletList",
            "content": items
                .iter()
                .map(|i| json!({ "type": "listItem", "content": [adf_paragraph(adf_inlines(i))] }))
                .collect::<Vec<_>>(),
        })],
        // One paragraph per blank-line-separated part, its lines joined by hard breaks.
        Block::Verbatim(text) => verbatim_paragraphs(text)
            .iter()
            .map(|lines| {
                let mut content = Vec::new();
                for (i, line) in lines.iter().enumerate() {
                    if i > 0 {
                        content.push(json!({ "type": "hardBreak" }));
                    }
                    content.push(json!({ "type": "text", "text": line }));
                }
                adf_paragraph(content)
            })
            .collect(),
    }
}

fn adf_paragraph(content: Vec<Value>) -> Value {
    json!({ "type": "paragraph", "content": content })
}

fn adf_inlines(inlines: &[Inline]) -> Vec<Value> {
    inlines
        .iter()
        .filter_map(|i| match i {
            Inline::Text(t) => {
                let t = one_line(t);
                (!t.is_empty()).then(|| json!({ "type": "text", "text": t }))
            }
            Inline::Strong(t) => {
                let t = one_line(t);
                (!t.is_empty()).then(|| json!({ "type": "text", "text": t, "marks": [{ "type": "strong" }] }))
            }
            Inline::Link { text, href } => {
                let t = one_line(text);
                let t = if t.is_empty() { href.clone() } else { t };
                (!t.is_empty()).then(
                    || json!({ "type": "text", "text": t, "marks": [{ "type": "link", "attrs": { "href": href } }] }),
                )
            }
        })
        .collect()
}

/// Control characters (newlines included) become spaces: inline text is one line.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// Written text as paragraphs (split at blank lines) of lines, trailing spaces dropped.
fn verbatim_paragraphs(text: &str) -> Vec<Vec<String>> {
    let mut paragraphs = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for line in text.replace("\r\n", "\n").split('\n') {
        let line = one_line(line).trim_end().to_string();
        if line.trim().is_empty() {
            if !current.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        paragraphs.push(current);
    }
    paragraphs
}

/// The blocks as Jira wiki markup.
pub fn to_wiki(blocks: &[Block]) -> String {
    let mut out: Vec<String> = Vec::new();
    for b in blocks {
        match b {
            Block::Heading(level, inlines) => out.push(format!("h{}. {}", (*level).clamp(1, 6), wiki_inlines(inlines))),
            Block::Paragraph(inlines) => out.push(wiki_inlines(inlines)),
            Block::Bullets(items) if items.is_empty() => {}
            Block::Bullets(items) => out.push(
                items
                    .iter()
                    .map(|i| format!("* {}", wiki_inlines(i)))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            Block::Verbatim(text) => {
                let paragraphs = verbatim_paragraphs(text);
                if paragraphs.is_empty() {
                    continue;
                }
                let body = paragraphs.iter().map(|p| p.join("\n")).collect::<Vec<_>>().join("\n\n");
                // Inside {noformat} nothing is markup, except a closing {noformat}: defuse it.
                let body = defuse_noformat(&body);
                out.push(format!("{{noformat}}\n{body}\n{{noformat}}"));
            }
        }
    }
    out.join("\n\n")
}

fn defuse_noformat(s: &str) -> String {
    // ASCII lowercasing keeps byte offsets, so matches found in `lower` index `s` too.
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len() + 8);
    let mut i = 0;
    while let Some(at) = lower[i..].find("{noformat") {
        out.push_str(&s[i..=i + at]);
        out.push(' ');
        i += at + 1;
    }
    out.push_str(&s[i..]);
    out
}

fn wiki_inlines(inlines: &[Inline]) -> String {
    inlines
        .iter()
        .map(|i| match i {
            Inline::Text(t) => wiki_escape(t),
            Inline::Strong(t) => {
                // `*bold*` only renders when the closing star follows a non-space.
                let core = t.trim_end();
                if core.trim().is_empty() {
                    wiki_escape(t)
                } else {
                    format!("*{}*{}", wiki_escape(core), &t[core.len()..])
                }
            }
            Inline::Link { text, href } => {
                if text.trim().is_empty() || text == href {
                    format!("[{}]", wiki_href(href))
                } else {
                    format!("[{}|{}]", wiki_escape(text), wiki_href(href))
                }
            }
        })
        .collect()
}

/// Backslash-escapes the characters that start wiki markup inside a line.
fn wiki_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in one_line(s).chars() {
        if matches!(c, '[' | ']' | '{' | '}' | '|' | '*' | '_' | '+' | '^' | '~' | '!' | '?') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A URL safe inside `[text|url]`.
fn wiki_href(href: &str) -> String {
    one_line(href)
        .trim()
        .replace(' ', "%20")
        .replace('|', "%7C")
        .replace('[', "%5B")
        .replace(']', "%5D")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::Actor;
    use crate::notifiers::{Change, IncidentSnapshot};

    fn jira_settings(extra: &str) -> JiraSettings {
        toml::from_str(&format!(
            "base_url = \"https://example.atlassian.net/\"\nemail = \"bot@example.com\"\ntoken_env = \"JIRA_TOKEN\"\nproject = \"OPS\"\n{extra}"
        ))
        .unwrap()
    }

    fn notifier(extra: &str) -> JiraNotifier {
        let settings = Settings {
            services: vec![crate::config::Service {
                id: "checkout".into(),
                name: "Checkout".into(),
                description: String::new(),
                owners: vec![],
                email_to: vec![],
                responders: vec![],
                conference_url: None,
            }],
            ..Settings::default()
        };
        JiraNotifier::new(&jira_settings(extra), &settings, "t0ken", 1000).unwrap()
    }

    fn ada() -> Actor {
        Actor {
            name: "Ada Lovelace".into(),
            email: "ada@example.com".into(),
        }
    }

    fn payload(event: EventKind, change: Option<(&str, Option<&str>, Option<&str>)>) -> EventPayload {
        EventPayload {
            event,
            at: chrono::NaiveDate::from_ymd_opt(2026, 11, 21)
                .unwrap()
                .and_hms_opt(10, 0, 0)
                .unwrap(),
            actor: ada(),
            incident: IncidentSnapshot {
                number: 12,
                title: "Card payments failing".into(),
                severity: "SEV1".into(),
                status: "investigating".into(),
                services: vec!["checkout".into()],
                summary: "Declines at **40%**.\nSince 09:50.\n\nRollback started.".into(),
                declared_by: ada(),
                lead: None,
                drill: false,
                declared_at: chrono::NaiveDate::from_ymd_opt(2026, 11, 21)
                    .unwrap()
                    .and_hms_opt(10, 0, 0)
                    .unwrap(),
                url: "https://rb.example.com/incidents/12".into(),
                bridge_url: Some("https://meet.example.com/inc-12".into()),
                latest_update: None,
                closed_reason: None,
                merged_into: None,
            },
            change: change.map(|(field, old, new)| Change {
                field: field.into(),
                old: old.map(str::to_string),
                new: new.map(str::to_string),
            }),
            note: None,
            email_to: vec![],
            step: None,
            follow_up: None,
            role: None,
        }
    }

    #[test]
    fn priorities_follow_the_config_then_the_position() {
        let n = notifier("");
        let names: Vec<_> = ["SEV0", "SEV1", "SEV2", "SEV3", "SEV4", "unknown"]
            .iter()
            .map(|s| n.priority(s).unwrap())
            .collect();
        assert_eq!(names, ["Highest", "High", "Medium", "Low", "Lowest", "Highest"]);

        let n = notifier("[priorities]\nSEV0 = \"P1\"\nSEV2 = \"P3\"\n");
        assert_eq!(n.priority("SEV0").unwrap(), "P1");
        assert_eq!(n.priority("SEV1").unwrap(), "High", "unlisted levels map by position");
        assert_eq!(n.priority("SEV2").unwrap(), "P3");
        assert_eq!(
            n.priority("unknown").unwrap(),
            "P1",
            "unknown goes with the first level"
        );

        let n = notifier("[priorities]\nunknown = \"Medium\"\n");
        assert_eq!(n.priority("unknown").unwrap(), "Medium");

        let n = notifier("set_priority = false\n");
        assert_eq!(n.priority("SEV0"), None);
        assert!(
            n.create_body(&payload(EventKind::Declared, None))["fields"]
                .get("priority")
                .is_none()
        );
    }

    #[test]
    fn follow_up_settings_are_checked_and_named() {
        let settings = Settings::default();
        let check = |extra: &str| {
            jira_settings(extra)
                .validate("integrations.jira", &settings)
                .map_err(|e| e.to_string())
        };
        assert!(check("follow_ups = true\n").is_ok());
        for (extra, key) in [
            (
                "follow_up_sync_seconds = 5\n",
                "integrations.jira.follow_up_sync_seconds",
            ),
            (
                "follow_up_sync_seconds = 100000\n",
                "integrations.jira.follow_up_sync_seconds",
            ),
            ("follow_up_link_type = \" \"\n", "integrations.jira.follow_up_link_type"),
            (
                "follow_up_issue_type = \"\"\n",
                "integrations.jira.follow_up_issue_type",
            ),
        ] {
            let e = check(extra).unwrap_err();
            assert!(e.contains(key), "{extra}: {e}");
        }
        assert!(
            toml::from_str::<JiraSettings>("follow_upps = true").is_err(),
            "unknown keys are refused"
        );
    }

    #[test]
    fn a_follow_up_issue_without_a_ticket_to_link_has_no_link() {
        let n = notifier("follow_up_due_date = false\nlabels = [\"incident\"]\n");
        let mut p = payload(EventKind::FollowUpAdded, None);
        p.incident.drill = true;
        let fu = FollowUpPayload {
            id: 3,
            title: "Add a canary".into(),
            owner_name: "Payments team".into(),
            owner_email: None,
            due_on: "2026-12-01".into(),
        };
        p.follow_up = Some(fu.clone());
        let body = n.follow_up_body(&p, &fu, None);
        assert!(body.get("update").is_none());
        assert!(body["fields"].get("duedate").is_none());
        assert_eq!(
            body["fields"]["issuetype"],
            json!({ "name": "Task" }),
            "issue_type by default"
        );
        let label = format!("redbutton-{}-fu3", p.incident.external_key());
        assert_eq!(
            body["fields"]["labels"],
            json!(["redbutton", "redbutton-follow-up", label, "incident", "drill"])
        );
        assert_eq!(body["fields"]["summary"], "INC-12 follow-up: Add a canary");
    }

    #[test]
    fn more_levels_than_stock_priorities_end_at_lowest() {
        let mut settings = Settings::default();
        let mut extra = settings.severities[4].clone();
        extra.id = "SEV5".into();
        settings.severities.push(extra);
        let map = priority_map(&settings, &jira_settings(""));
        assert_eq!(map["SEV4"], "Lowest");
        assert_eq!(map["SEV5"], "Lowest");
    }

    #[test]
    fn adf_is_a_doc_of_paragraphs_lists_and_linked_text() {
        let doc = to_adf(&[
            Block::Heading(3, vec![Inline::Text("Summary".into())]),
            Block::Paragraph(vec![
                Inline::Strong("Page:".into()),
                Inline::Text(" ".into()),
                Inline::Link {
                    text: "INC-1".into(),
                    href: "https://rb.example.com/incidents/1".into(),
                },
                Inline::Text(String::new()),
            ]),
            Block::Bullets(vec![vec![Inline::Text("one".into())]]),
            Block::Bullets(vec![]),
            Block::Verbatim("a\r\nb  \n\n\n c\n".into()),
            Block::Verbatim("  \n".into()),
        ]);
        assert_eq!(
            doc,
            json!({
                "type": "doc",
                "version": 1,
                "content": [
                    { "type": "heading", "attrs": { "level": 3 }, "content": [{ "type": "text", "text": "Summary" }] },
                    { "type": "paragraph", "content": [
                        { "type": "text", "text": "Page:", "marks": [{ "type": "strong" }] },
                        { "type": "text", "text": " " },
                        { "type": "text", "text": "INC-1", "marks": [
                            { "type": "link", "attrs": { "href": "https://rb.example.com/incidents/1" } }
                        ] }
                    ] },
                    { "type": "bulletList", "content": [
                        { "type": "listItem", "content": [
                            { "type": "paragraph", "content": [{ "type": "text", "text": "one" }] }
                        ] }
                    ] },
                    { "type": "paragraph", "content": [
                        { "type": "text", "text": "a" }, { "type": "hardBreak" }, { "type": "text", "text": "b" }
                    ] },
                    { "type": "paragraph", "content": [{ "type": "text", "text": " c" }] }
                ]
            })
        );
    }

    #[test]
    fn adf_text_is_never_empty_nor_multi_line() {
        let doc = to_adf(&[Block::Paragraph(vec![
            Inline::Text("two\nlines".into()),
            Inline::Strong(String::new()),
            Inline::Link {
                text: String::new(),
                href: "https://x.example".into(),
            },
        ])]);
        let content = doc["content"][0]["content"].as_array().unwrap();
        assert_eq!(content.len(), 2);
        assert_eq!(content[0]["text"], "two lines");
        assert_eq!(
            content[1]["text"], "https://x.example",
            "an empty link text shows the address"
        );
    }

    #[test]
    fn the_description_says_what_happened_in_adf() {
        let n = notifier("");
        let doc = n.render(&n.description(&payload(EventKind::Declared, None)));
        let text = doc.to_string();
        for needle in [
            "Ada Lovelace declared ",
            "\"What:\"",
            " Card payments failing",
            " SEV1 (Major)",
            " investigating",
            " Checkout",
            " Ada Lovelace (ada@example.com)",
            " nobody yet",
            "Declines at **40%**.",
            "https://rb.example.com/incidents/12",
            "https://meet.example.com/inc-12",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
        assert_eq!(doc["type"], "doc");
        assert_eq!(doc["version"], 1);
    }

    #[test]
    fn server_text_is_wiki_markup_with_escaped_values() {
        let n = notifier("flavor = \"server\"\nauth = \"bearer\"\n");
        let mut p = payload(EventKind::Declared, None);
        p.incident.title = "Checkout [EU] *down*".into();
        p.incident.summary = "Line {noformat} one\nline two".into();
        let Value::String(wiki) = n.render(&n.description(&p)) else {
            panic!("server bodies are strings")
        };
        assert!(
            wiki.starts_with("Ada Lovelace declared [INC-12|https://rb.example.com/incidents/12].\n\n"),
            "{wiki}"
        );
        assert!(wiki.contains("\n* *What:* Checkout \\[EU\\] \\*down\\*\n"), "{wiki}");
        assert!(wiki.contains("* *Severity:* SEV1 (Major)\n"), "{wiki}");
        assert!(
            wiki.contains("h3. Summary\n\n{noformat}\nLine { noformat} one\nline two\n{noformat}"),
            "{wiki}"
        );
        assert!(wiki.ends_with(
            "*Incident page:* [https://rb.example.com/incidents/12]\n\n*Conference bridge:* [https://meet.example.com/inc-12]"
        ), "{wiki}");
    }

    #[test]
    fn comments_name_the_change_and_who_made_it() {
        let n = notifier("");
        let p = payload(
            EventKind::SeverityChanged,
            Some(("severity", Some("SEV2"), Some("SEV1"))),
        );
        assert_eq!(
            n.comment(&p)[0],
            Block::Paragraph(vec![
                Inline::Text("Ada Lovelace changed the severity from ".into()),
                Inline::Strong("SEV2 (Significant)".into()),
                Inline::Text(" to ".into()),
                Inline::Strong("SEV1 (Major)".into()),
                Inline::Text(".".into()),
            ])
        );
        let p = payload(EventKind::LeadChanged, Some(("lead", None, Some("Grace Hopper"))));
        assert_eq!(
            to_wiki(&n.comment(&p)),
            "Ada Lovelace changed the lead from *nobody* to *Grace Hopper*.\n\n*Incident page:* [https://rb.example.com/incidents/12]"
        );
        let mut p = payload(EventKind::RoleChanged, Some(("comms", Some("Grace Hopper"), None)));
        p.role = Some(crate::notifiers::RoleChange {
            id: "comms".into(),
            name: "Comms lead".into(),
            description: "Keeps stakeholders informed.".into(),
            holder: None,
        });
        assert_eq!(
            to_wiki(&n.comment(&p)),
            "Ada Lovelace changed the comms lead from *Grace Hopper* to *nobody*.\n\n*Incident page:* [https://rb.example.com/incidents/12]"
        );
        let mut p = payload(EventKind::NoteAdded, None);
        p.note = Some("Paged the bank.".into());
        assert_eq!(
            n.comment(&p)[..2],
            [
                Block::Paragraph(vec![Inline::Text("Ada Lovelace added a note:".into())]),
                Block::Verbatim("Paged the bank.".into())
            ]
        );
    }

    #[test]
    fn declining_and_merging_close_the_ticket_and_say_why() {
        let n = notifier("");
        let mut p = payload(
            EventKind::StatusChanged,
            Some(("status", Some("investigating"), Some("declined"))),
        );
        p.incident.status = "declined".into();
        p.incident.closed_reason = Some("A test alert".into());
        assert_eq!(n.transition_for(&p).unwrap().0, "resolve");
        assert_eq!(
            to_wiki(&n.comment(&p)),
            "Ada Lovelace changed the status from *investigating* to *declined*.\n\n\
             *Not an incident. Reason:* A test alert\n\n*Incident page:* [https://rb.example.com/incidents/12]"
        );
        let mut p = payload(
            EventKind::StatusChanged,
            Some(("status", Some("mitigated"), Some("merged"))),
        );
        p.incident.status = "merged".into();
        p.incident.merged_into = Some(crate::notifiers::MergedInto {
            number: 7,
            url: "https://rb.example.com/incidents/7".into(),
        });
        assert_eq!(n.transition_for(&p).unwrap().0, "resolve");
        assert!(
            to_wiki(&n.comment(&p)).contains(
                "INC-12 is a duplicate of [INC-7|https://rb.example.com/incidents/7], where the work goes on."
            ),
            "{}",
            to_wiki(&n.comment(&p))
        );
        let p = payload(
            EventKind::StatusChanged,
            Some(("status", Some("declined"), Some("investigating"))),
        );
        assert_eq!(n.transition_for(&p).unwrap().0, "reopen");
    }

    #[test]
    fn resolve_and_reopen_pick_their_transitions() {
        let n = notifier("");
        let resolve = payload(
            EventKind::StatusChanged,
            Some(("status", Some("mitigated"), Some("resolved"))),
        );
        assert_eq!(n.transition_for(&resolve).unwrap().0, "resolve");
        let reopen = payload(
            EventKind::StatusChanged,
            Some(("status", Some("resolved"), Some("identified"))),
        );
        assert_eq!(n.transition_for(&reopen).unwrap().0, "reopen");
        let other = payload(
            EventKind::StatusChanged,
            Some(("status", Some("investigating"), Some("identified"))),
        );
        assert!(n.transition_for(&other).is_none());

        let offered = vec![
            Transition {
                id: "11".into(),
                name: "Start Progress".into(),
            },
            Transition {
                id: "31".into(),
                name: "resolve issue".into(),
            },
        ];
        assert_eq!(pick_transition(&offered, &n.cfg.resolve_transitions).unwrap().id, "31");
        assert!(pick_transition(&offered, &n.cfg.reopen_transitions).is_none());
    }

    #[test]
    fn the_create_body_carries_labels_priority_and_service_fields() {
        let n = notifier(
            "labels = [\"ops\", \"redbutton\"]\n[services.checkout]\nproject = \"PAY\"\n[services.checkout.fields]\ncustomfield_10010 = \"checkout\"\ncomponents = [{ name = \"Checkout\" }]\ncustomfield_2 = 3\n",
        );
        let mut p = payload(EventKind::Declared, None);
        p.incident.drill = true;
        let body = n.create_body(&p);
        let f = &body["fields"];
        assert_eq!(f["project"], json!({ "key": "PAY" }));
        assert_eq!(n.target(&p).unwrap(), "project PAY");
        assert_eq!(f["issuetype"], json!({ "name": "Task" }));
        assert_eq!(
            f["summary"], "[DRILL] INC-12: Card payments failing",
            "a drill says so in the summary"
        );
        assert_eq!(f["priority"], json!({ "name": "High" }));
        let label = format!("redbutton-{}", p.incident.external_key());
        assert!(label.starts_with("redbutton-inc-12-"));
        assert_eq!(f["labels"], json!(["redbutton", label, "ops", "drill"]));
        assert_eq!(f["customfield_10010"], "checkout");
        assert_eq!(f["components"], json!([{ "name": "Checkout" }]));
        assert_eq!(f["customfield_2"], 3);
    }

    #[test]
    fn summaries_are_cut_to_255_utf16_units() {
        assert_eq!(issue_summary("INC-1", "Short\ntitle"), "INC-1: Short title");
        let long = "😀".repeat(200);
        let s = issue_summary("INC-1", &long);
        assert!(s.encode_utf16().count() <= 255, "{}", s.encode_utf16().count());
        assert!(s.ends_with('\u{2026}'));
        assert!(s.starts_with("INC-1: 😀"));
    }

    #[test]
    fn jira_error_bodies_are_read_into_one_line() {
        let body = br#"{"errorMessages":["Nope."],"errors":{"customfield_1":"Field cannot be set."}}"#;
        assert_eq!(
            jira_messages(body).unwrap(),
            "Nope.; customfield_1: Field cannot be set."
        );
        assert_eq!(jira_messages(b"<html>"), None);
        assert_eq!(jira_messages(br#"{"errorMessages":[],"errors":{}}"#), None);
    }

    #[test]
    fn toml_values_become_json() {
        let t: toml::Table = toml::from_str("a = 1.5\nb = true\nc = 1979-05-27\nd = { e = [1, \"x\"] }").unwrap();
        assert_eq!(
            toml_to_json(&toml::Value::Table(t)),
            json!({ "a": 1.5, "b": true, "c": "1979-05-27", "d": { "e": [1, "x"] } })
        );
    }

    #[test]
    fn auth_headers_follow_the_scheme() {
        let n = notifier("");
        let expected = base64::engine::general_purpose::STANDARD.encode("bot@example.com:t0ken");
        assert_eq!(n.authorization.to_str().unwrap(), format!("Basic {expected}"));
        assert!(n.authorization.is_sensitive());
        let n = notifier("auth = \"bearer\"\nflavor = \"server\"\n");
        assert_eq!(n.authorization.to_str().unwrap(), "Bearer t0ken");
        assert_eq!(n.api("issue"), "https://example.atlassian.net/rest/api/2/issue");
        assert_eq!(n.browse("OPS-7"), "https://example.atlassian.net/browse/OPS-7");
        assert!(!format!("{n:?}").contains("t0ken"));
    }
}
