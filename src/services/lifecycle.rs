//! Working an incident: status, severity, lead, notes, and retrying a failed delivery.
//! Every change appends to the timeline and enqueues what routing selects, in one transaction.

use chrono::NaiveDateTime;

use super::ServiceError;
use crate::db::DbConnection;
use crate::db::models::{IncidentRow, NewOutboxRow, NewTimelineEntry, incident, outbox, timeline};
use crate::domain::declaration::{SUMMARY_MAX_CHARS, now_utc, parse_severity};
use crate::domain::{Actor, EventKind, Status, check_transition};
use crate::notifiers::{Change, EventPayload, ExtraStep, IncidentSnapshot};
use crate::routing::{RouteQuery, route};
use crate::state::AppState;

/// The incident as notifiers will see it.
pub fn snapshot(state: &AppState, row: &IncidentRow, services: Vec<String>) -> IncidentSnapshot {
    IncidentSnapshot {
        number: row.number,
        title: row.title.clone(),
        severity: row.severity.clone(),
        status: row.status.clone(),
        services: services.clone(),
        summary: row.summary.clone(),
        declared_by: Actor {
            name: row.declared_by_name.clone(),
            email: row.declared_by_email.clone(),
        },
        lead: lead_of(row),
        drill: row.drill,
        declared_at: row.declared_at,
        url: state.incident_url(row.number),
        bridge_url: state.settings.bridge_for(&services),
    }
}

/// The lead of a stored incident.
pub fn lead_of(row: &IncidentRow) -> Option<Actor> {
    match (&row.lead_name, &row.lead_email) {
        (Some(name), Some(email)) => Some(Actor {
            name: name.clone(),
            email: email.clone(),
        }),
        _ => None,
    }
}

/// Writes one outbox row per route for this event. Runs inside the caller's transaction.
#[allow(clippy::too_many_arguments)]
pub fn enqueue(
    conn: &mut DbConnection,
    state: &AppState,
    snap: &IncidentSnapshot,
    timeline_entry_id: i64,
    event: EventKind,
    actor: &Actor,
    change: Option<Change>,
    note: Option<String>,
    at: NaiveDateTime,
) -> Result<usize, ServiceError> {
    let routes = route(
        &state.settings,
        &state.notifiers,
        &RouteQuery {
            event,
            severity: &snap.severity,
            services: &snap.services,
            drill: snap.drill,
        },
    );
    if routes.is_empty() {
        return Ok(0);
    }
    let incident_id = incident_id_of(conn, snap.number)?;
    let routed: Vec<String> = routes.iter().map(|r| r.notifier.clone()).collect();
    let mut rows = Vec::new();
    for r in routes {
        let payload = EventPayload {
            event,
            at,
            actor: actor.clone(),
            incident: snap.clone(),
            change: change.clone(),
            note: note.clone(),
            email_to: r.email_to,
            step: None,
        };
        let notifier = state.registry.get(&r.notifier);
        if notifier.as_ref().is_some_and(|n| !n.accepts(&payload)) {
            continue;
        }
        let key = format!("inc-{}-t{}-{}", snap.number, timeline_entry_id, r.notifier);
        let row = |step: Option<&ExtraStep>, payload: &EventPayload| -> Result<NewOutboxRow, ServiceError> {
            let (key, sequence, due, target) = match step {
                None => (
                    key.clone(),
                    format!("{incident_id}:{}", r.notifier),
                    at,
                    notifier.as_ref().and_then(|n| n.target(payload)),
                ),
                Some(s) => (
                    format!("{key}-{}", s.name),
                    format!("{incident_id}:{}:{}", r.notifier, s.name),
                    at + chrono::Duration::from_std(s.delay).unwrap_or(chrono::Duration::zero()),
                    Some(s.target.clone()),
                ),
            };
            Ok(NewOutboxRow {
                incident_id,
                timeline_entry_id: Some(timeline_entry_id),
                idempotency_key: key,
                sequence_key: Some(sequence),
                notifier: r.notifier.clone(),
                event: event.as_str().into(),
                payload: serde_json::to_string(payload).map_err(|e| ServiceError::Conflict(e.to_string()))?,
                state: "pending".into(),
                attempts: 0,
                next_attempt_at: due,
                created_at: at,
                updated_at: at,
                target,
            })
        };
        rows.push(row(None, &payload)?);
        let extra = notifier
            .as_ref()
            .map(|n| n.extra_steps(&payload, &routed))
            .unwrap_or_default();
        for step in &extra {
            let mut p = payload.clone();
            p.step = Some(step.name.clone());
            rows.push(row(Some(step), &p)?);
        }
    }
    if rows.is_empty() {
        return Ok(0);
    }
    outbox::insert_many(conn, &rows)?;
    Ok(rows.len())
}

fn incident_id_of(conn: &mut DbConnection, number: i64) -> Result<i64, ServiceError> {
    Ok(incident::find_by_number(conn, number)?
        .ok_or(ServiceError::NotFound)?
        .id)
}

/// A change to apply to a loaded incident: returns the timeline entry and the event it causes,
/// or an error that leaves everything untouched.
struct Applied {
    entry: NewTimelineEntry,
    event: EventKind,
    change: Option<Change>,
    note: Option<String>,
}

/// Loads the incident, applies `apply`, writes it back with its timeline entry and outbox rows.
async fn mutate<F>(state: &AppState, number: i64, actor: Actor, apply: F) -> Result<(), ServiceError>
where
    F: Fn(&mut IncidentRow, &Actor, NaiveDateTime) -> Result<Applied, ServiceError> + Send + 'static,
{
    let st = state.clone();
    state
        .db
        .write(move |conn| -> Result<(), ServiceError> {
            let mut row = incident::find_by_number_for_update(conn, number)?.ok_or(ServiceError::NotFound)?;
            let now = now_utc();
            let applied = apply(&mut row, &actor, now)?;
            row.updated_at = now;
            incident::update(conn, &row)?;
            let entry_id = timeline::insert(conn, &applied.entry)?;
            let services = incident::services_of(conn, row.id)?;
            let snap = snapshot(&st, &row, services);
            enqueue(
                conn,
                &st,
                &snap,
                entry_id,
                applied.event,
                &actor,
                applied.change,
                applied.note,
                now,
            )?;
            Ok(())
        })
        .await?;
    state.wake.notify_one();
    Ok(())
}

/// A timeline entry of `kind` by `actor` on `row`, with the optional fields empty.
pub(crate) fn entry(row: &IncidentRow, actor: &Actor, at: NaiveDateTime, kind: &str) -> NewTimelineEntry {
    NewTimelineEntry {
        incident_id: row.id,
        at,
        actor_name: actor.name.clone(),
        actor_email: actor.email.clone(),
        kind: kind.into(),
        field: None,
        old_value: None,
        new_value: None,
        body: None,
    }
}

fn stale(what: &str, now_is: &str) -> ServiceError {
    ServiceError::Conflict(format!(
        "Someone changed this incident while you were looking: the {what} is now {now_is}. Nothing was changed; review and try again."
    ))
}

/// Moves the status. `expected` is the status the form showed (stale forms are refused).
pub async fn change_status(
    state: &AppState,
    number: i64,
    actor: Actor,
    to: &str,
    expected: &str,
) -> Result<(), ServiceError> {
    let to = Status::parse(to.trim()).ok_or_else(|| ServiceError::field("status", "Choose a status from the list."))?;
    let expected = expected.to_string();
    mutate(state, number, actor, move |row, actor, now| {
        let from =
            Status::parse(&row.status).ok_or_else(|| ServiceError::Conflict("stored status is corrupt".into()))?;
        if from.as_str() != expected {
            return Err(stale("status", from.as_str()));
        }
        check_transition(from, to).map_err(|e| ServiceError::Conflict(e.to_string()))?;
        row.status = to.as_str().into();
        match to {
            Status::Mitigated => row.mitigated_at = row.mitigated_at.or(Some(now)),
            Status::Resolved => {
                row.resolved_at = Some(now);
                row.mitigated_at = row.mitigated_at.or(Some(now));
            }
            Status::Investigating | Status::Identified => {
                // Reopening or stepping back: the incident is no longer mitigated or resolved.
                // The earlier times stay on the timeline.
                row.resolved_at = None;
                row.mitigated_at = None;
            }
        }
        let mut e = entry(row, actor, now, "status_changed");
        e.field = Some("status".into());
        e.old_value = Some(from.as_str().into());
        e.new_value = Some(to.as_str().into());
        Ok(Applied {
            entry: e,
            event: EventKind::StatusChanged,
            change: Some(Change {
                field: "status".into(),
                old: Some(from.as_str().into()),
                new: Some(to.as_str().into()),
            }),
            note: None,
        })
    })
    .await
}

/// Changes the severity (up or down).
pub async fn change_severity(
    state: &AppState,
    number: i64,
    actor: Actor,
    to: &str,
    expected: &str,
) -> Result<(), ServiceError> {
    if to.trim().is_empty() {
        // On the declare form an empty severity means "unknown"; here it means nothing was chosen.
        return Err(ServiceError::field(
            "severity",
            "Choose the new severity from the list.",
        ));
    }
    let to = parse_severity(to, &state.settings.severity_ids()).map_err(|e| ServiceError::Invalid(vec![e]))?;
    let expected = expected.to_string();
    mutate(state, number, actor, move |row, actor, now| {
        if row.severity != expected {
            return Err(stale("severity", &row.severity));
        }
        if row.severity == to {
            return Err(ServiceError::Conflict(format!("The severity is already {to}.")));
        }
        let old = std::mem::replace(&mut row.severity, to.clone());
        let mut e = entry(row, actor, now, "severity_changed");
        e.field = Some("severity".into());
        e.old_value = Some(old.clone());
        e.new_value = Some(to.clone());
        Ok(Applied {
            entry: e,
            event: EventKind::SeverityChanged,
            change: Some(Change {
                field: "severity".into(),
                old: Some(old),
                new: Some(to.clone()),
            }),
            note: None,
        })
    })
    .await
}

/// Sets, hands over or clears the lead. `expected_email` is the lead the form showed ("" for none).
pub async fn change_lead(
    state: &AppState,
    number: i64,
    actor: Actor,
    lead: Option<Actor>,
    expected_email: &str,
) -> Result<(), ServiceError> {
    let expected = expected_email.trim().to_ascii_lowercase();
    mutate(state, number, actor, move |row, actor, now| {
        let current = row.lead_email.clone().unwrap_or_default();
        if current != expected {
            return Err(stale("lead", row.lead_name.as_deref().unwrap_or("nobody")));
        }
        if lead.as_ref().map(|l| l.email.as_str()).unwrap_or("") == current {
            return Err(ServiceError::Conflict(
                "That person already leads this incident.".into(),
            ));
        }
        let old = row.lead_name.clone();
        row.lead_name = lead.as_ref().map(|l| l.name.clone());
        row.lead_email = lead.as_ref().map(|l| l.email.clone());
        let mut e = entry(row, actor, now, "lead_changed");
        e.field = Some("lead".into());
        e.old_value = old.clone();
        e.new_value = row.lead_name.clone();
        Ok(Applied {
            entry: e,
            event: EventKind::LeadChanged,
            change: Some(Change {
                field: "lead".into(),
                old,
                new: row.lead_name.clone(),
            }),
            note: None,
        })
    })
    .await
}

/// Adds a free-text note to the timeline.
pub async fn add_note(state: &AppState, number: i64, actor: Actor, body: &str) -> Result<(), ServiceError> {
    let body = body.trim().replace("\r\n", "\n");
    if crate::domain::is_blank(&body) {
        return Err(ServiceError::field("note", "Write something before adding a note."));
    }
    if body.chars().count() > SUMMARY_MAX_CHARS {
        return Err(ServiceError::field("note", "A note can be at most 20,000 characters."));
    }
    if body.contains('\0') {
        return Err(ServiceError::field("note", "A note cannot contain NUL characters."));
    }
    mutate(state, number, actor, move |row, actor, now| {
        let mut e = entry(row, actor, now, "note");
        e.body = Some(body.clone());
        Ok(Applied {
            entry: e,
            event: EventKind::NoteAdded,
            change: None,
            note: Some(body.clone()),
        })
    })
    .await
}

/// Puts a dead-lettered delivery back in the queue and records who asked.
pub async fn retry_delivery(state: &AppState, number: i64, actor: Actor, delivery_id: i64) -> Result<(), ServiceError> {
    state
        .db
        .write(move |conn| -> Result<(), ServiceError> {
            let row = incident::find_by_number_for_update(conn, number)?.ok_or(ServiceError::NotFound)?;
            let now = now_utc();
            let Some(d) = outbox::requeue_dead(conn, delivery_id, row.id, now)? else {
                return Err(ServiceError::Conflict(
                    "That delivery is not failed (it may have been retried already); nothing was changed.".into(),
                ));
            };
            let mut e = entry(&row, &actor, now, "delivery_retried");
            e.field = Some(d.notifier.clone());
            e.body = Some(format!(
                "Retry of the {} {} delivery requested.",
                d.notifier,
                d.event.replace('_', " ")
            ));
            timeline::insert(conn, &e)?;
            incident::touch(conn, row.id, now)?;
            Ok(())
        })
        .await?;
    state.wake.notify_one();
    Ok(())
}
