//! Microsoft Teams: an Adaptive Card posted to a channel through a Workflows webhook ("Post to a
//! channel when a webhook request is received"), for the declaration, each status change
//! (resolve, reopen and the closings included) and each status update.
//!
//! Workflows URLs carry their own signature (`sig=…`), so they are secrets: read from environment
//! variables named in the file, never logged, never shown (the incident page shows the channel's
//! name). Teams offers no idempotency key and no way to ask whether a post arrived, so delivery is
//! at least once: a post whose answer was lost (a timeout after Teams took it) is sent again.

use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::{self, Answer};
use super::{Delivered, Delivery, EventPayload, IncidentSnapshot, Notifier, NotifyError};
use crate::config::{ConfigError, Settings, bad, check_env_name};
use crate::domain::{EventKind, Status};

/// The name used in routing and on the incident page.
pub const NAME: &str = "teams";

/// `[integrations.teams]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsSettings {
    /// Environment variable with the Workflows URL for incidents no service channel takes.
    #[serde(default)]
    pub default_url_env: Option<String>,
    /// What the default channel is called on the incident page.
    #[serde(default = "default_channel_name")]
    pub default_name: String,
    /// Channels per service: an incident goes to the channel of each of its services that has
    /// one, and to the default channel when none has.
    #[serde(default)]
    pub channels: Vec<TeamsChannel>,
}

/// One `[[integrations.teams.channels]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsChannel {
    /// A configured service id.
    pub service: String,
    /// Environment variable with this channel's Workflows URL.
    pub url_env: String,
    /// What the channel is called on the incident page; default "<service name> channel".
    #[serde(default)]
    pub name: Option<String>,
}

fn default_channel_name() -> String {
    "Incidents channel".into()
}

fn check_name(key: &str, name: &str) -> Result<(), ConfigError> {
    if name.trim().is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
        Err(bad(key, "use one line of 1 to 80 characters"))
    } else {
        Ok(())
    }
}

impl TeamsSettings {
    /// Checks the section.
    pub fn validate(&self, key: &str, settings: &Settings) -> Result<(), ConfigError> {
        if self.default_url_env.is_none() && self.channels.is_empty() {
            return Err(bad(
                key,
                "name default_url_env or at least one [[integrations.teams.channels]] entry",
            ));
        }
        if let Some(var) = &self.default_url_env {
            check_env_name(&format!("{key}.default_url_env"), var)?;
        }
        check_name(&format!("{key}.default_name"), &self.default_name)?;
        let mut seen = std::collections::HashSet::new();
        for (i, c) in self.channels.iter().enumerate() {
            let k = format!("{key}.channels[{i}]");
            super::common::check_service(&format!("{k}.service"), &c.service, settings)?;
            if !seen.insert(c.service.as_str()) {
                return Err(bad(
                    format!("{k}.service"),
                    format!("service {} already has a channel", c.service),
                ));
            }
            check_env_name(&format!("{k}.url_env"), &c.url_env)?;
            if let Some(n) = &c.name {
                check_name(&format!("{k}.name"), n)?;
            }
        }
        Ok(())
    }

    /// The secrets it names.
    pub fn secret_envs(&self) -> Vec<(String, String)> {
        let mut v = Vec::new();
        if let Some(var) = &self.default_url_env {
            v.push(("integrations.teams.default_url_env".to_string(), var.clone()));
        }
        for (i, c) in self.channels.iter().enumerate() {
            v.push((format!("integrations.teams.channels[{i}].url_env"), c.url_env.clone()));
        }
        v
    }
}

// ---------------------------------------------------------------------------------------------
// The card.

/// Escapes people's text for an Adaptive Card TextBlock or fact, whose Markdown subset would
/// otherwise turn `[x](url)` into a link that hides its address, `**` into bold, or a leading `- `,
/// `# ` or `1. ` into a list or heading: a backslash goes before every character that shapes
/// inline Markdown, and before a block marker at the start. Line breaks become spaces (titles and
/// facts are one line) and other control characters are dropped. A bare address stays visible
/// as itself (Teams may link it, but cannot disguise it).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\r' | '\n' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    let indent = out.len() - out.trim_start().len();
    let (lead, rest) = out.split_at(indent);
    if rest.starts_with(['#', '-', '+', '=']) {
        return format!("{lead}\\{rest}");
    }
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && rest[digits..].starts_with(['.', ')']) {
        return format!("{lead}{}\\{}", &rest[..digits], &rest[digits..]);
    }
    out
}

/// Like [`escape`], keeping line breaks (a status update's paragraphs).
fn escape_lines(text: &str) -> String {
    text.replace("\r\n", "\n")
        .split('\n')
        .map(escape)
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn status_label(raw: &str) -> String {
    Status::parse(raw)
        .map(|s| s.label().to_string())
        .unwrap_or_else(|| raw.to_string())
}

fn text_block(text: String, strong: bool) -> Value {
    let mut b = json!({"type": "TextBlock", "text": text, "wrap": true});
    if strong {
        b["weight"] = json!("Bolder");
        b["size"] = json!("Medium");
    }
    b
}

fn fact(title: &str, value: String) -> Value {
    json!({"title": title, "value": value})
}

/// What happened, in one line (escaped).
fn headline(p: &EventPayload) -> String {
    let who = escape(&p.actor.name);
    let snap = &p.incident;
    match p.event {
        EventKind::Declared => format!("Declared by {who}."),
        EventKind::StatusUpdate => format!("Status update from {who}."),
        _ => {
            let old = p.change.as_ref().and_then(|c| c.old.as_deref()).map(status_label);
            match (snap.closure_words(), old) {
                (Some(words), _) => format!("{}, by {who}.", escape(&capitalised(&words))),
                (None, Some(old)) => format!(
                    "Status: {} \u{2192} {}, by {who}.",
                    escape(&old),
                    escape(&status_label(&snap.status))
                ),
                (None, None) => format!("Status: {}, by {who}.", escape(&status_label(&snap.status))),
            }
        }
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn title_line(snap: &IncidentSnapshot) -> String {
    format!(
        "{}{}: {}",
        if snap.drill { "[DRILL] " } else { "" },
        snap.reference(),
        escape(&snap.title)
    )
}

/// The Adaptive Card (version 1.4) for an event.
pub fn card(p: &EventPayload) -> Value {
    let snap = &p.incident;
    let mut body = vec![text_block(title_line(snap), true), text_block(headline(p), false)];
    let mut facts = vec![
        fact("Severity", escape(&snap.severity)),
        fact("Status", escape(&status_label(&snap.status))),
        fact(
            "Services",
            if snap.services.is_empty() {
                "none named".into()
            } else {
                escape(&snap.services.join(", "))
            },
        ),
        fact(
            "Lead",
            snap.lead
                .as_ref()
                .map(|l| escape(&l.name))
                .unwrap_or_else(|| "nobody yet".into()),
        ),
    ];
    if p.event == EventKind::StatusUpdate
        && let Some(u) = &snap.latest_update
    {
        body.push(text_block("**What we know**".into(), false));
        body.push(text_block(escape_lines(&u.known), false));
        body.push(text_block("**What we are doing**".into(), false));
        body.push(text_block(escape_lines(&u.doing), false));
        facts.push(fact(
            "Next update",
            u.next_update_at
                .map(|t| t.format("%H:%M UTC").to_string())
                .unwrap_or_else(|| "none planned".into()),
        ));
    }
    body.push(json!({"type": "FactSet", "facts": facts}));
    json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": [{"type": "Action.OpenUrl", "title": "Open incident", "url": snap.url}],
    })
}

/// The message a Workflows webhook takes: one Adaptive Card attachment.
pub fn message(p: &EventPayload) -> Value {
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card(p),
        }],
    })
}

// ---------------------------------------------------------------------------------------------
// The notifier.

/// One destination with its URL read.
struct Destination {
    /// Service id, or `None` for the default channel.
    service: Option<String>,
    name: String,
    url: String,
}

/// Posts cards to Teams channels.
pub struct TeamsNotifier {
    default: Option<Destination>,
    channels: Vec<Destination>,
    client: reqwest::Client,
}

impl std::fmt::Debug for TeamsNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: the URLs are secrets.
        f.debug_struct("TeamsNotifier")
            .field("channels", &self.names())
            .finish_non_exhaustive()
    }
}

fn read_url(settings: &Settings, key: &str, var: &str) -> anyhow::Result<String> {
    let url = super::common::secret(settings, var).map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
    match url::Url::parse(&url) {
        Ok(u) if (u.scheme() == "https" || u.scheme() == "http") && u.host().is_some() => Ok(url),
        _ => anyhow::bail!(
            "{key}: environment variable {var} does not hold an http(s) URL (the value is not repeated here: it is a secret)"
        ),
    }
}

impl TeamsNotifier {
    /// The channels' display names (never their URLs, which are secrets).
    fn names(&self) -> Vec<&str> {
        self.default
            .iter()
            .chain(&self.channels)
            .map(|d| d.name.as_str())
            .collect()
    }

    /// Builds it, reading every URL (the error names the key and variable, never the value).
    pub fn new(teams: &TeamsSettings, settings: &Settings) -> anyhow::Result<Self> {
        let default = match &teams.default_url_env {
            Some(var) => Some(Destination {
                service: None,
                name: teams.default_name.clone(),
                url: read_url(settings, "integrations.teams.default_url_env", var)?,
            }),
            None => None,
        };
        let mut channels = Vec::new();
        for (i, c) in teams.channels.iter().enumerate() {
            let service_name = settings
                .services
                .iter()
                .find(|s| s.id == c.service)
                .map(|s| s.name.clone())
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| c.service.clone());
            channels.push(Destination {
                service: Some(c.service.clone()),
                name: c.name.clone().unwrap_or_else(|| format!("{service_name} channel")),
                url: read_url(
                    settings,
                    &format!("integrations.teams.channels[{i}].url_env"),
                    &c.url_env,
                )?,
            });
        }
        let timeout =
            std::time::Duration::from_millis((settings.outbox.delivery_timeout_ms.saturating_mul(9) / 10).max(100));
        Ok(Self {
            default,
            channels,
            client: http::client(timeout)?,
        })
    }

    /// Where an incident's posts go: each of its services' channels, else the default.
    fn destinations(&self, snap: &IncidentSnapshot) -> Vec<&Destination> {
        let mut out: Vec<&Destination> = self
            .channels
            .iter()
            .filter(|d| d.service.as_ref().is_some_and(|s| snap.services.contains(s)))
            .collect();
        if out.is_empty() {
            out.extend(self.default.iter());
        }
        out
    }

    /// A non-2xx answer into retry-or-not, with the URL's path and query (the signature) blanked
    /// out of anything the body repeats.
    fn failure(&self, d: &Destination, answer: &Answer) -> NotifyError {
        let vendor = format!("Teams ({})", d.name);
        let err = http::status_error(&vendor, answer);
        let Ok(u) = url::Url::parse(&d.url) else {
            return err;
        };
        err.map_message(|m| {
            let mut m = m;
            if let Some(q) = u.query().filter(|q| !q.is_empty()) {
                m = m.replace(q, "<query>");
            }
            if u.path().len() > 1 {
                m = m.replace(u.path(), "<path>");
            }
            m
        })
    }

    async fn post(&self, d: &Destination, body: &[u8]) -> Result<(), NotifyError> {
        let request = self
            .client
            .post(&d.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        // Workflows answer 202 Accepted (old connector webhooks 200 "1"): any 2xx is done.
        let answer = http::send_for_status(request, &format!("Teams ({})", d.name)).await?;
        if answer.status.is_success() {
            Ok(())
        } else {
            Err(self.failure(d, &answer))
        }
    }
}

impl Notifier for TeamsNotifier {
    fn name(&self) -> &str {
        NAME
    }

    fn deliver<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<Delivered, NotifyError>> {
        Box::pin(async move {
            let body = serde_json::to_vec(&message(&delivery.payload))
                .map_err(|e| NotifyError::Permanent(format!("encoding the card: {e}")))?;
            for d in self.destinations(&delivery.payload.incident) {
                // With several channels, one that took the post is not posted to again when
                // another fails and the delivery is retried.
                let sent = format!(
                    "sent:{}:{}",
                    delivery.idempotency_key,
                    d.service.as_deref().unwrap_or("default")
                );
                if delivery.store.get(NAME, &sent).await?.is_some() {
                    continue;
                }
                self.post(d, &body).await?;
                delivery.store.put(NAME, &sent, "1", None).await?;
            }
            Ok(Delivered::default())
        })
    }

    fn accepts(&self, payload: &EventPayload) -> bool {
        matches!(
            payload.event,
            EventKind::Declared | EventKind::StatusChanged | EventKind::StatusUpdate
        ) && !self.destinations(&payload.incident).is_empty()
    }

    fn target(&self, payload: &EventPayload) -> Option<String> {
        let names: Vec<&str> = self
            .destinations(&payload.incident)
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        Some(format!("Teams: {}", names.join(", ")))
    }

    fn probe(&self) -> BoxFuture<'_, Result<String, String>> {
        // A Workflows webhook has no read-only call; a test post would reach the channel.
        Box::pin(async move { Ok(format!("posts to {} (nothing was sent)", self.names().join(", "))) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_and_links_in_user_text_are_escaped() {
        assert_eq!(
            escape("[click](https://evil.example)"),
            "\\[click\\](https://evil.example)"
        );
        assert_eq!(
            escape("**bold** _it_ `code` ~x~"),
            "\\*\\*bold\\*\\* \\_it\\_ \\`code\\` \\~x\\~"
        );
        assert_eq!(escape("- not a list\nnor this"), "\\- not a list nor this");
        assert_eq!(escape("12. not a list"), "12\\. not a list");
        assert_eq!(escape("# not a heading"), "\\# not a heading");
        assert_eq!(escape("a\\b <at>x</at>"), "a\\\\b \\<at\\>x\\</at\\>");
        assert_eq!(escape("plain words 4.2 - fine"), "plain words 4.2 - fine");
    }
}
