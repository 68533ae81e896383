//! What the API reads and writes. Requests refuse unknown fields; times are RFC 3339 in UTC.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::db::models::{IncidentRow, OutboxRow, TimelineEntryRow};
use crate::domain::Status;
use crate::services::lifecycle::lead_of;
use crate::services::queries::IncidentSummary;
use crate::state::AppState;

/// A stored time, as UTC.
fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatusName {
    /// Declared; the cause is not known yet.
    Investigating,
    /// The cause is known.
    Identified,
    /// The impact is over; follow-up may continue.
    Mitigated,
    /// Closed.
    Resolved,
    /// Closed as not an incident (`closed_reason` says why). Set on the incident page, not
    /// through `/status`.
    Declined,
    /// Closed as a duplicate of the incident in `merged_into`. Final. Set on the incident page,
    /// not through `/status`.
    Merged,
}

impl StatusName {
    /// The domain status.
    pub fn to_domain(self) -> Status {
        match self {
            StatusName::Investigating => Status::Investigating,
            StatusName::Identified => Status::Identified,
            StatusName::Mitigated => Status::Mitigated,
            StatusName::Resolved => Status::Resolved,
            StatusName::Declined => Status::Declined,
            StatusName::Merged => Status::Merged,
        }
    }

    /// From the domain status.
    pub fn from_domain(s: Status) -> Self {
        match s {
            Status::Investigating => StatusName::Investigating,
            Status::Identified => StatusName::Identified,
            Status::Mitigated => StatusName::Mitigated,
            Status::Resolved => StatusName::Resolved,
            Status::Declined => StatusName::Declined,
            Status::Merged => StatusName::Merged,
        }
    }
}

/// A person, as recorded on an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Person {
    /// Display name.
    pub name: String,
    /// Email address.
    pub email: String,
}

/// An incident.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Incident {
    /// The incident's number (INC-`number`).
    pub number: i64,
    /// One-line title.
    pub title: String,
    /// A configured severity id, or `unknown`.
    pub severity: String,
    /// Where it stands.
    pub status: StatusName,
    /// Affected service ids, in name order.
    pub services: Vec<String>,
    /// Markdown summary; may be empty.
    pub summary: String,
    /// Who declared it.
    pub declared_by: Person,
    /// Who leads it, if anyone.
    pub lead: Option<Person>,
    /// A drill, not a real incident.
    pub drill: bool,
    /// When impact started, if known.
    pub impact_started_at: Option<DateTime<Utc>>,
    /// When it was declared.
    pub declared_at: DateTime<Utc>,
    /// When the problem was noticed, if recorded.
    pub detected_at: Option<DateTime<Utc>>,
    /// When responders mustered: the first action by someone other than the declarer, or set by hand.
    pub mustered_at: Option<DateTime<Utc>>,
    /// When it was (last) mitigated.
    pub mitigated_at: Option<DateTime<Utc>>,
    /// When it was resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// The durations between the key times.
    pub durations: KeyDurations,
    /// When anything about it last changed.
    pub updated_at: DateTime<Utc>,
    /// Its page in the web interface.
    pub url: String,
    /// Why it was declined as not an incident; null unless `status` is `declined`.
    pub closed_reason: Option<String>,
    /// The number of the incident this one was merged into; null unless `status` is `merged`.
    pub merged_into: Option<i64>,
}

/// How long each stage took, in whole seconds; null when one of its ends is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct KeyDurations {
    /// `detected_at` − `impact_started_at`.
    pub time_to_detect_seconds: Option<i64>,
    /// `declared_at` − `detected_at` (or − `impact_started_at` when detection is unknown).
    pub time_to_declare_seconds: Option<i64>,
    /// `mustered_at` − `declared_at`.
    pub time_to_muster_seconds: Option<i64>,
    /// `mitigated_at` − `impact_started_at` (or − `declared_at` when the start is unknown).
    pub time_to_mitigate_seconds: Option<i64>,
    /// `resolved_at` − `impact_started_at` (or − `declared_at` when the start is unknown).
    pub time_to_resolve_seconds: Option<i64>,
}

impl KeyDurations {
    /// The API view of the domain durations.
    pub fn from_domain(d: crate::domain::Durations) -> Self {
        let secs = |d: Option<chrono::Duration>| d.map(|d| d.num_seconds());
        Self {
            time_to_detect_seconds: secs(d.to_detect),
            time_to_declare_seconds: secs(d.to_declare),
            time_to_muster_seconds: secs(d.to_muster),
            time_to_mitigate_seconds: secs(d.to_mitigate),
            time_to_resolve_seconds: secs(d.to_resolve),
        }
    }
}

impl Incident {
    /// The API view of a stored incident.
    pub fn from_row(state: &AppState, row: &IncidentRow, services: Vec<String>) -> Self {
        Self {
            number: row.number,
            title: row.title.clone(),
            severity: row.severity.clone(),
            status: StatusName::from_domain(Status::parse(&row.status).unwrap_or(Status::Investigating)),
            services,
            summary: row.summary.clone(),
            declared_by: Person {
                name: row.declared_by_name.clone(),
                email: row.declared_by_email.clone(),
            },
            lead: lead_of(row).map(|a| Person {
                name: a.name,
                email: a.email,
            }),
            drill: row.drill,
            impact_started_at: row.impact_started_at.map(utc),
            declared_at: utc(row.declared_at),
            detected_at: row.detected_at.map(utc),
            mustered_at: row.mustered_at.map(utc),
            mitigated_at: row.mitigated_at.map(utc),
            resolved_at: row.resolved_at.map(utc),
            durations: KeyDurations::from_domain(crate::services::lifecycle::key_times_of(row).durations()),
            updated_at: utc(row.updated_at),
            url: state.incident_url(row.number),
            closed_reason: row.closed_reason.clone(),
            merged_into: row.merged_into_number,
        }
    }

    /// The API view of a listed incident.
    pub fn from_summary(state: &AppState, s: IncidentSummary) -> Self {
        Self::from_row(state, &s.row, s.services)
    }
}

/// One entry of an incident's timeline.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelineEntry {
    /// The entry's id.
    pub id: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Who did it.
    pub actor: Person,
    /// What happened: `declared`, `status_changed`, `severity_changed`, `lead_changed`,
    /// `role_changed` (`field` is the role id, the values the holders' names), `note`,
    /// `delivery_retried`, `mustered` (the first action by someone other than the declarer),
    /// `key_time_changed` (a key time set by hand: `field` names it, the values are UTC),
    /// `declined` (closed as not an incident: `body` is the reason), `merged` (closed as a
    /// duplicate: `new_value` is the survivor's number) and `merged_in` (on the survivor:
    /// `new_value` is the duplicate's number). From the Alertmanager receiver: `alert_firing` and
    /// `alert_resolved` (`field` is the fingerprint, `old_value` the start, `new_value` the end,
    /// `body` the labels, annotations and source), `alert_unknown_service` (`field` is the label,
    /// `new_value` its value), `alert_group_follows` (`old_value` is the closed incident's number)
    /// and `alert_group_moved` (`new_value` is the new incident's number).
    pub kind: String,
    /// The field a change touched.
    pub field: Option<String>,
    /// The value before a change.
    pub old_value: Option<String>,
    /// The value after a change.
    pub new_value: Option<String>,
    /// A note's text (Markdown).
    pub body: Option<String>,
}

impl From<&TimelineEntryRow> for TimelineEntry {
    fn from(e: &TimelineEntryRow) -> Self {
        Self {
            id: e.id,
            at: utc(e.at),
            actor: Person {
                name: e.actor_name.clone(),
                email: e.actor_email.clone(),
            },
            kind: e.kind.clone(),
            field: e.field.clone(),
            old_value: e.old_value.clone(),
            new_value: e.new_value.clone(),
            body: e.body.clone(),
        }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStateName {
    /// Waiting for its (next) attempt.
    Pending,
    /// Being delivered right now.
    Leased,
    /// Delivered.
    Done,
    /// Failed for good (out of attempts, or refused); can be retried from the incident page.
    Dead,
}

/// One side effect of an incident event: a message, a ticket, a page. No payloads, no secrets.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Delivery {
    /// The delivery's id.
    pub id: i64,
    /// The integration (`email`, `slack`, `jira`, …, or a webhook's name).
    pub notifier: String,
    /// The event it reports (`declared`, `status_changed`, …).
    pub event: String,
    /// Where it stands.
    pub state: DeliveryStateName,
    /// Attempts made so far.
    pub attempts: i32,
    /// Where it goes (a channel, a project, a host), if the integration says.
    pub target: Option<String>,
    /// Why the last attempt failed, while not delivered.
    pub last_error: Option<String>,
    /// What the other system calls the thing made (message id, ticket key).
    pub external_id: Option<String>,
    /// A link to it, if there is one.
    pub external_url: Option<String>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When the next attempt is due (while pending).
    pub next_attempt_at: DateTime<Utc>,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<&OutboxRow> for Delivery {
    fn from(d: &OutboxRow) -> Self {
        use crate::db::models::DeliveryState;
        let state = match DeliveryState::parse(&d.state).unwrap_or(DeliveryState::Pending) {
            DeliveryState::Pending => DeliveryStateName::Pending,
            DeliveryState::Leased => DeliveryStateName::Leased,
            DeliveryState::Done => DeliveryStateName::Done,
            DeliveryState::Dead => DeliveryStateName::Dead,
        };
        Self {
            id: d.id,
            notifier: d.notifier.clone(),
            event: d.event.clone(),
            state,
            attempts: d.attempts,
            target: d.target.clone(),
            last_error: if state == DeliveryStateName::Done {
                None
            } else {
                d.last_error.clone()
            },
            external_id: d.external_id.clone(),
            external_url: d
                .external_url
                .clone()
                .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
            created_at: utc(d.created_at),
            next_attempt_at: utc(d.next_attempt_at),
            delivered_at: d.delivered_at.map(utc),
        }
    }
}

/// An incident with its timeline and deliveries.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IncidentDetail {
    /// The incident.
    #[serde(flatten)]
    pub incident: Incident,
    /// Its timeline, oldest first.
    pub timeline: Vec<TimelineEntry>,
    /// Its deliveries, oldest first.
    pub deliveries: Vec<Delivery>,
    /// Its status updates for stakeholders, oldest first.
    pub updates: Vec<StatusUpdate>,
    /// When the next status update is due; `null` once resolved, or when none is planned.
    pub next_update_due_at: Option<DateTime<Utc>>,
    /// Every configured role, the lead first, with its holder.
    pub roles: Vec<super::roles::IncidentRole>,
}

/// One page of incidents.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IncidentPage {
    /// Incidents, newest first.
    pub items: Vec<Incident>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Who leads a new incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LeadChoice {
    /// The token's maker (the person the token acts for).
    Me,
}

/// A declaration.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclareRequest {
    /// One-line title, 1–200 characters.
    pub title: String,
    /// A configured severity id; absent, null or `unknown` when not assessed yet.
    #[serde(default)]
    pub severity: Option<String>,
    /// Affected service ids (configured), at most 20.
    #[serde(default)]
    pub services: Option<Vec<String>>,
    /// Markdown summary, at most 20,000 characters.
    #[serde(default)]
    pub summary: Option<String>,
    /// `"me"` to make the token's maker the lead; null or absent for no lead.
    #[serde(default)]
    pub lead: Option<LeadChoice>,
    /// A drill, not a real incident (pagers are not called).
    #[serde(default)]
    pub drill: Option<bool>,
    /// When impact started (RFC 3339; kept to the second, in UTC).
    #[serde(default)]
    pub impact_started_at: Option<DateTime<chrono::FixedOffset>>,
}

/// A status change.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    /// The new status.
    pub status: StatusName,
    /// The status you believe it has now; if it has moved on, nothing changes (409).
    #[serde(default)]
    pub expected: Option<StatusName>,
}

/// A severity change.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeverityRequest {
    /// The new severity: a configured id or `unknown`.
    pub severity: String,
    /// The severity you believe it has now; if it has changed, nothing changes (409).
    #[serde(default)]
    pub expected: Option<String>,
}

/// A lead change: `{"email": …, "name"?: …}` to set or hand over, `{"clear": true}` to remove.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadRequest {
    /// The new lead's email.
    #[serde(default)]
    pub email: Option<String>,
    /// The new lead's name; when absent, taken from the people who have signed in.
    #[serde(default)]
    pub name: Option<String>,
    /// `true` to remove the lead (without `email`).
    #[serde(default)]
    pub clear: Option<bool>,
}

/// A note for the timeline.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    /// The note (Markdown), at most 20,000 characters.
    pub body: String,
}

/// A status update for stakeholders.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    /// What we know: impact, who is affected, since when. 1 to 4,000 characters.
    pub known: String,
    /// What we are doing about it. 1 to 4,000 characters.
    pub doing: String,
    /// When the next update is due, in minutes from now: one of 15, 30, 60, 120, 240 or 480.
    /// `null` or absent: no further update is planned.
    #[serde(default)]
    pub next_update_in_minutes: Option<u32>,
}

/// A status update, as posted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusUpdate {
    /// When it was posted.
    pub at: DateTime<Utc>,
    /// Who wrote it.
    pub author: Person,
    /// What we know.
    pub known: String,
    /// What we are doing.
    pub doing: String,
    /// When the next update is due; `null` when no further update is planned.
    pub next_update_at: Option<DateTime<Utc>>,
}

impl From<&crate::db::models::StatusUpdateRow> for StatusUpdate {
    fn from(u: &crate::db::models::StatusUpdateRow) -> Self {
        Self {
            at: utc(u.at),
            author: Person {
                name: u.author_name.clone(),
                email: u.author_email.clone(),
            },
            known: u.known.clone(),
            doing: u.doing.clone(),
            next_update_at: u.next_update_at.map(utc),
        }
    }
}

/// Key times to set by hand. Each field: absent to leave it, `null` to clear it, an RFC 3339
/// time to set it (kept to the microsecond, in UTC). The declaration time cannot be changed;
/// `mitigated_at` and `resolved_at` follow the status (settable once it is mitigated or resolved,
/// not clearable while it is). The order rules are checked on the result; a refusal (422) names
/// the two times out of order and stores nothing.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(try_from = "serde_json::Map<String, serde_json::Value>")]
pub struct KeyTimesRequest {
    /// When impact started.
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub impact_started_at: Option<Option<DateTime<chrono::FixedOffset>>>,
    /// When the problem was noticed.
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub detected_at: Option<Option<DateTime<chrono::FixedOffset>>>,
    /// When responders mustered.
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub mustered_at: Option<Option<DateTime<chrono::FixedOffset>>>,
    /// When impact stopped.
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub mitigated_at: Option<Option<DateTime<chrono::FixedOffset>>>,
    /// When it was resolved.
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub resolved_at: Option<Option<DateTime<chrono::FixedOffset>>>,
}

/// Read by hand so that absent (keep) and `null` (clear) differ, only a JSON object is taken
/// (not a positional array), and unknown fields are refused.
impl TryFrom<serde_json::Map<String, serde_json::Value>> for KeyTimesRequest {
    type Error = String;

    fn try_from(map: serde_json::Map<String, serde_json::Value>) -> Result<Self, String> {
        let mut out = KeyTimesRequest::default();
        for (name, value) in map {
            let slot = match name.as_str() {
                "impact_started_at" => &mut out.impact_started_at,
                "detected_at" => &mut out.detected_at,
                "mustered_at" => &mut out.mustered_at,
                "mitigated_at" => &mut out.mitigated_at,
                "resolved_at" => &mut out.resolved_at,
                _ => {
                    return Err(format!(
                        "unknown field `{}`, expected one of `impact_started_at`, `detected_at`, `mustered_at`, \
                         `mitigated_at`, `resolved_at`",
                        crate::domain::declaration::shorten(&name)
                    ));
                }
            };
            *slot = Some(match value {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some(
                    DateTime::parse_from_rfc3339(&s)
                        .map_err(|_| format!("`{name}` must be an RFC 3339 time like 2026-11-21T14:05:00Z, or null"))?,
                ),
                _ => {
                    return Err(format!(
                        "`{name}` must be an RFC 3339 time like 2026-11-21T14:05:00Z, or null"
                    ));
                }
            });
        }
        Ok(out)
    }
}

impl KeyTimesRequest {
    /// The edits for the use case, in UTC.
    pub fn edits(&self) -> Vec<(crate::domain::KeyTime, crate::services::lifecycle::KeyTimeEdit)> {
        use crate::domain::KeyTime;
        use crate::services::lifecycle::KeyTimeEdit;
        let edit = |f: &Option<Option<DateTime<chrono::FixedOffset>>>| match f {
            None => KeyTimeEdit::Keep,
            Some(None) => KeyTimeEdit::Clear,
            Some(Some(t)) => KeyTimeEdit::Set(t.naive_utc()),
        };
        vec![
            (KeyTime::ImpactStarted, edit(&self.impact_started_at)),
            (KeyTime::Detected, edit(&self.detected_at)),
            (KeyTime::Mustered, edit(&self.mustered_at)),
            (KeyTime::Mitigated, edit(&self.mitigated_at)),
            (KeyTime::Resolved, edit(&self.resolved_at)),
        ]
    }
}

/// Filters and position for listing incidents.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only incidents with this status.
    pub status: Option<StatusName>,
    /// Only incidents with this severity.
    pub severity: Option<String>,
    /// Only incidents affecting this service.
    pub service: Option<String>,
    /// Only incidents whose title contains this text (case-insensitive).
    pub q: Option<String>,
    /// Only drills (`true`) or only real incidents (`false`).
    pub drill: Option<bool>,
    /// How many to return, 1–100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}
