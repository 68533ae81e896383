//! Nudges: reminders posted to the incident channel (and emailed to the lead when configured)
//! when an incident has no lead, no status update or no resolution for too long.
//!
//! Every process runs [`run_loop`]; what was sent lives in the `nudges` table, one row per
//! incident, kind and period under a unique key, written in the same transaction as the nudge's
//! timeline entry and outbox rows. So a restart resumes without repeating anything, and several
//! replicas looking at the same moment send each nudge once: the incident row lock serialises
//! them and the second finds the row (the unique key is the backstop).

use chrono::NaiveDateTime;

use super::ServiceError;
use super::lifecycle::{base_payload, enqueue_routes, entry, lead_of, load_snapshot};
use crate::db::models::{IncidentFilter, IncidentRow, incident, status_update, timeline};
use crate::domain::declaration::now_utc;
use crate::domain::update::{DueNudge, NudgeFacts, NudgeKind, due_nudges, span};
use crate::domain::{Actor, EventKind, Status};
use crate::routing::Route;
use crate::state::AppState;

/// At most this many open incidents are looked at per pass (oldest first would be fairer, but
/// an installation with this many open incidents has other problems).
const MAX_OPEN: i64 = 1_000;

/// A nudge that went out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The incident number.
    pub number: i64,
    /// What about.
    pub kind: NudgeKind,
}

fn facts(
    state: &AppState,
    row: &IncidentRow,
    latest: Option<(NaiveDateTime, Option<NaiveDateTime>)>,
) -> Option<NudgeFacts> {
    let status = Status::parse(&row.status)?;
    let cadence = state.settings.cadence(&row.severity);
    Some(NudgeFacts {
        status,
        has_lead: row.lead_email.is_some(),
        declared_at: row.declared_at,
        mitigated_at: row.mitigated_at,
        latest_update: latest,
        no_lead_minutes: cadence.no_lead_minutes,
        update_minutes: cadence.update_minutes,
        mitigated_minutes: cadence.mitigated_minutes,
    })
}

/// The nudges due for a stored incident as of `now` (the incident page shows them as reminders).
pub fn due_now(
    state: &AppState,
    row: &IncidentRow,
    latest: Option<(NaiveDateTime, Option<NaiveDateTime>)>,
    now: NaiveDateTime,
) -> Vec<DueNudge> {
    facts(state, row, latest)
        .map(|f| due_nudges(&f, now))
        .unwrap_or_default()
}

/// What is overdue, in one sentence.
pub fn reminder(row: &IncidentRow, n: &DueNudge, now: NaiveDateTime) -> String {
    let reference = format!("INC-{}", row.number);
    let ago = |t: NaiveDateTime| span((now - t).num_minutes().max(0));
    match n.kind {
        NudgeKind::NoLead => format!("Nobody is leading {reference}, declared {} ago.", ago(row.declared_at)),
        NudgeKind::NoUpdate => format!(
            "{reference} owes its stakeholders a status update: one was due at {} ({} ago).",
            n.overdue_since.format("%H:%M UTC"),
            ago(n.overdue_since)
        ),
        NudgeKind::Unresolved => format!(
            "{reference} has been mitigated for {} without being resolved.",
            ago(row.mitigated_at.unwrap_or(now))
        ),
    }
}

/// What the nudge says: the reminder, what to do about it, and a link to do it.
pub fn message(row: &IncidentRow, n: &DueNudge, now: NaiveDateTime, url: &str) -> String {
    let ask = match n.kind {
        NudgeKind::NoLead => "Someone please take the lead",
        NudgeKind::NoUpdate => "Post what we know and what we are doing",
        NudgeKind::Unresolved => "Resolve it if the impact is over, or note what is left",
    };
    format!("{} {ask}: {url}", reminder(row, n, now))
}

/// Where a nudge goes: the incident channel, and the lead's inbox when configured.
fn routes(state: &AppState, row: &IncidentRow) -> Vec<Route> {
    let mut out = Vec::new();
    let enabled = |n: &str| state.notifiers.iter().any(|x| x == n);
    if enabled("slack") {
        out.push(Route {
            notifier: "slack".into(),
            email_to: Vec::new(),
        });
    }
    if state.settings.nudges.email_lead
        && enabled("email")
        && let Some(lead) = lead_of(row)
    {
        out.push(Route {
            notifier: "email".into(),
            email_to: vec![lead.email.to_ascii_lowercase()],
        });
    }
    out
}

/// Looks once for overdue incidents as of `now` and sends what is due and not yet sent. Returns
/// what this call sent (another process may have sent the rest).
pub async fn run_once(state: &AppState, now: NaiveDateTime) -> Result<Vec<Sent>, ServiceError> {
    let open = state
        .db
        .run(|conn| {
            let rows = incident::list(
                conn,
                &IncidentFilter {
                    live: Some(true),
                    ..Default::default()
                },
                MAX_OPEN,
                0,
            )?;
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            let latest = status_update::latest_for_each(conn, &ids)?;
            let sent = status_update::nudges_of_many(conn, &ids)?;
            Ok((rows, latest, sent))
        })
        .await?;
    let (rows, latest, already) = open;
    let mut sent = Vec::new();
    for row in rows {
        let l = latest
            .iter()
            .find(|u| u.incident_id == row.id)
            .map(|u| (u.at, u.next_update_at));
        let Some(f) = facts(state, &row, l) else { continue };
        for due in due_nudges(&f, now) {
            let done = already
                .iter()
                .any(|n| n.incident_id == row.id && n.kind == due.kind.as_str() && n.period == due.period);
            if !done && send(state, row.number, &due, now).await? {
                sent.push(Sent {
                    number: row.number,
                    kind: due.kind,
                });
            }
        }
    }
    if !sent.is_empty() {
        state.wake.notify_one();
    }
    Ok(sent)
}

/// Sends one nudge if it is still due once the incident is locked and nobody sent it meanwhile.
async fn send(state: &AppState, number: i64, due: &DueNudge, now: NaiveDateTime) -> Result<bool, ServiceError> {
    let st = state.clone();
    let due = due.clone();
    state
        .db
        .write(move |conn| -> Result<bool, ServiceError> {
            let Some(row) = incident::find_by_number_for_update(conn, number)? else {
                return Ok(false);
            };
            let latest = status_update::latest_for(conn, row.id)?.map(|u| (u.at, u.next_update_at));
            let Some(f) = facts(&st, &row, latest) else {
                return Ok(false);
            };
            // The incident may have changed since the first look (a lead taken, an update posted).
            if !due_nudges(&f, now).contains(&due)
                || status_update::nudge_sent(conn, row.id, due.kind.as_str(), &due.period)?
            {
                return Ok(false);
            }
            match status_update::record_nudge(conn, row.id, due.kind.as_str(), &due.period, now) {
                Ok(()) => {}
                Err(e) if crate::db::is_unique_violation(&e) => {
                    return Err(ServiceError::Conflict("sent by another process".into()));
                }
                Err(e) => return Err(e.into()),
            }
            let text = message(&row, &due, now, &st.incident_url(row.number));
            let system = Actor::system();
            let mut e = entry(&row, &system, now, "nudge");
            e.field = Some(due.kind.as_str().into());
            e.body = Some(text.clone());
            let entry_id = timeline::insert(conn, &e)?;
            let snap = load_snapshot(conn, &st, &row)?;
            // Sent at once, even when `now` is a clock set ahead (tests): the worker goes by the
            // real time.
            let send_at = now.min(now_utc());
            let payload = base_payload(&snap, EventKind::Nudge, &system, None, Some(text), send_at);
            enqueue_routes(conn, &st, &snap, entry_id, payload, routes(&st, &row))?;
            Ok(true)
        })
        .await
        .or_else(|e| match e {
            ServiceError::Conflict(_) => Ok(false),
            other => Err(other),
        })
}

/// Looks for overdue incidents every `[nudges] check_every_seconds` until `stop` turns true.
pub async fn run_loop(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let every = std::time::Duration::from_secs(state.settings.nudges.check_every_seconds.max(1));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        match run_once(&state, now_utc()).await {
            Ok(sent) if !sent.is_empty() => tracing::info!(nudges = sent.len(), "nudges sent"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "looking for overdue incidents failed; trying again later"),
        }
    }
}
