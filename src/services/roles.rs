//! Incident roles: the lead (incident commander), the comms lead, the scribe and any role from
//! the config file. Each can be taken (nobody → a person), handed over (a person → another) or
//! left (a person → nobody). Every change is one transaction: the holder, a `role_changed`
//! timeline entry (field = role id, old/new = the holders' names) and the outbox rows routing
//! selects for [`EventKind::RoleChanged`]. The lead keeps its own columns, entry kind and event,
//! and goes through [`lifecycle::change_lead`] so it behaves exactly as before.

use chrono::NaiveDateTime;

use super::ServiceError;
use super::lifecycle::{self, entry, iso, musters, snapshot};
use crate::config::Role;
use crate::db::DbConnection;
use crate::db::models::role::{self as role_rows, RoleRow};
use crate::db::models::{IncidentRow, incident, timeline};
use crate::domain::declaration::now_utc;
use crate::domain::{Actor, EventKind, KeyTime, parse_person};
use crate::notifiers::{Change, EventPayload, RoleChange};
use crate::state::AppState;

/// A role on one incident and who holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldRole {
    /// The role as configured.
    pub role: Role,
    /// Its holder, if anyone.
    pub holder: Option<Actor>,
}

/// Every configured role of an incident, in configuration order (the lead first), with its
/// holder: the lead from the incident row, the others from `rows`. A stored role that is no
/// longer configured is not shown (its timeline entries remain).
pub fn held_roles(roles: &[Role], row: &IncidentRow, rows: &[RoleRow]) -> Vec<HeldRole> {
    roles
        .iter()
        .map(|role| HeldRole {
            role: role.clone(),
            holder: if role.is_lead() {
                lifecycle::lead_of(row)
            } else {
                rows.iter()
                    .find(|r| r.incident_id == row.id && r.role == role.id)
                    .map(|r| Actor {
                        name: r.name.clone(),
                        email: r.email.clone(),
                    })
            },
        })
        .collect()
}

/// The configured role `id`, or a clear refusal naming the known ones.
pub fn known_role(state: &AppState, id: &str) -> Result<Role, ServiceError> {
    state.settings.role(id.trim()).ok_or_else(|| {
        let known: Vec<String> = state.settings.roles().into_iter().map(|r| r.id).collect();
        ServiceError::field(
            "role",
            format!(
                "There is no role called \u{201c}{}\u{201d}; the roles are {}.",
                id.trim(),
                known.join(", ")
            ),
        )
    })
}

/// The person a form or request names: someone who has signed in can be named by email alone
/// (their name comes from their user row); anyone else needs a name too.
pub async fn person(state: &AppState, email: &str, name: &str) -> Result<Actor, ServiceError> {
    let email = email.trim().to_ascii_lowercase();
    let mut name = name.trim().to_string();
    if email.is_empty() {
        return Err(ServiceError::field("email", "Choose who should hold the role."));
    }
    if crate::domain::is_blank(&name) {
        let lookup = email.clone();
        match state
            .db
            .run(move |conn| crate::db::models::user::find_by_email(conn, &lookup))
            .await?
        {
            Some(user) => name = user.name,
            None => {
                return Err(ServiceError::field(
                    "email",
                    format!(
                        "Nobody with the email {email} has signed in yet. Pick someone from the list, or give their name too."
                    ),
                ));
            }
        }
    }
    parse_person(&name, &email).map_err(|e| ServiceError::Invalid(vec![e]))
}

fn stale_role(role: &Role, now_held_by: Option<&str>) -> ServiceError {
    ServiceError::Conflict(format!(
        "Someone changed this incident while you were looking: the {} is now {}. Nothing was changed; review and try again.",
        role.in_sentence(),
        now_held_by.unwrap_or("nobody")
    ))
}

/// Gives role `role_id` to `to` (take or hand over), or leaves it held by nobody (`None`).
/// `expected_email` is the holder the form showed ("" for nobody): a form drawn before someone
/// else's change is refused with nothing changed. Giving a role to the person who holds it, or
/// leaving a role nobody holds, is refused too.
pub async fn change_role(
    state: &AppState,
    number: i64,
    actor: Actor,
    role_id: &str,
    to: Option<Actor>,
    expected_email: &str,
) -> Result<(), ServiceError> {
    let role = known_role(state, role_id)?;
    if role.is_lead() {
        return lifecycle::change_lead(state, number, actor, to, expected_email).await;
    }
    let expected = expected_email.trim().to_ascii_lowercase();
    let st = state.clone();
    state
        .db
        .write(move |conn| -> Result<(), ServiceError> {
            let mut row = incident::find_by_number_for_update(conn, number)?.ok_or(ServiceError::NotFound)?;
            let current = role_rows::get(conn, row.id, &role.id)?;
            let current_email = current.as_ref().map(|c| c.email.as_str()).unwrap_or("");
            if current_email != expected {
                return Err(stale_role(&role, current.as_ref().map(|c| c.name.as_str())));
            }
            match (&current, &to) {
                (None, None) => {
                    return Err(ServiceError::Conflict(format!(
                        "Nobody holds the {} role, so there is nothing to leave.",
                        role.in_sentence()
                    )));
                }
                (Some(c), Some(t)) if c.email == t.email => {
                    return Err(ServiceError::Conflict(format!(
                        "{} already holds the {} role.",
                        c.name,
                        role.in_sentence()
                    )));
                }
                _ => {}
            }
            let now = now_utc();
            match &to {
                Some(t) => role_rows::put(
                    conn,
                    &RoleRow {
                        incident_id: row.id,
                        role: role.id.clone(),
                        name: t.name.clone(),
                        email: t.email.clone(),
                        assigned_at: now,
                    },
                )?,
                None => {
                    role_rows::clear(conn, row.id, &role.id)?;
                }
            }
            let old = current.map(|c| c.name);
            let new = to.as_ref().map(|t| t.name.clone());
            let mut e = entry(&row, &actor, now, "role_changed");
            e.field = Some(role.id.clone());
            e.old_value = old.clone();
            e.new_value = new.clone();
            let payload = EventPayload {
                event: EventKind::RoleChanged,
                at: now,
                actor: actor.clone(),
                incident: snapshot(&st, &row, Vec::new()),
                change: Some(Change {
                    field: role.id.clone(),
                    old,
                    new,
                }),
                note: None,
                email_to: Vec::new(),
                step: None,
                follow_up: None,
                role: Some(RoleChange {
                    id: role.id.clone(),
                    name: role.name.clone(),
                    description: role.description.clone(),
                    holder: to.clone(),
                }),
            };
            record(conn, &st, &mut row, &actor, now, e, payload)
        })
        .await?;
    state.wake.notify_one();
    Ok(())
}

/// Writes the incident (updated, and mustered if this is the first action by someone other than
/// the declarer), the timeline entry and the outbox rows, inside the caller's transaction.
fn record(
    conn: &mut DbConnection,
    st: &AppState,
    row: &mut IncidentRow,
    actor: &Actor,
    now: NaiveDateTime,
    e: crate::db::models::NewTimelineEntry,
    mut payload: EventPayload,
) -> Result<(), ServiceError> {
    row.updated_at = now;
    let mustered = musters(row, actor);
    if mustered {
        row.mustered_at = Some(now);
    }
    incident::update(conn, row)?;
    let entry_id = timeline::insert(conn, &e)?;
    if mustered {
        let mut m = entry(row, actor, now, "mustered");
        m.field = Some(KeyTime::Mustered.field().into());
        m.new_value = Some(iso(now));
        timeline::insert(conn, &m)?;
    }
    let snap = lifecycle::load_snapshot(conn, st, row)?;
    payload.incident = snap.clone();
    lifecycle::enqueue_payload(conn, st, &snap, entry_id, payload)?;
    Ok(())
}

/// The holders of every role of incident `number`, for the API and the page.
pub async fn roles_of(state: &AppState, number: i64) -> Result<Vec<HeldRole>, ServiceError> {
    let roles = state.settings.roles();
    state
        .db
        .run(move |conn| {
            let Some(row) = incident::find_by_number(conn, number)? else {
                return Ok(None);
            };
            let rows = role_rows::list_for(conn, row.id)?;
            Ok(Some(held_roles(&roles, &row, &rows)))
        })
        .await?
        .ok_or(ServiceError::NotFound)
}
