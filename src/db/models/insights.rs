//! The reads behind the insights page: the counted incidents declared in a window and, for all of
//! them at once, their services, their lead and role changes and their delivered pages. Five
//! queries whatever the number of incidents; the other tables are narrowed with a subquery on the
//! same window rather than a list of ids, so no statement grows with the history.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::models::IncidentRow;
use crate::db::schema::{incident_services, incidents, outbox, timeline_entries};

/// The notifiers that page people.
pub const PAGERS: [&str; 2] = ["pagerduty", "opsgenie"];

/// A lead or role change: `(incident id, at, kind, field, new value)`.
pub type RoleChangeRow = (i64, NaiveDateTime, String, Option<String>, Option<String>);

/// A delivered pager row: `(incident id, event, created, delivered, payload)`.
pub type PagerRow = (i64, String, NaiveDateTime, Option<NaiveDateTime>, Option<String>);

/// Everything the insights page reads, as stored.
#[derive(Debug, Default)]
pub struct HistoryRows {
    /// Counted incidents declared in the window, oldest first.
    pub incidents: Vec<IncidentRow>,
    /// `(incident id, service)`, by incident then service id.
    pub services: Vec<(i64, String)>,
    /// `(incident id, at, kind, field, new value)` of `lead_changed` and `role_changed` entries,
    /// in the order they happened.
    pub role_changes: Vec<RoleChangeRow>,
    /// Delivered pager rows: `(incident id, event, created, delivered, payload)`; the payload is
    /// read only for events other than `declared` (a declaration always opens a page).
    pub pages: Vec<PagerRow>,
}

fn uncounted() -> Vec<&'static str> {
    crate::domain::Status::UNCOUNTED.iter().map(|s| s.as_str()).collect()
}

/// The ids of counted incidents declared in `[start, end)`, as a subquery.
macro_rules! counted_ids {
    ($start:expr, $end:expr) => {
        incidents::table
            .filter(incidents::declared_at.ge($start))
            .filter(incidents::declared_at.lt($end))
            .filter(incidents::drill.eq(false))
            .filter(incidents::status.ne_all(uncounted()))
            .select(incidents::id)
    };
}

/// Reads the history of counted incidents declared in `[start, end)`, affecting `service` when
/// one is given (the other tables are read for the whole window; the caller keeps what it needs).
pub fn history(
    conn: &mut DbConnection,
    start: NaiveDateTime,
    end: NaiveDateTime,
    service: Option<&str>,
) -> QueryResult<HistoryRows> {
    let mut q = incidents::table
        .into_boxed::<crate::db::MultiBackend>()
        .filter(incidents::declared_at.ge(start))
        .filter(incidents::declared_at.lt(end))
        .filter(incidents::drill.eq(false))
        .filter(incidents::status.ne_all(uncounted()));
    if let Some(s) = service {
        let ids = incident_services::table
            .filter(incident_services::service.eq(s.to_string()))
            .select(incident_services::incident_id);
        q = q.filter(incidents::id.eq_any(ids));
    }
    let incidents = q
        .order((incidents::declared_at.asc(), incidents::id.asc()))
        .select(IncidentRow::as_select())
        .load(conn)?;
    let services = incident_services::table
        .filter(incident_services::incident_id.eq_any(counted_ids!(start, end)))
        .select((incident_services::incident_id, incident_services::service))
        .order((incident_services::incident_id.asc(), incident_services::service.asc()))
        .load(conn)?;
    let role_changes = timeline_entries::table
        .filter(timeline_entries::incident_id.eq_any(counted_ids!(start, end)))
        .filter(timeline_entries::kind.eq_any(["lead_changed", "role_changed"]))
        .select((
            timeline_entries::incident_id,
            timeline_entries::at,
            timeline_entries::kind,
            timeline_entries::field,
            timeline_entries::new_value,
        ))
        .order((timeline_entries::at.asc(), timeline_entries::id.asc()))
        .load(conn)?;
    let declared: Vec<(i64, String, NaiveDateTime, Option<NaiveDateTime>)> = outbox::table
        .filter(outbox::incident_id.eq_any(counted_ids!(start, end)))
        .filter(outbox::notifier.eq_any(PAGERS))
        .filter(outbox::state.eq("done"))
        .filter(outbox::event.eq("declared"))
        .select((
            outbox::incident_id,
            outbox::event,
            outbox::created_at,
            outbox::delivered_at,
        ))
        .order(outbox::id.asc())
        .load(conn)?;
    let changes: Vec<(i64, String, NaiveDateTime, Option<NaiveDateTime>, String)> = outbox::table
        .filter(outbox::incident_id.eq_any(counted_ids!(start, end)))
        .filter(outbox::notifier.eq_any(PAGERS))
        .filter(outbox::state.eq("done"))
        .filter(outbox::event.ne("declared"))
        .select((
            outbox::incident_id,
            outbox::event,
            outbox::created_at,
            outbox::delivered_at,
            outbox::payload,
        ))
        .order(outbox::id.asc())
        .load(conn)?;
    let pages = declared
        .into_iter()
        .map(|(i, e, c, d)| (i, e, c, d, None))
        .chain(changes.into_iter().map(|(i, e, c, d, p)| (i, e, c, d, Some(p))))
        .collect();
    Ok(HistoryRows {
        incidents,
        services,
        role_changes,
        pages,
    })
}
