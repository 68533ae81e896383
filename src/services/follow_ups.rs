//! Follow-ups: an incident's action items. Adding one, closing or reopening it, and changing its
//! owner or due date each write a timeline entry on the incident in the same transaction. With
//! `integrations.jira.follow_ups` on, adding one also enqueues the Jira issue for it (durably,
//! in the same transaction), and [`JiraSync`] keeps the status in step with Jira's.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime};

use super::ServiceError;
use super::lifecycle::snapshot;
use crate::db::DbConnection;
use crate::db::models::follow_up::{self, FollowUpRow, NewFollowUp, OverdueRow};
use crate::db::models::{IncidentRow, NewOutboxRow, NewTimelineEntry, incident, outbox, timeline, user};
use crate::domain::declaration::now_utc;
use crate::domain::follow_up::{
    FollowUpStatus, OwnerInput, StatusAction, due_text, next_status, parse_due, parse_owner, parse_title,
};
use crate::domain::{Actor, EventKind, FieldError};
use crate::notifiers::jira::JiraNotifier;
use crate::notifiers::{EventPayload, FollowUpPayload};
use crate::state::AppState;

/// Timeline kind of a new follow-up.
pub const ADDED: &str = "follow_up_added";
/// Timeline kind of a change to one (field `status`, `owner` or `due_on`).
pub const CHANGED: &str = "follow_up_changed";
/// The most overdue follow-ups the dashboard lists.
pub const OVERDUE_LIMIT: i64 = 200;
/// How long after closing a follow-up the Jira sync still looks at it (to notice a reopen).
pub const SYNC_CLOSED_DAYS: i64 = 30;
/// The most follow-ups one sync pass reads.
pub const SYNC_LIMIT: i64 = 2_000;

/// Today's date in UTC: what "overdue" is measured against.
pub fn today() -> NaiveDate {
    now_utc().date()
}

/// A follow-up's owner, resolved: a person who signed in gets their name, an email nobody has
/// signed in with is kept as given (shown as the address), a name is a person or a team.
fn resolve_owner(conn: &mut DbConnection, owner: &OwnerInput) -> diesel::QueryResult<(String, Option<String>)> {
    Ok(match owner {
        OwnerInput::Name(name) => (name.clone(), None),
        OwnerInput::Email(email) => {
            let name = user::find_by_email(conn, email)?
                .map(|u| u.name)
                .unwrap_or_else(|| email.clone());
            (name, Some(email.clone()))
        }
    })
}

fn entry(row: &IncidentRow, actor: &Actor, at: NaiveDateTime, kind: &str) -> NewTimelineEntry {
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

fn owner_text(name: &str, email: Option<&str>) -> String {
    match email {
        Some(e) if !e.eq_ignore_ascii_case(name) => format!("{name} <{e}>"),
        _ => name.to_string(),
    }
}

/// Whether this process opens Jira issues for follow-ups.
pub fn jira_enabled(state: &AppState) -> bool {
    state.settings.integrations.jira.as_ref().is_some_and(|j| j.follow_ups) && state.registry.get("jira").is_some()
}

/// Records a follow-up on incident `number`. Every field is checked first; a refusal names each
/// problem and stores nothing. Returns the new follow-up's id.
pub async fn add(
    state: &AppState,
    number: i64,
    actor: Actor,
    title: &str,
    owner: &str,
    due_on: &str,
) -> Result<i64, ServiceError> {
    let mut errors: Vec<FieldError> = Vec::new();
    let title = parse_title(title).map_err(|e| errors.push(e)).ok();
    let owner = parse_owner(owner).map_err(|e| errors.push(e)).ok();
    let due = parse_due(due_on, today()).map_err(|e| errors.push(e)).ok();
    let (Some(title), Some(owner), Some(due)) = (title, owner, due) else {
        return Err(ServiceError::Invalid(errors));
    };
    let st = state.clone();
    let id = state
        .db
        .write(move |conn| -> Result<i64, ServiceError> {
            let row = incident::find_by_number_for_update(conn, number)?.ok_or(ServiceError::NotFound)?;
            let now = now_utc();
            let (owner_name, owner_email) = resolve_owner(conn, &owner)?;
            let new = NewFollowUp {
                incident_id: row.id,
                title: title.clone(),
                owner_name: owner_name.clone(),
                owner_email: owner_email.clone(),
                due_on: due_text(due),
                status: FollowUpStatus::Open.as_str().into(),
                created_by_name: actor.name.clone(),
                created_by_email: actor.email.clone(),
                created_at: now,
                updated_at: now,
            };
            let id = follow_up::insert(conn, &new)?;
            let mut e = entry(&row, &actor, now, ADDED);
            e.field = Some(format!("follow_up:{id}"));
            e.new_value = Some(format!(
                "{}, due {}",
                owner_text(&owner_name, owner_email.as_deref()),
                new.due_on
            ));
            e.body = Some(title.clone());
            let entry_id = timeline::insert(conn, &e)?;
            incident::touch(conn, row.id, now)?;
            if jira_enabled(&st) {
                enqueue_jira(conn, &st, &row, entry_id, &actor, now, &new, id)?;
            }
            Ok(id)
        })
        .await?;
    state.wake.notify_one();
    Ok(id)
}

/// Writes the outbox row that opens the follow-up's Jira issue. It runs in the incident's Jira
/// order (after the incident's own ticket, which it links to), never reaches other integrations
/// (it is not routed), and carries a snapshot of the follow-up as recorded.
#[allow(clippy::too_many_arguments)]
fn enqueue_jira(
    conn: &mut DbConnection,
    state: &AppState,
    row: &IncidentRow,
    entry_id: i64,
    actor: &Actor,
    at: NaiveDateTime,
    new: &NewFollowUp,
    id: i64,
) -> Result<(), ServiceError> {
    let services = incident::services_of(conn, row.id)?;
    let payload = EventPayload {
        event: EventKind::FollowUpAdded,
        at,
        actor: actor.clone(),
        incident: snapshot(state, row, services),
        change: None,
        note: None,
        email_to: vec![],
        step: None,
        role: None,
        follow_up: Some(FollowUpPayload {
            id,
            title: new.title.clone(),
            owner_name: new.owner_name.clone(),
            owner_email: new.owner_email.clone(),
            due_on: new.due_on.clone(),
        }),
    };
    let target = state
        .registry
        .get("jira")
        .and_then(|n| n.target(&payload))
        .map(|t| format!("{t} (follow-up)"));
    outbox::insert_many(
        conn,
        &[NewOutboxRow {
            incident_id: row.id,
            timeline_entry_id: Some(entry_id),
            notifier: "jira".into(),
            event: EventKind::FollowUpAdded.as_str().into(),
            idempotency_key: format!("inc-{}-t{entry_id}-jira", row.number),
            payload: serde_json::to_string(&payload).map_err(|e| ServiceError::Conflict(e.to_string()))?,
            state: "pending".into(),
            attempts: 0,
            next_attempt_at: at,
            created_at: at,
            updated_at: at,
            sequence_key: Some(format!("{}:jira", row.id)),
            target,
        }],
    )?;
    Ok(())
}

fn load(conn: &mut DbConnection, number: i64, id: i64) -> Result<(IncidentRow, FollowUpRow), ServiceError> {
    let row = incident::find_by_number_for_update(conn, number)?.ok_or(ServiceError::NotFound)?;
    let fu = follow_up::find(conn, row.id, id)?
        .ok_or_else(|| ServiceError::field("follow_up", format!("There is no such follow-up on INC-{number}.")))?;
    Ok((row, fu))
}

fn status_of(row: &FollowUpRow) -> FollowUpStatus {
    FollowUpStatus::parse(&row.status).unwrap_or(FollowUpStatus::Open)
}

/// Writes a status change with its timeline entry (inside the caller's transaction).
fn write_status(
    conn: &mut DbConnection,
    incident: &IncidentRow,
    fu: &mut FollowUpRow,
    to: FollowUpStatus,
    actor: &Actor,
    now: NaiveDateTime,
) -> Result<(), ServiceError> {
    let from = status_of(fu);
    fu.status = to.as_str().into();
    fu.closed_at = to.is_closed().then_some(now);
    fu.updated_at = now;
    follow_up::update(conn, fu)?;
    let mut e = entry(incident, actor, now, CHANGED);
    e.field = Some("status".into());
    e.old_value = Some(from.as_str().into());
    e.new_value = Some(to.as_str().into());
    e.body = Some(fu.title.clone());
    timeline::insert(conn, &e)?;
    incident::touch(conn, incident.id, now)?;
    Ok(())
}

/// Marks follow-up `id` done or won't do, or reopens it. `expected` is the status the form
/// showed (`None` skips that check): a form drawn before someone else's change is refused.
pub async fn change_status(
    state: &AppState,
    number: i64,
    actor: Actor,
    id: i64,
    action: &str,
    expected: Option<&str>,
) -> Result<(), ServiceError> {
    let action = StatusAction::parse(action).map_err(|e| ServiceError::Invalid(vec![e]))?;
    let expected = expected.map(str::to_string);
    state
        .db
        .write(move |conn| -> Result<(), ServiceError> {
            let (row, mut fu) = load(conn, number, id)?;
            let current = status_of(&fu);
            if expected.as_deref().is_some_and(|e| e != current.as_str()) {
                return Err(ServiceError::Conflict(format!(
                    "Someone changed this follow-up while you were looking: it is {} now. Nothing was changed.",
                    current.label().to_lowercase()
                )));
            }
            let to = next_status(current, action).map_err(ServiceError::Conflict)?;
            write_status(conn, &row, &mut fu, to, &actor, now_utc())
        })
        .await
}

/// Changes follow-up `id`'s owner and due date; an empty field is left as it is. Each field that
/// changes gets its own timeline entry. Returns how many changed.
pub async fn edit(
    state: &AppState,
    number: i64,
    actor: Actor,
    id: i64,
    owner: &str,
    due_on: &str,
) -> Result<usize, ServiceError> {
    let mut errors: Vec<FieldError> = Vec::new();
    let owner = (!owner.trim().is_empty())
        .then(|| parse_owner(owner).map_err(|e| errors.push(e)).ok())
        .flatten();
    let due = (!due_on.trim().is_empty())
        .then(|| parse_due(due_on, today()).map_err(|e| errors.push(e)).ok())
        .flatten();
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    state
        .db
        .write(move |conn| -> Result<usize, ServiceError> {
            let (row, mut fu) = load(conn, number, id)?;
            let now = now_utc();
            let mut changes: Vec<(&str, String, String)> = Vec::new();
            if let Some(owner) = &owner {
                let (name, email) = resolve_owner(conn, owner)?;
                let before = owner_text(&fu.owner_name, fu.owner_email.as_deref());
                let after = owner_text(&name, email.as_deref());
                if before != after {
                    fu.owner_name = name;
                    fu.owner_email = email;
                    changes.push(("owner", before, after));
                }
            }
            if let Some(due) = due.map(due_text)
                && due != fu.due_on
            {
                changes.push(("due_on", fu.due_on.clone(), due.clone()));
                fu.due_on = due;
            }
            if changes.is_empty() {
                return Ok(0);
            }
            fu.updated_at = now;
            follow_up::update(conn, &fu)?;
            for (field, old, new) in &changes {
                let mut e = entry(&row, &actor, now, CHANGED);
                e.field = Some((*field).into());
                e.old_value = Some(old.clone());
                e.new_value = Some(new.clone());
                e.body = Some(fu.title.clone());
                timeline::insert(conn, &e)?;
            }
            incident::touch(conn, row.id, now)?;
            Ok(changes.len())
        })
        .await
}

/// An incident's follow-ups, oldest first.
pub async fn list(state: &AppState, number: i64) -> Result<Vec<FollowUpRow>, ServiceError> {
    state
        .db
        .run(move |conn| {
            let Some(row) = incident::find_by_number(conn, number)? else {
                return Ok(None);
            };
            follow_up::list_for(conn, row.id).map(Some)
        })
        .await?
        .ok_or(ServiceError::NotFound)
}

/// Open follow-ups due before today, across incidents, earliest due first.
pub async fn overdue(state: &AppState) -> Result<Vec<OverdueRow>, ServiceError> {
    let today = due_text(today());
    Ok(state
        .db
        .run(move |conn| follow_up::overdue(conn, &today, OVERDUE_LIMIT))
        .await?)
}

// ---------------------------------------------------------------------------------------------
// Keeping the status in step with Jira.

/// What the sync does with a follow-up, given its status here, the Jira status category it saw
/// last time and the one Jira reports now. It acts only when Jira's side changed: into `done`
/// closes an open follow-up, out of `done` reopens one that is done. A difference people made
/// here (closing it while the issue is still open in Jira) is left alone.
pub fn sync_decision(here: FollowUpStatus, seen: Option<&str>, now: &str) -> Option<FollowUpStatus> {
    if seen == Some(now) {
        return None;
    }
    match (here, now == "done") {
        (FollowUpStatus::Open, true) => Some(FollowUpStatus::Done),
        (FollowUpStatus::Done, false) if seen == Some("done") => Some(FollowUpStatus::Open),
        _ => None,
    }
}

/// What one sync pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Follow-ups whose issue was asked about.
    pub checked: usize,
    /// Follow-ups closed because their issue was done.
    pub closed: usize,
    /// Follow-ups reopened because their issue left done.
    pub reopened: usize,
}

/// Reads the status of follow-up issues from Jira and applies [`sync_decision`]. Runs in every
/// server process; each change is checked again inside its own transaction, so several replicas
/// polling at once write each change once.
#[derive(Clone)]
pub struct JiraSync {
    state: AppState,
    jira: Arc<JiraNotifier>,
    interval: Duration,
}

impl JiraSync {
    /// The sync for this configuration, when Jira follow-ups are on.
    pub fn from_state(state: &AppState) -> anyhow::Result<Option<Self>> {
        let settings = &state.settings;
        let Some(cfg) = settings.integrations.jira.as_ref().filter(|j| j.follow_ups) else {
            return Ok(None);
        };
        let token = crate::notifiers::common::secret(settings, &cfg.token_env)?;
        let jira = JiraNotifier::new(cfg, settings, &token, settings.outbox.delivery_timeout_ms)?;
        Ok(Some(Self {
            state: state.clone(),
            jira: Arc::new(jira),
            interval: Duration::from_secs(cfg.follow_up_sync_seconds),
        }))
    }

    /// One pass: one search per batch of keys, then one transaction per follow-up that changes.
    pub async fn run_once(&self) -> Result<SyncReport, ServiceError> {
        let since = now_utc() - chrono::Duration::days(SYNC_CLOSED_DAYS);
        let rows = self
            .state
            .db
            .run(move |conn| follow_up::with_jira_issue(conn, since, SYNC_LIMIT))
            .await?;
        let mut report = SyncReport::default();
        if rows.is_empty() {
            return Ok(report);
        }
        let keys: Vec<String> = rows
            .iter()
            .filter_map(|r| r.jira_key.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let categories: BTreeMap<String, String> = self
            .jira
            .status_categories(&keys)
            .await
            .map_err(|e| ServiceError::Conflict(format!("could not read follow-up issues from Jira: {e}")))?;
        for row in rows {
            let Some(now) = row.jira_key.as_ref().and_then(|k| categories.get(k)).cloned() else {
                continue;
            };
            report.checked += 1;
            match self.apply(row.incident_id, row.id, now).await? {
                Some(FollowUpStatus::Open) => report.reopened += 1,
                Some(_) => report.closed += 1,
                None => {}
            }
        }
        Ok(report)
    }

    async fn apply(&self, incident_id: i64, id: i64, category: String) -> Result<Option<FollowUpStatus>, ServiceError> {
        self.state
            .db
            .write(move |conn| -> Result<Option<FollowUpStatus>, ServiceError> {
                use crate::db::schema::incidents;
                use diesel::prelude::*;
                let number: i64 = incidents::table
                    .find(incident_id)
                    .select(incidents::number)
                    .first(conn)?;
                let (row, mut fu) = load(conn, number, id)?;
                if fu.jira_status.as_deref() == Some(category.as_str()) {
                    return Ok(None);
                }
                let decision = sync_decision(status_of(&fu), fu.jira_status.as_deref(), &category);
                fu.jira_status = Some(category.clone());
                match decision {
                    Some(to) => write_status(conn, &row, &mut fu, to, &Actor::system(), now_utc())?,
                    None => follow_up::update(conn, &fu)?,
                }
                Ok(decision)
            })
            .await
    }

    /// Runs a pass every interval until `shutdown` turns true. Failures are logged and the next
    /// pass tries again.
    pub async fn run(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        tracing::info!(
            every_seconds = self.interval.as_secs(),
            "follow-up sync with Jira started"
        );
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
            match self.run_once().await {
                Ok(r) if r.closed + r.reopened > 0 => {
                    tracing::info!(
                        checked = r.checked,
                        closed = r.closed,
                        reopened = r.reopened,
                        "follow-ups synced from Jira"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error.message = %e, "follow-up sync with Jira failed; trying again next time"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FollowUpStatus::*;

    #[test]
    fn the_sync_follows_changes_on_jiras_side_only() {
        assert_eq!(
            sync_decision(Open, None, "done"),
            Some(Done),
            "first look, already done"
        );
        assert_eq!(sync_decision(Open, Some("new"), "done"), Some(Done));
        assert_eq!(sync_decision(Open, Some("indeterminate"), "done"), Some(Done));
        assert_eq!(
            sync_decision(Done, Some("done"), "indeterminate"),
            Some(Open),
            "reopened in Jira"
        );
        assert_eq!(sync_decision(Open, None, "new"), None);
        assert_eq!(sync_decision(Done, Some("done"), "done"), None, "nothing moved");
        // Closed here while Jira still has it open: left alone.
        assert_eq!(sync_decision(Done, Some("new"), "indeterminate"), None);
        assert_eq!(sync_decision(Done, None, "new"), None);
        assert_eq!(sync_decision(WontDo, Some("new"), "done"), None, "won't do stays");
        assert_eq!(sync_decision(WontDo, Some("done"), "new"), None);
    }

    #[test]
    fn owners_show_their_address_unless_it_is_their_name() {
        assert_eq!(owner_text("Ada", Some("ada@example.com")), "Ada <ada@example.com>");
        assert_eq!(
            owner_text("ada@example.com", Some("ada@example.com")),
            "ada@example.com"
        );
        assert_eq!(owner_text("Payments team", None), "Payments team");
    }
}
