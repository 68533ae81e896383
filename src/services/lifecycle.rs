//! Working an incident: status, severity, lead, notes, key times, and retrying a failed delivery.
//! Every change appends to the timeline and enqueues what routing selects, in one transaction.
//! The first change by someone other than the declarer also records when responders mustered.

use chrono::{NaiveDateTime, Timelike};

use super::ServiceError;
use crate::db::DbConnection;
use crate::db::models::{
    IncidentRow, NewOutboxRow, NewStatusUpdate, NewTimelineEntry, incident, outbox, status_update, timeline,
};
use crate::domain::declaration::{SUMMARY_MAX_CHARS, now_utc, parse_severity};
use crate::domain::update::UpdateInput;
use crate::domain::{Actor, EventKind, KeyTime, KeyTimes, Status, check_transition};
use crate::notifiers::{Change, EventPayload, ExtraStep, IncidentSnapshot, UpdateNote};
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
        latest_update: None,
        closed_reason: row.closed_reason.clone(),
        merged_into: row.merged_into_number.map(|n| crate::notifiers::MergedInto {
            number: n,
            url: state.incident_url(n),
        }),
    }
}

/// The incident as notifiers will see it, read inside a transaction: with its services and its
/// latest status update.
pub fn load_snapshot(
    conn: &mut DbConnection,
    state: &AppState,
    row: &IncidentRow,
) -> Result<IncidentSnapshot, ServiceError> {
    let services = incident::services_of(conn, row.id)?;
    let mut snap = snapshot(state, row, services);
    snap.latest_update = status_update::latest_for(conn, row.id)?.map(|u| UpdateNote {
        at: u.at,
        author: Actor {
            name: u.author_name,
            email: u.author_email,
        },
        known: u.known,
        doing: u.doing,
        next_update_at: u.next_update_at,
    });
    Ok(snap)
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
    let base = base_payload(snap, event, actor, change, note, at);
    enqueue_payload(conn, state, snap, timeline_entry_id, base)
}

/// The payload of an event with no event-specific part; routing fills `email_to`.
pub fn base_payload(
    snap: &IncidentSnapshot,
    event: EventKind,
    actor: &Actor,
    change: Option<Change>,
    note: Option<String>,
    at: NaiveDateTime,
) -> EventPayload {
    EventPayload {
        event,
        at,
        actor: actor.clone(),
        incident: snap.clone(),
        change,
        note,
        email_to: Vec::new(),
        step: None,
        follow_up: None,
        role: None,
    }
}

/// [`enqueue`] for a payload the caller has filled (the event, its time, actor, change and any
/// event-specific part such as [`EventPayload::role`]); routing fills `email_to`.
pub fn enqueue_payload(
    conn: &mut DbConnection,
    state: &AppState,
    snap: &IncidentSnapshot,
    timeline_entry_id: i64,
    base: EventPayload,
) -> Result<usize, ServiceError> {
    let routes = route(
        &state.settings,
        &state.notifiers,
        &RouteQuery {
            event: base.event,
            severity: &snap.severity,
            services: &snap.services,
            drill: snap.drill,
        },
    );
    enqueue_routes(conn, state, snap, timeline_entry_id, base, routes)
}

/// Writes one outbox row per given route (see [`enqueue`]); for events that choose their own
/// destinations, like nudges.
pub fn enqueue_routes(
    conn: &mut DbConnection,
    state: &AppState,
    snap: &IncidentSnapshot,
    timeline_entry_id: i64,
    base: EventPayload,
    routes: Vec<crate::routing::Route>,
) -> Result<usize, ServiceError> {
    let (event, at) = (base.event, base.at);
    if routes.is_empty() {
        return Ok(0);
    }
    let incident_id = incident_id_of(conn, snap.number)?;
    let routed: Vec<String> = routes.iter().map(|r| r.notifier.clone()).collect();
    let mut rows = Vec::new();
    for r in routes {
        let payload = EventPayload {
            email_to: r.email_to,
            ..base.clone()
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
pub(super) struct Applied {
    pub(super) entry: NewTimelineEntry,
    pub(super) event: EventKind,
    pub(super) change: Option<Change>,
    pub(super) note: Option<String>,
    /// A status update to store with the entry.
    pub(super) update: Option<NewStatusUpdate>,
}

/// Loads the incident, applies `apply`, writes it back with its timeline entry and outbox rows.
pub(super) async fn mutate<F>(state: &AppState, number: i64, actor: Actor, apply: F) -> Result<(), ServiceError>
where
    F: Fn(&mut IncidentRow, &Actor, NaiveDateTime) -> Result<Applied, ServiceError> + Send + 'static,
{
    let st = state.clone();
    state
        .db
        .write(move |conn| mutate_in(conn, &st, number, &actor, &apply))
        .await?;
    state.wake.notify_one();
    Ok(())
}

/// [`mutate`] inside the caller's transaction (the caller wakes the worker after commit).
pub(super) fn mutate_in<F>(
    conn: &mut DbConnection,
    st: &AppState,
    number: i64,
    actor: &Actor,
    apply: &F,
) -> Result<(), ServiceError>
where
    F: Fn(&mut IncidentRow, &Actor, NaiveDateTime) -> Result<Applied, ServiceError>,
{
    let mut row = incident::find_by_number_for_update(conn, number)?.ok_or(ServiceError::NotFound)?;
    let now = now_utc();
    let applied = apply(&mut row, actor, now)?;
    row.updated_at = now;
    let mustered = musters(&row, actor);
    if mustered {
        row.mustered_at = Some(now);
    }
    incident::update(conn, &row)?;
    let entry_id = timeline::insert(conn, &applied.entry)?;
    if let Some(mut update) = applied.update {
        update.timeline_entry_id = entry_id;
        status_update::insert(conn, &update)?;
    }
    if mustered {
        let mut e = entry(&row, actor, now, "mustered");
        e.field = Some(KeyTime::Mustered.field().into());
        e.new_value = Some(iso(now));
        timeline::insert(conn, &e)?;
    }
    let snap = load_snapshot(conn, st, &row)?;
    enqueue(
        conn,
        st,
        &snap,
        entry_id,
        applied.event,
        actor,
        applied.change,
        applied.note,
        now,
    )?;
    Ok(())
}

/// Whether this change is the one that musters the responders: the first by someone other than the
/// declarer (and not by the tool itself), while no muster time is recorded.
pub(crate) fn musters(row: &IncidentRow, actor: &Actor) -> bool {
    row.mustered_at.is_none()
        && !actor.email.eq_ignore_ascii_case(&row.declared_by_email)
        && actor.email != Actor::system().email
}

/// A stored time as kept in timeline entries: `2026-11-21T14:05:00Z`.
pub fn iso(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The key times of a stored incident.
pub fn key_times_of(row: &IncidentRow) -> KeyTimes {
    KeyTimes {
        impact_started: row.impact_started_at,
        detected: row.detected_at,
        declared: row.declared_at,
        mustered: row.mustered_at,
        mitigated: row.mitigated_at,
        resolved: row.resolved_at,
    }
}

fn store_key_times(row: &mut IncidentRow, t: &KeyTimes) {
    row.impact_started_at = t.impact_started;
    row.detected_at = t.detected;
    row.mustered_at = t.mustered;
    row.mitigated_at = t.mitigated;
    row.resolved_at = t.resolved;
}

/// What a form showed of the editable key times, so a change made meanwhile is noticed: their
/// stored values to the microsecond, in [`KeyTime::EDITABLE`] order.
pub fn key_times_fingerprint(row: &IncidentRow) -> String {
    let t = key_times_of(row);
    KeyTime::EDITABLE
        .iter()
        .map(|k| {
            t.get(*k)
                .map(|v| v.and_utc().timestamp_micros().to_string())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// What to do with one key time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTimeEdit {
    /// Leave it as it is.
    Keep,
    /// Forget it (not recorded).
    Clear,
    /// Set it (UTC).
    Set(NaiveDateTime),
}

/// Whether `submitted` is `current` as a form shows it: forms carry minutes (or seconds), the
/// store microseconds, so an unchanged field sent back must not count as a change.
fn same_as_shown(current: NaiveDateTime, submitted: NaiveDateTime) -> bool {
    let to_second = |t: NaiveDateTime| t.with_nanosecond(0).unwrap_or(t);
    let to_minute = |t: NaiveDateTime| to_second(t).with_second(0).unwrap_or(t);
    if submitted.nanosecond() != 0 {
        current == submitted
    } else if submitted.second() != 0 {
        to_second(current) == submitted
    } else {
        to_minute(current) == submitted
    }
}

/// Sets, changes or clears key times by hand. Everything is checked first (declared is fixed, the
/// mitigated and resolved times follow the status, the order rules of [`KeyTimes::validate`]);
/// a refusal stores nothing. Each changed time gets its own timeline entry (`key_time_changed`,
/// with the field and the old and new values in UTC), the audit trail of the edit. `expected` is
/// [`key_times_fingerprint`] as the form showed it; `None` skips that check (the API).
/// Returns how many times changed. Nothing is sent to integrations.
pub async fn set_key_times(
    state: &AppState,
    number: i64,
    actor: Actor,
    edits: Vec<(KeyTime, KeyTimeEdit)>,
    expected: Option<String>,
) -> Result<usize, ServiceError> {
    if edits
        .iter()
        .any(|(k, e)| *k == KeyTime::Declared && *e != KeyTimeEdit::Keep)
    {
        return Err(ServiceError::field(
            "declared",
            "The declaration time is when the incident was made here and cannot be changed.",
        ));
    }
    state
        .db
        .write(move |conn| -> Result<usize, ServiceError> {
            let mut row = incident::find_by_number_for_update(conn, number)?.ok_or(ServiceError::NotFound)?;
            if let Some(expected) = &expected
                && *expected != key_times_fingerprint(&row)
            {
                return Err(ServiceError::Conflict(
                    "Someone changed the key times while you were looking. Nothing was changed; review them and try again."
                        .into(),
                ));
            }
            let status = Status::parse(&row.status).unwrap_or(Status::Investigating);
            let before = key_times_of(&row);
            let mut after = before;
            let mut changed = Vec::new();
            for (k, edit) in &edits {
                let old = before.get(*k);
                let new = match edit {
                    KeyTimeEdit::Keep => continue,
                    KeyTimeEdit::Clear => None,
                    KeyTimeEdit::Set(t) if old.is_some_and(|o| same_as_shown(o, *t)) => continue,
                    KeyTimeEdit::Set(t) => Some(*t),
                };
                if new == old {
                    continue;
                }
                follows_status(*k, status, new)?;
                after.set(*k, new);
                changed.push((*k, old, new));
            }
            if changed.is_empty() {
                // Nothing to change: not even an order problem stored earlier is a reason to refuse.
                return Ok(0);
            }
            let now = now_utc();
            after.validate(now).map_err(|e| ServiceError::Invalid(vec![e]))?;
            store_key_times(&mut row, &after);
            row.updated_at = now;
            incident::update(conn, &row)?;
            for (k, old, new) in &changed {
                let mut e = entry(&row, &actor, now, "key_time_changed");
                e.field = Some(k.field().into());
                e.old_value = old.map(iso);
                e.new_value = new.map(iso);
                timeline::insert(conn, &e)?;
            }
            Ok(changed.len())
        })
        .await
}

/// The mitigated and resolved times belong to the status: they are recorded by moving it, and
/// can be corrected by hand, but not invented or removed while the status says otherwise.
fn follows_status(k: KeyTime, status: Status, new: Option<NaiveDateTime>) -> Result<(), ServiceError> {
    let (needs, word) = match k {
        KeyTime::Mitigated => (matches!(status, Status::Mitigated | Status::Resolved), "mitigated"),
        KeyTime::Resolved => (status == Status::Resolved, "resolved"),
        _ => return Ok(()),
    };
    match (needs, new) {
        (true, None) => Err(ServiceError::field(
            k.field(),
            format!(
                "The incident is {}, so it keeps a {word} time: correct it rather than clearing it, or move the status back first.",
                status.as_str()
            ),
        )),
        (false, Some(_)) => Err(ServiceError::field(
            k.field(),
            format!(
                "The incident is {}, not {word}: move the status to {word} first, then correct the time here.",
                status.as_str()
            ),
        )),
        _ => Ok(()),
    }
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

pub(super) fn stale(what: &str, now_is: &str) -> ServiceError {
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
    if !to.is_plain_target() {
        return Err(ServiceError::field(
            "status",
            "Declining (not an incident) needs a reason and merging needs the surviving incident: \
             use their own forms on the incident page.",
        ));
    }
    mutate(state, number, actor, move_status(to, expected.to_string())).await
}

/// The change that moves the status to `to` from `expected` (refused when the incident is no
/// longer there), for [`mutate`] or [`mutate_in`]. `to` must be a plain target.
pub(super) fn move_status(
    to: Status,
    expected: String,
) -> impl Fn(&mut IncidentRow, &Actor, NaiveDateTime) -> Result<Applied, ServiceError> + Send + 'static {
    move |row, actor, now| {
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
            Status::Declined | Status::Merged => {
                // Refused above; declining and merging have their own use cases.
                return Err(ServiceError::Conflict("use the decline or merge action".into()));
            }
            Status::Investigating | Status::Identified => {
                // Reopening or stepping back: the incident is no longer mitigated or resolved
                // (nor declined). The earlier times and the reason stay on the timeline.
                row.resolved_at = None;
                row.mitigated_at = None;
                row.closed_reason = None;
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
            update: None,
        })
    }
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
            update: None,
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
            update: None,
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
            update: None,
        })
    })
    .await
}

/// Posts a status update for stakeholders: a timeline entry of its own kind, stored with its
/// parts, and sent wherever routing sends `status_update` (the incident channel and the central
/// announcement, the severity's email lists, a Jira comment, webhooks).
pub async fn post_update(state: &AppState, number: i64, actor: Actor, input: UpdateInput) -> Result<(), ServiceError> {
    mutate(state, number, actor, move |row, actor, now| {
        let status = Status::parse(&row.status).unwrap_or(Status::Investigating);
        if status.is_closed() {
            return Err(ServiceError::Conflict(
                "This incident is closed: reopen it before posting an update, or add a note.".into(),
            ));
        }
        let next_update_at = input
            .next_in_minutes
            .map(|m| now + chrono::Duration::minutes(i64::from(m)));
        let mut e = entry(row, actor, now, "status_update");
        e.body = Some(format!("{}\n\n{}", input.known, input.doing));
        e.new_value = next_update_at.map(iso);
        Ok(Applied {
            entry: e,
            event: EventKind::StatusUpdate,
            change: None,
            note: None,
            update: Some(NewStatusUpdate {
                incident_id: row.id,
                timeline_entry_id: 0,
                at: now,
                author_name: actor.name.clone(),
                author_email: actor.email.clone(),
                known: input.known.clone(),
                doing: input.doing.clone(),
                next_update_at,
            }),
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
