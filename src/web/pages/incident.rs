//! `/incidents/{number}`: the war room. Summary, status, severity, lead, key times, timeline,
//! deliveries, and the forms that change them.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::auth::{Principal, Read, Work};
use crate::db::models::{DeliveryState, OutboxRow, TimelineEntryRow};
use crate::domain::declaration::now_utc;
use crate::domain::key_times::format_duration;
use crate::domain::update::{NEXT_UPDATE_CHOICES, UpdateInput, next_update_due, span};
use crate::domain::{IncidentNumber, KeyTime, Status, UNKNOWN_SEVERITY, allowed_next, parse_person};
use crate::services::queries::{self, IncidentDetail, incident_detail};
use crate::services::{ServiceError, closures, lifecycle, nudges};
use crate::state::AppState;
use crate::web::form::FormData;
use crate::web::pages::Me;
use crate::web::session::{Access, checked_form};
use crate::web::view::Tz;
use crate::web::{error_page, internal, markdown, render, see_other, view};

/// A timeline entry for display.
pub struct EntryView {
    pub at: view::Shown,
    pub actor: String,
    pub kind: String,
    pub text: String,
    pub body: Option<String>,
    /// The alert an `alert_firing` or `alert_resolved` entry recorded, shown instead of the body.
    pub alert: Option<AlertView>,
}

/// An Alertmanager alert for display: its labels, annotations and source link.
pub struct AlertView {
    /// `name=value`, `alertname` first.
    pub labels: Vec<String>,
    /// (name, value).
    pub annotations: Vec<(String, String)>,
    /// The link to the rule in Prometheus, when it is an http(s) URL.
    pub source: Option<String>,
}

/// The alert a timeline entry recorded, if it is an alert entry.
fn alert_view(e: &TimelineEntryRow, alerts: &[crate::db::models::AlertRow]) -> Option<AlertView> {
    use std::collections::BTreeMap;
    if !e.kind.starts_with("alert_") {
        return None;
    }
    let a = alerts
        .iter()
        .find(|a| a.firing_entry_id == Some(e.id) || a.resolved_entry_id == Some(e.id))?;
    let labels: BTreeMap<String, String> = serde_json::from_str(&a.labels).unwrap_or_default();
    let annotations: BTreeMap<String, String> = serde_json::from_str(&a.annotations).unwrap_or_default();
    let mut shown: Vec<String> = labels
        .get("alertname")
        .map(|n| format!("alertname={n}"))
        .into_iter()
        .collect();
    shown.extend(
        labels
            .iter()
            .filter(|(k, _)| k.as_str() != "alertname")
            .map(|(k, v)| format!("{k}={v}")),
    );
    Some(AlertView {
        labels: shown,
        annotations: annotations.into_iter().collect(),
        source: crate::domain::alert::http_url(&a.generator_url).map(str::to_string),
    })
}

/// A delivery for display.
pub struct DeliveryView {
    pub id: i64,
    pub notifier: String,
    /// Where it goes (a channel, a project, a host), if the integration says.
    pub target: Option<String>,
    pub event: String,
    pub state: &'static str,
    pub state_label: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub external_id: Option<String>,
    /// Who an email went (or goes) to.
    pub recipients: String,
    pub external_url: Option<String>,
    pub when: String,
    pub can_retry: bool,
}

/// A link to something outside: the Slack channel, the Jira ticket, the call.
pub struct ExternalLink {
    pub label: String,
    pub text: String,
    pub url: String,
}

fn external_links(state: &AppState, d: &IncidentDetail) -> Vec<ExternalLink> {
    let mut links = Vec::new();
    let find = |integration: &str, name: &str| {
        d.external
            .iter()
            .find(|r| r.integration == integration && r.name == name)
            .and_then(|r| r.url.clone().map(|u| (r.value.clone(), u)))
    };
    if let Some((id, url)) = find("slack", "channel") {
        let name = d
            .external
            .iter()
            .find(|r| r.integration == "slack" && r.name == "channel_name")
            .map(|r| format!("#{}", r.value))
            .unwrap_or(id);
        links.push(ExternalLink {
            label: "Slack channel".into(),
            text: name,
            url,
        });
    }
    if let Some((key, url)) = find("jira", "issue") {
        links.push(ExternalLink {
            label: "Jira ticket".into(),
            text: key,
            url,
        });
    }
    if let Some(url) = state.settings.bridge_for(&d.services) {
        links.push(ExternalLink {
            label: "Call".into(),
            text: "Join the incident call".into(),
            url,
        });
    }
    links.retain(|l| l.url.starts_with("https://") || l.url.starts_with("http://"));
    links
}

/// A key time, shown.
pub struct KeyTimeView {
    pub label: &'static str,
    /// `None`: not recorded.
    pub at: Option<view::Shown>,
}

/// An input of the key times form.
pub struct KeyTimeInput {
    pub name: &'static str,
    pub label: &'static str,
    /// The current value in the viewer's time zone, for a `datetime-local` input.
    pub value: String,
    /// Whether it may be set now (mitigated and resolved follow the status).
    pub enabled: bool,
    pub hint: &'static str,
}

/// A duration between key times, shown.
pub struct DurationView {
    pub label: &'static str,
    /// `—` when unknown.
    pub value: String,
}

/// The latest status update, shown.
pub struct UpdateView {
    pub at: view::Shown,
    pub author: String,
    pub known: String,
    pub doing: String,
}

/// When the next update is due, shown.
pub struct NextDueView {
    pub at: view::Shown,
    /// `in 12 min` or `7 min overdue`.
    pub relative: String,
    pub overdue: bool,
}

/// A "next update by" choice of the update form.
pub struct NextChoice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// A status the incident can move to.
pub struct NextStatus {
    pub value: &'static str,
    pub label: &'static str,
}

/// The incident page.
#[derive(Template)]
#[template(path = "incident.html")]
pub struct IncidentPage {
    me: Option<super::Me>,
    csrf: String,
    number: i64,
    title: String,
    severity: String,
    severity_class: String,
    severity_criterion: String,
    status: &'static str,
    status_label: &'static str,
    lead_name: Option<String>,
    declared_by: String,
    drill: bool,
    services: Vec<String>,
    summary_html: String,
    key_times: Vec<KeyTimeView>,
    key_time_inputs: Vec<KeyTimeInput>,
    key_times_expected: String,
    durations: Vec<DurationView>,
    /// The viewer's time zone (an IANA name).
    tz_name: String,
    age: String,
    timeline: Vec<EntryView>,
    deliveries: Vec<DeliveryView>,
    links: Vec<ExternalLink>,
    next_statuses: Vec<NextStatus>,
    severity_options: Vec<(String, String)>,
    no_integrations: bool,
    can_work: bool,
    /// People who have signed in, as (email, name), for the lead and role pickers.
    people: Vec<(String, String)>,
    latest_update: Option<UpdateView>,
    next_due: Option<NextDueView>,
    /// What is overdue now (the nudges' reminders).
    reminders: Vec<String>,
    next_choices: Vec<NextChoice>,
    /// Whether updates can be posted (not once resolved).
    can_update: bool,
    follow_ups: super::follow_ups::FollowUpsCard,
    /// Every configured role with its holder, the lead first.
    roles: Vec<super::roles::RoleCard>,
    /// Why it was declined (not an incident), when it was.
    closed_reason: Option<String>,
    /// Whether it is open, so it can still be declined or merged.
    is_open: bool,
    /// Whether it is closed (the status form reopens it).
    is_closed: bool,
    /// Incidents merged into this one, as (number, title).
    merged_from: Vec<(i64, String)>,
    error: Option<String>,
}

fn next_choices(state: &AppState, severity: &str) -> Vec<NextChoice> {
    let cadence = state.settings.cadence(severity).update_minutes.unwrap_or(60);
    // The listed choice closest to the severity's cadence is preselected.
    let best = NEXT_UPDATE_CHOICES
        .iter()
        .min_by_key(|m| (i64::from(**m) - i64::from(cadence)).abs())
        .copied()
        .unwrap_or(60);
    NEXT_UPDATE_CHOICES
        .iter()
        .map(|m| NextChoice {
            value: m.to_string(),
            label: format!("in {}", span(i64::from(*m))),
            selected: *m == best,
        })
        .chain([NextChoice {
            value: "none".into(),
            label: "no further update planned".into(),
            selected: false,
        }])
        .collect()
}

/// A time stored in a timeline entry (`2026-11-21T14:05:00Z`), in the viewer's time zone.
fn entry_time(value: Option<&str>, tz: Tz) -> String {
    match value {
        None => "not recorded".into(),
        Some(v) => chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%SZ")
            .map(|t| view::time_in(&t, tz))
            .unwrap_or_else(|_| v.to_string()),
    }
}

fn describe(e: &TimelineEntryRow, tz: Tz) -> String {
    let old = e.old_value.as_deref().unwrap_or("none");
    let new = e.new_value.as_deref().unwrap_or("none");
    match e.kind.as_str() {
        "mustered" => format!("responders mustered (first action by {})", e.actor_name),
        "key_time_changed" => {
            let what = KeyTime::phrase_of_field(e.field.as_deref());
            format!(
                "changed {what} from {} to {}",
                entry_time(e.old_value.as_deref(), tz),
                entry_time(e.new_value.as_deref(), tz)
            )
        }
        "declared" => format!("declared the incident ({new})"),
        "status_changed" => format!("changed the status from {old} to {new}"),
        "severity_changed" => format!("changed the severity from {old} to {new}"),
        "lead_changed" => match (&e.old_value, &e.new_value) {
            (None, Some(n)) => format!("made {n} the lead"),
            (Some(o), None) => format!("removed {o} as lead"),
            _ => format!("handed the lead from {old} to {new}"),
        },
        "note" => "added a note".into(),
        "status_update" => match e.new_value.as_deref() {
            Some(_) => format!(
                "posted a status update; next by {}",
                entry_time(e.new_value.as_deref(), tz)
            ),
            None => "posted a status update; no further update planned".into(),
        },
        "nudge" => "reminded the responders".into(),
        "declined" => "closed the incident as not an incident".into(),
        "merged" => format!("merged this incident into INC-{new} as a duplicate"),
        "merged_in" => format!("merged INC-{new} into this incident as a duplicate"),
        "delivery_retried" => "asked to retry a failed delivery".into(),
        "follow_up_added" => format!("added a follow-up for {new}:"),
        "follow_up_changed" => match e.field.as_deref() {
            Some("status") if e.new_value.as_deref() == Some("open") => "reopened a follow-up:".into(),
            Some("status") => format!("marked a follow-up {}:", new.replace('_', " ")),
            Some("owner") => format!("handed a follow-up from {old} to {new}:"),
            Some("due_on") => format!("moved a follow-up's due date from {old} to {new}:"),
            _ => "changed a follow-up:".into(),
        },
        "alert_firing" => format!(
            "recorded a firing alert (started {})",
            entry_time(e.old_value.as_deref(), tz)
        ),
        "alert_resolved" => format!(
            "recorded a resolved alert (ended {})",
            entry_time(e.new_value.as_deref(), tz)
        ),
        "alert_unknown_service" => format!(
            "could not set the service: the alert's {} label is \u{201c}{new}\u{201d}, which is not a configured service",
            e.field.as_deref().unwrap_or("service")
        ),
        "alert_group_follows" => {
            format!("opened this incident because the alert group of INC-{old} fired again after it was closed")
        }
        "alert_group_moved" => format!("saw the alert group fire again; it continues in INC-{new}"),
        other => other.replace('_', " "),
    }
}

fn delivery_view(d: &OutboxRow, tz: Tz) -> DeliveryView {
    let state = DeliveryState::parse(&d.state).unwrap_or(DeliveryState::Pending);
    let (key, label) = match state {
        DeliveryState::Done => ("done", "Delivered".to_string()),
        DeliveryState::Dead => ("failed", "Failed".to_string()),
        DeliveryState::Leased => ("sending", "Sending".to_string()),
        DeliveryState::Pending if d.attempts > 0 => (
            "retrying",
            format!("Retrying at {}", d.next_attempt_at.format("%H:%M:%S UTC")),
        ),
        DeliveryState::Pending => ("pending", "Pending".to_string()),
    };
    DeliveryView {
        id: d.id,
        notifier: d.notifier.clone(),
        target: d.target.clone(),
        event: d.event.replace('_', " "),
        state: key,
        state_label: label,
        attempts: d.attempts,
        last_error: if state == DeliveryState::Done {
            None
        } else {
            d.last_error.clone()
        },
        external_id: d.external_id.clone(),
        recipients: serde_json::from_str::<crate::notifiers::EventPayload>(&d.payload)
            .map(|p| p.email_to.join(", "))
            .unwrap_or_default(),
        external_url: d
            .external_url
            .clone()
            .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
        when: view::time_in(&d.delivered_at.unwrap_or(d.updated_at), tz),
        can_retry: state == DeliveryState::Dead,
    }
}

fn build(state: &AppState, user: &Principal, d: IncidentDetail, error: Option<String>) -> IncidentPage {
    let row = &d.row;
    let status = Status::parse(&row.status).unwrap_or(Status::Investigating);
    let now = now_utc();
    let settings = &state.settings;
    let tz = view::zone(d.viewer_time_zone.as_deref());
    let times = lifecycle::key_times_of(row);
    let key_times = KeyTime::ALL
        .iter()
        .map(|k| KeyTimeView {
            label: k.label(),
            at: times.get(*k).map(|t| view::shown(&t, tz)),
        })
        .collect();
    let key_time_inputs = KeyTime::EDITABLE
        .iter()
        .map(|k| {
            let (enabled, hint) = match k {
                KeyTime::Mitigated => (
                    matches!(status, Status::Mitigated | Status::Resolved),
                    "set by moving the status to mitigated",
                ),
                KeyTime::Resolved => (status == Status::Resolved, "set by resolving"),
                KeyTime::Mustered => (true, "first action by someone other than the declarer"),
                _ => (true, ""),
            };
            KeyTimeInput {
                name: k.field(),
                label: k.label(),
                value: times.get(*k).map(|t| view::local_input(&t, tz)).unwrap_or_default(),
                enabled,
                hint,
            }
        })
        .collect();
    let durations = times
        .durations()
        .labelled()
        .iter()
        .map(|(label, d)| DurationView {
            label,
            value: d.map(format_duration).unwrap_or_else(|| "\u{2014}".into()),
        })
        .collect();
    let latest = d.updates.last();
    let due = next_update_due(
        status,
        row.declared_at,
        latest.map(|u| (u.at, u.next_update_at)),
        settings.cadence(&row.severity).update_minutes,
    );
    let next_due = due.map(|at| {
        let minutes = (at - now).num_minutes();
        NextDueView {
            at: view::shown(&at, tz),
            relative: if at >= now {
                format!("in {}", span(minutes.max(0)))
            } else {
                format!("{} overdue", span(-minutes))
            },
            overdue: at < now,
        }
    });
    let reminders = nudges::due_now(state, row, latest.map(|u| (u.at, u.next_update_at)), now)
        .iter()
        .map(|n| nudges::reminder(row, n, now))
        .collect();
    IncidentPage {
        latest_update: latest.map(|u| UpdateView {
            at: view::shown(&u.at, tz),
            author: u.author_name.clone(),
            known: u.known.clone(),
            doing: u.doing.clone(),
        }),
        next_due,
        reminders,
        next_choices: next_choices(state, &row.severity),
        can_update: !status.is_closed(),
        me: Some(Me::new(user, state.settings.auth.mode)),
        csrf: user.csrf().to_string(),
        number: row.number,
        title: row.title.clone(),
        severity: row.severity.clone(),
        severity_class: view::severity_class(&row.severity),
        severity_criterion: settings
            .severities
            .iter()
            .find(|s| s.id == row.severity)
            .map(|s| s.criterion.clone())
            .unwrap_or_else(|| "Severity not assessed yet.".into()),
        status: status.as_str(),
        status_label: status.label(),
        can_work: user.holds(<Work as crate::auth::Permission>::NEED),
        people: d.people.iter().map(|u| (u.email.clone(), u.name.clone())).collect(),
        follow_ups: super::follow_ups::FollowUpsCard::new(state, &d.follow_ups),
        roles: super::roles::cards(
            crate::services::roles::held_roles(&settings.roles(), row, &d.roles),
            &user.actor.email,
        ),
        lead_name: row.lead_name.clone(),
        declared_by: row.declared_by_name.clone(),
        drill: row.drill,
        services: d.services.clone(),
        summary_html: markdown::render(&row.summary),
        key_times,
        key_time_inputs,
        key_times_expected: lifecycle::key_times_fingerprint(row),
        durations,
        tz_name: tz.name().to_string(),
        age: view::age(&row.declared_at, &row.resolved_at.unwrap_or(now)),
        timeline: d
            .timeline
            .iter()
            .rev()
            .map(|e| EntryView {
                at: view::shown(&e.at, tz),
                // A muster entry names the person in its text.
                actor: if e.kind == "mustered" {
                    String::new()
                } else {
                    e.actor_name.clone()
                },
                kind: e.kind.clone(),
                text: if e.kind == "role_changed" {
                    super::roles::describe(e, settings)
                } else {
                    describe(e, tz)
                },
                body: e.body.clone(),
                alert: alert_view(e, &d.alerts),
            })
            .collect(),
        deliveries: d.deliveries.iter().map(|x| delivery_view(x, tz)).collect(),
        links: external_links(state, &d),
        closed_reason: row.closed_reason.clone(),
        is_open: status.is_live(),
        is_closed: status.is_closed(),
        merged_from: d.merged_from.clone(),
        next_statuses: allowed_next(status)
            .iter()
            .filter(|s| s.is_plain_target())
            .map(|s| NextStatus {
                value: s.as_str(),
                label: s.label(),
            })
            .collect(),
        severity_options: settings
            .severities
            .iter()
            .map(|s| (s.id.clone(), format!("{} \u{2014} {}", s.id, s.label)))
            .chain([(
                UNKNOWN_SEVERITY.to_string(),
                "unknown \u{2014} not assessed".to_string(),
            )])
            .filter(|(id, _)| id != &row.severity)
            .collect(),
        no_integrations: state.notifiers.is_empty(),
        error,
    }
}

pub(super) fn number_from(raw: &str) -> Option<i64> {
    IncidentNumber::parse(raw).map(|n| n.0)
}

/// Shows one incident.
pub async fn show(user: Access<Read>, state: web::Data<AppState>, path: web::Path<String>) -> HttpResponse {
    let Some(number) = number_from(&path) else {
        return error_page(StatusCode::NOT_FOUND, "There is no such incident.");
    };
    match incident_detail(&state, number, Some(user.actor.email.clone())).await {
        // A duplicate's page is its survivor's: that is where the work goes on.
        Ok(d) if let Some(survivor) = d.row.merged_into_number => see_other(&format!("/incidents/{survivor}")),
        Ok(d) => render(StatusCode::OK, &build(&state, &user, d, None)),
        Err(ServiceError::NotFound) => {
            error_page(StatusCode::NOT_FOUND, &format!("There is no incident INC-{number}."))
        }
        Err(e) => internal(&e),
    }
}

/// Shared handling of the incident page's forms: parse, check CSRF, run the change, then
/// redirect back, or show the page again with the message and nothing changed.
pub(crate) async fn handle<F, Fut>(
    req: HttpRequest,
    body: web::Bytes,
    user: Access<Work>,
    state: web::Data<AppState>,
    raw: &str,
    f: F,
) -> HttpResponse
where
    F: FnOnce(AppState, i64, Principal, FormData) -> Fut,
    Fut: std::future::Future<Output = Result<(), ServiceError>>,
{
    let Some(number) = number_from(raw) else {
        return error_page(StatusCode::NOT_FOUND, "There is no such incident.");
    };
    let form = match checked_form(&req, &body, &user) {
        Ok(f) => f,
        Err(response) => return *response,
    };
    let result = f(state.get_ref().clone(), number, user.principal.clone(), form).await;
    let (status, error) = match result {
        Ok(()) => return see_other(&format!("/incidents/{number}")),
        Err(ServiceError::NotFound) => {
            return error_page(StatusCode::NOT_FOUND, &format!("There is no incident INC-{number}."));
        }
        Err(ServiceError::Invalid(errors)) => {
            let msg = errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join(" ");
            (StatusCode::UNPROCESSABLE_ENTITY, Some(msg))
        }
        Err(ServiceError::Conflict(msg)) => (StatusCode::CONFLICT, Some(msg)),
        Err(e) => return internal(&e),
    };
    match incident_detail(&state, number, Some(user.actor.email.clone())).await {
        Ok(d) => render(status, &build(&state, &user, d, error)),
        Err(e) => internal(&e),
    }
}

/// `POST /incidents/{n}/status`
pub async fn status(
    req: HttpRequest,
    body: web::Bytes,
    user: Access<Work>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    handle(req, body, user, state, &path, |st, n, u, form| async move {
        lifecycle::change_status(&st, n, u.actor, form.get("status"), form.get("expected")).await
    })
    .await
}

/// `POST /incidents/{n}/decline`: closes the incident as not an incident, with a reason.
pub async fn decline(
    req: HttpRequest,
    body: web::Bytes,
    user: Access<Work>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    handle(req, body, user, state, &path, |st, n, u, form| async move {
        closures::decline(&st, n, u.actor, form.get("reason"), form.get("expected")).await
    })
    .await
}

/// `POST /incidents/{n}/merge`: merges this incident (a duplicate) into the one numbered `into`.
/// The redirect goes to this incident's page, which sends the reader on to the survivor.
pub async fn merge(
    req: HttpRequest,
    body: web::Bytes,
    user: Access<Work>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    handle(req, body, user, state, &path, |st, n, u, form| async move {
        closures::merge(&st, n, u.actor, form.get("into"), form.get("expected"))
            .await
            .map(|_| ())
    })
    .await
}

/// `POST /incidents/{n}/severity`
pub async fn severity(
    req: HttpRequest,
    body: web::Bytes,
    user: Access<Work>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    handle(req, body, user, state, &path, |st, n, u, form| async move {
        lifecycle::change_severity(&st, n, u.actor, form.get("severity"), form.get("expected")).await
    })
    .await
}

/// `POST /incidents/{n}/lead`: `action=take` (me), `action=assign` (name + email), `action=clear`.
pub async fn lead(
    req: HttpRequest,
    body: web::Bytes,
    user: Access<Work>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    handle(req, body, user, state, &path, |st, n, u, form| async move {
        let lead = match form.get("action") {
            "take" => Some(u.actor.clone()),
            "clear" => None,
            "assign" => {
                // Someone who has signed in can be picked by email alone; their name comes from
                // their user row.
                let email = form.get("email").trim().to_ascii_lowercase();
                let mut name = form.get("name").trim().to_string();
                if crate::domain::is_blank(&name) && !email.is_empty() {
                    let lookup = email.clone();
                    if let Some(user) = st
                        .db
                        .run(move |conn| crate::db::models::user::find_by_email(conn, &lookup))
                        .await?
                    {
                        name = user.name;
                    }
                }
                Some(parse_person(&name, &email).map_err(|e| ServiceError::Invalid(vec![e]))?)
            }
            _ => {
                return Err(ServiceError::field(
                    "action",
                    "Choose whether to take, assign or clear the lead.",
                ));
            }
        };
        lifecycle::change_lead(&st, n, u.actor, lead, form.get("expected")).await
    })
    .await
}

/// `POST /incidents/{n}/notes`
pub async fn note(
    req: HttpRequest,
    body: web::Bytes,
    user: Access<Work>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    handle(req, body, user, state, &path, |st, n, u, form| async move {
        lifecycle::add_note(&st, n, u.actor, form.get("note")).await
    })
    .await
}

/// `POST /incidents/{n}/updates`: a status update for stakeholders.
pub async fn update(
    req: HttpRequest,
    body: web::Bytes,
    user: Access<Work>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    handle(req, body, user, state, &path, |st, n, u, form| async move {
        let input = UpdateInput::parse(form.get("known"), form.get("doing"), form.get("next_update"))
            .map_err(ServiceError::Invalid)?;
        lifecycle::post_update(&st, n, u.actor, input).await
    })
    .await
}

/// `POST /incidents/{n}/deliveries/{id}/retry`
pub async fn retry(
    req: HttpRequest,
    body: web::Bytes,
    user: Access<Work>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (raw, id) = path.into_inner();
    let Some(id) = id.parse::<i64>().ok().filter(|id| *id > 0) else {
        return error_page(StatusCode::NOT_FOUND, "There is no such delivery.");
    };
    handle(req, body, user, state, &raw, move |st, n, u, _form| async move {
        lifecycle::retry_delivery(&st, n, u.actor, id).await
    })
    .await
}

/// `POST /incidents/{n}/key-times`: the key times form. Each `datetime-local` value is read in the
/// viewer's time zone; an empty one clears the time, an absent one leaves it.
pub async fn key_times(
    req: HttpRequest,
    body: web::Bytes,
    user: Access<Work>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    handle(req, body, user, state, &path, |st, n, u, form| async move {
        let tz = view::zone(queries::time_zone_of(&st, &u.actor.email).await?.as_deref());
        let mut edits = Vec::new();
        let mut errors = Vec::new();
        for k in KeyTime::EDITABLE {
            let values = form.all(k.field());
            let edit = match values.first().map(|v| v.trim()) {
                None => lifecycle::KeyTimeEdit::Keep,
                Some("") => lifecycle::KeyTimeEdit::Clear,
                Some(raw) => match view::parse_local_input(raw, tz) {
                    Ok(t) => lifecycle::KeyTimeEdit::Set(t),
                    Err(message) => {
                        errors.push(crate::domain::FieldError::new(
                            k.field(),
                            format!("{}: {message}", k.label()),
                        ));
                        continue;
                    }
                },
            };
            edits.push((k, edit));
        }
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        let expected = Some(form.get("expected").to_string());
        lifecycle::set_key_times(&st, n, u.actor, edits, expected)
            .await
            .map(|_| ())
    })
    .await
}
