//! Notifiers: one small trait every integration implements, the event payload they receive, and
//! the registry built from configuration.
//!
//! A notifier is called by the outbox worker, outside any database transaction, with a time
//! limit. It returns what it created outside (an id and a link) or says whether the failure is
//! worth retrying. It must be idempotent for a given [`Delivery::idempotency_key`]: the worker
//! guarantees at most one success is recorded, and the key lets the external system (or the
//! notifier, by looking first) recognise a repeat after a crash.

pub mod common;
pub mod email;
pub mod http;
pub mod jira;
pub mod opsgenie;
pub mod pagerduty;
pub mod slack;
pub mod slack_users;
pub mod store;
pub mod teams;
pub mod webhook;

pub use store::{Awaited, DeliveryStatus, RefStore, StoredRef};

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDateTime;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::domain::{Actor, EventKind};

/// The incident as it was when the event happened, so retries send what was true then.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IncidentSnapshot {
    /// Human number.
    pub number: i64,
    /// Title.
    pub title: String,
    /// Severity id.
    pub severity: String,
    /// Status.
    pub status: String,
    /// Affected services.
    pub services: Vec<String>,
    /// Markdown summary.
    pub summary: String,
    /// Declarer.
    pub declared_by: Actor,
    /// Lead, if any.
    pub lead: Option<Actor>,
    /// Drill flag.
    pub drill: bool,
    /// When it was declared (UTC).
    pub declared_at: NaiveDateTime,
    /// Link to the incident page.
    pub url: String,
    /// The conference bridge for this incident (from its service, or the default), if any.
    #[serde(default)]
    pub bridge_url: Option<String>,
    /// The latest status update for stakeholders, if any (for a `status_update` event, the one
    /// just posted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_update: Option<UpdateNote>,
    /// Why it was declined (closed as not an incident), when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_reason: Option<String>,
    /// The incident it was merged into, when it was closed as a duplicate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<MergedInto>,
}

/// A status update as integrations see it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UpdateNote {
    /// When it was posted (UTC).
    pub at: NaiveDateTime,
    /// Who wrote it.
    pub author: Actor,
    /// What we know.
    pub known: String,
    /// What we are doing.
    pub doing: String,
    /// When the next update is due (UTC); `None`: no further update planned.
    pub next_update_at: Option<NaiveDateTime>,
}

/// The surviving incident a duplicate was merged into.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MergedInto {
    /// Its human number.
    pub number: i64,
    /// Link to its page.
    pub url: String,
}

impl MergedInto {
    /// `INC-7`.
    pub fn reference(&self) -> String {
        format!("INC-{}", self.number)
    }
}

impl IncidentSnapshot {
    /// Whether the incident is closed (resolved, declined or merged).
    pub fn is_closed(&self) -> bool {
        crate::domain::Status::is_closed_str(&self.status)
    }

    /// One sentence saying how a closed incident ended other than by resolving, for channel
    /// posts, pager notes and ticket comments: "declined as not an incident: <reason>" or
    /// "merged into INC-7 (<link>)". `None` for every other status.
    pub fn closure_words(&self) -> Option<String> {
        match self.status.as_str() {
            "declined" => Some(format!(
                "declined as not an incident: {}",
                self.closed_reason.as_deref().unwrap_or("no reason given")
            )),
            "merged" => Some(match &self.merged_into {
                Some(m) => format!("merged into {} ({})", m.reference(), m.url),
                None => "merged into another incident".into(),
            }),
            _ => None,
        }
    }

    /// `INC-42`.
    pub fn reference(&self) -> String {
        format!("INC-{}", self.number)
    }

    /// The name other systems know this incident by (PagerDuty dedup key, Opsgenie alias, Jira
    /// label): `inc-<number>-<6 hex>`, the hex from the declaration time, so two installs, or
    /// one whose database was reset, never share a key.
    pub fn external_key(&self) -> String {
        use sha2::Digest;
        let micros = self.declared_at.and_utc().timestamp_micros().to_string();
        let digest = hex::encode(sha2::Sha256::digest(micros.as_bytes()));
        format!("inc-{}-{}", self.number, &digest[..6])
    }
}

/// A field that changed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Change {
    /// Which field.
    pub field: String,
    /// Before.
    pub old: Option<String>,
    /// After.
    pub new: Option<String>,
}

/// What a notifier receives.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventPayload {
    /// What happened.
    pub event: EventKind,
    /// When (UTC).
    pub at: NaiveDateTime,
    /// Who did it.
    pub actor: Actor,
    /// The incident after the change.
    pub incident: IncidentSnapshot,
    /// The change, for change events.
    pub change: Option<Change>,
    /// The note text, for notes.
    pub note: Option<String>,
    /// Email recipients chosen by routing.
    #[serde(default)]
    pub email_to: Vec<String>,
    /// For a notifier's extra step (see [`Notifier::extra_steps`]), which one; `None` for the
    /// main delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The follow-up, for [`EventKind::FollowUpAdded`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<FollowUpPayload>,
    /// For [`EventKind::RoleChanged`], the role and who holds it now; `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<RoleChange>,
}

/// A follow-up as it was recorded, for the integration that opens an issue for it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FollowUpPayload {
    /// Its row id (stable; names it in the label).
    pub id: i64,
    /// What needs doing.
    pub title: String,
    /// Who owns it: a person or a team.
    pub owner_name: String,
    /// The owner's email, when the owner is a person given by email.
    pub owner_email: Option<String>,
    /// Due date, `YYYY-MM-DD`.
    pub due_on: String,
}

/// A role change: which role, what it is for, and its holder after the change. The previous
/// holder's name is in [`EventPayload::change`] (`old`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RoleChange {
    /// Role id from the configuration, e.g. `comms`.
    pub id: String,
    /// Display name, e.g. "Comms lead".
    pub name: String,
    /// Its one-line description.
    pub description: String,
    /// Who holds it now; `None` when it was left.
    pub holder: Option<Actor>,
}

impl RoleChange {
    /// The change in one sentence, without the description: "Ada Lovelace is now comms lead.",
    /// "Comms lead handed over from Grace Hopper to Ada Lovelace.", "Grace Hopper left the scribe
    /// role; nobody holds it." Someone acting for another person is named.
    pub fn sentence(&self, change: Option<&Change>, actor: &Actor) -> String {
        let role = crate::config::roles::in_sentence(&self.name);
        let old = change.and_then(|c| c.old.as_deref());
        match (&self.holder, old) {
            (Some(h), None) if h.email == actor.email => format!("{} is now {role}.", h.name),
            (Some(h), None) => format!("{} is now {role} (set by {}).", h.name, actor.name),
            (Some(h), Some(o)) => {
                let mut first = role.chars();
                let capital: String = first
                    .next()
                    .map(|c| c.to_uppercase().chain(first).collect())
                    .unwrap_or_default();
                let by = if h.email == actor.email || o == actor.name {
                    String::new()
                } else {
                    format!(" (by {})", actor.name)
                };
                format!("{capital} handed over from {o} to {}{by}.", h.name)
            }
            (None, Some(o)) if o == actor.name => format!("{o} left the {role} role; nobody holds it."),
            (None, Some(o)) => format!("{} took {o} off the {role} role; nobody holds it.", actor.name),
            (None, None) => format!("Nobody holds the {role} role."),
        }
    }
}

/// An extra delivery a notifier asks for besides the main one: its own row, run in its own
/// order (it neither waits for nor holds up the notifier's other deliveries), maybe later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraStep {
    /// Step name, passed back in [`EventPayload::step`].
    pub name: String,
    /// Run no sooner than this after the event.
    pub delay: std::time::Duration,
    /// What it does, for the incident page.
    pub target: String,
}

/// One delivery attempt handed to a notifier.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Outbox row id.
    pub id: i64,
    /// Stable across retries and restarts; unique per side effect.
    pub idempotency_key: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The incident's row id.
    pub incident_id: i64,
    /// The event.
    pub payload: EventPayload,
    /// What integrations stored for this incident (channel ids, ticket keys, in-flight markers).
    pub store: RefStore,
}

/// What a successful delivery created outside.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    /// The external object's id (message id, ticket key, channel id…).
    pub external_id: Option<String>,
    /// A link to it, if it has one a person can open.
    pub external_url: Option<String>,
}

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// Worth trying again later (network, timeouts, 5xx, rate limits).
    #[error("{0}")]
    Retryable(String),
    /// Will fail the same way every time (bad credentials, rejected address); dead-letter now.
    #[error("{0}")]
    Permanent(String),
    /// The vendor asked us to wait (HTTP 429 `Retry-After`); try again no sooner than that.
    #[error("{0}")]
    RetryAfter(String, std::time::Duration),
    /// Something this delivery needs is not there yet (another integration's ticket); try again
    /// shortly without using up an attempt.
    #[error("{0}")]
    Waiting(String),
}

impl NotifyError {
    /// The same outcome with its message rewritten (a prefix added, a secret blanked out).
    pub fn map_message(self, f: impl FnOnce(String) -> String) -> Self {
        match self {
            NotifyError::Retryable(m) => NotifyError::Retryable(f(m)),
            NotifyError::Permanent(m) => NotifyError::Permanent(f(m)),
            NotifyError::RetryAfter(m, wait) => NotifyError::RetryAfter(f(m), wait),
            NotifyError::Waiting(m) => NotifyError::Waiting(f(m)),
        }
    }
}

/// The contract every integration implements.
pub trait Notifier: Send + Sync + 'static {
    /// The name used in routing rules and on the incident page, e.g. `email`.
    fn name(&self) -> &str;

    /// Performs one delivery. Called concurrently for different deliveries, but never for two
    /// deliveries of one incident at once: those come in the order they were enqueued.
    fn deliver<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<Delivered, NotifyError>>;

    /// Whether this notifier takes an event that routing selected for it (a pager refuses
    /// drills, a webhook applies its own event filter). Decided when the event is enqueued.
    fn accepts(&self, _payload: &EventPayload) -> bool {
        true
    }

    /// Where the delivery goes, in words for the incident page (a channel, a project, a host).
    fn target(&self, _payload: &EventPayload) -> Option<String> {
        None
    }

    /// Extra deliveries to enqueue with the main one. `routed` names every notifier this event
    /// goes to (so one integration can wait for another's result, e.g. a ticket to link).
    fn extra_steps(&self, _payload: &EventPayload, _routed: &[String]) -> Vec<ExtraStep> {
        Vec::new()
    }

    /// The cheapest authenticated read the vendor offers, creating nothing: `Ok` with what it
    /// proved (e.g. the bot's name), or the exact reason it failed.
    fn probe(&self) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async { Ok("nothing to check".to_string()) })
    }
}

/// The notifiers of this process, by name.
#[derive(Clone, Default)]
pub struct Registry {
    notifiers: BTreeMap<String, Arc<dyn Notifier>>,
}

impl Registry {
    /// Builds the built-in notifiers that the configuration enables.
    pub fn from_settings(settings: &crate::config::Settings) -> anyhow::Result<Self> {
        let mut registry = Self::default();
        if let Some(email) = &settings.integrations.email {
            let password = email.password_env.as_deref().and_then(|v| settings.secret(v));
            registry.add(Arc::new(email::EmailNotifier::new(
                email,
                password,
                settings.outbox.delivery_timeout_ms,
            )?));
        }
        // Each integration adds itself here (one block each, in this order):
        // slack, jira, pagerduty, opsgenie, webhooks.
        if let Some(slack) = &settings.integrations.slack {
            registry.add(slack::build(slack, settings)?);
        }
        if let Some(jira) = &settings.integrations.jira {
            let token = common::secret(settings, &jira.token_env)?;
            registry.add(Arc::new(jira::JiraNotifier::new(
                jira,
                settings,
                &token,
                settings.outbox.delivery_timeout_ms,
            )?));
        }
        if let Some(pd) = &settings.integrations.pagerduty {
            registry.add(Arc::new(pagerduty::PagerDutyNotifier::new(pd, settings)?));
        }
        if let Some(og) = &settings.integrations.opsgenie {
            registry.add(Arc::new(opsgenie::OpsgenieNotifier::new(og, settings)?));
        }
        for (n, hook) in settings.integrations.webhooks.iter().enumerate() {
            let secret = common::secret(settings, &hook.secret_env)?;
            registry.add(Arc::new(webhook::WebhookNotifier::new(
                hook,
                &format!("integrations.webhooks[{n}]"),
                &secret,
                settings.outbox.delivery_timeout_ms,
            )?));
        }
        if let Some(teams) = &settings.integrations.teams {
            registry.add(Arc::new(teams::TeamsNotifier::new(teams, settings)?));
        }
        Ok(registry)
    }

    /// Adds (or replaces) a notifier.
    pub fn add(&mut self, notifier: Arc<dyn Notifier>) {
        self.notifiers.insert(notifier.name().to_string(), notifier);
    }

    /// Looks one up.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Notifier>> {
        self.notifiers.get(name).cloned()
    }

    /// Names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.notifiers.keys().cloned().collect()
    }

    /// Whether no notifier is configured.
    pub fn is_empty(&self) -> bool {
        self.notifiers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_sentences_name_who_acted_for_someone_else() {
        let ada = Actor {
            name: "Ada Lovelace".into(),
            email: "ada@example.com".into(),
        };
        let lin = Actor {
            name: "Lin Wu".into(),
            email: "lin@example.com".into(),
        };
        let role = |name: &str, holder: Option<&Actor>| RoleChange {
            id: "x".into(),
            name: name.into(),
            description: "d".into(),
            holder: holder.cloned(),
        };
        let change = |old: Option<&str>| Change {
            field: "x".into(),
            old: old.map(str::to_string),
            new: None,
        };
        let cases = [
            (
                role("Comms lead", Some(&ada)),
                None,
                &ada,
                "Ada Lovelace is now comms lead.",
            ),
            (
                role("Comms lead", Some(&lin)),
                None,
                &ada,
                "Lin Wu is now comms lead (set by Ada Lovelace).",
            ),
            (
                role("Scribe", Some(&lin)),
                Some("Ada Lovelace"),
                &ada,
                "Scribe handed over from Ada Lovelace to Lin Wu.",
            ),
            (
                role("Scribe", Some(&lin)),
                Some("Grace Hopper"),
                &ada,
                "Scribe handed over from Grace Hopper to Lin Wu (by Ada Lovelace).",
            ),
            (
                role("SME", None),
                Some("Lin Wu"),
                &lin,
                "Lin Wu left the SME role; nobody holds it.",
            ),
            (
                role("SME", None),
                Some("Lin Wu"),
                &ada,
                "Ada Lovelace took Lin Wu off the SME role; nobody holds it.",
            ),
        ];
        for (r, old, actor, expected) in cases {
            assert_eq!(r.sentence(Some(&change(old)), actor), expected);
        }
    }

    #[test]
    fn external_keys_carry_the_number_and_a_hash_of_the_declaration_time() {
        let at = chrono::DateTime::from_timestamp_micros(1_795_237_200_123_456)
            .unwrap()
            .naive_utc();
        let snap = IncidentSnapshot {
            number: 42,
            title: "t".into(),
            severity: "SEV1".into(),
            status: "investigating".into(),
            services: vec![],
            summary: String::new(),
            declared_by: Actor {
                name: "a".into(),
                email: "a@example.com".into(),
            },
            lead: None,
            drill: false,
            declared_at: at,
            url: "http://x/incidents/42".into(),
            bridge_url: None,
            latest_update: None,
            closed_reason: None,
            merged_into: None,
        };
        // sha256("1795237200123456") starts with d04be5 (computed with Python's hashlib).
        assert_eq!(snap.external_key(), "inc-42-d04be5");
        let later = IncidentSnapshot {
            declared_at: at + chrono::Duration::microseconds(1),
            ..snap.clone()
        };
        assert_ne!(
            later.external_key(),
            snap.external_key(),
            "a reset database's INC-42 differs"
        );

        // How a closing other than a resolve is put into words.
        assert_eq!(snap.closure_words(), None);
        assert!(!snap.is_closed());
        let declined = IncidentSnapshot {
            status: "declined".into(),
            closed_reason: Some("a test alert".into()),
            ..snap.clone()
        };
        assert!(declined.is_closed());
        assert_eq!(
            declined.closure_words().as_deref(),
            Some("declined as not an incident: a test alert")
        );
        let merged = IncidentSnapshot {
            status: "merged".into(),
            merged_into: Some(MergedInto {
                number: 7,
                url: "http://x/incidents/7".into(),
            }),
            ..snap.clone()
        };
        assert_eq!(
            merged.closure_words().as_deref(),
            Some("merged into INC-7 (http://x/incidents/7)")
        );
    }
}
