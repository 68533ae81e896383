//! Status updates for stakeholders and the nudges sent about them (and about leads and
//! resolutions).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{nudges, status_updates};

/// A status update as stored.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = status_updates)]
pub struct StatusUpdateRow {
    pub id: i64,
    pub incident_id: i64,
    pub timeline_entry_id: i64,
    pub at: NaiveDateTime,
    pub author_name: String,
    pub author_email: String,
    /// What we know.
    pub known: String,
    /// What we are doing.
    pub doing: String,
    /// When the next update is promised (`None`: no further update planned).
    pub next_update_at: Option<NaiveDateTime>,
}

/// A new status update.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = status_updates)]
pub struct NewStatusUpdate {
    pub incident_id: i64,
    pub timeline_entry_id: i64,
    pub at: NaiveDateTime,
    pub author_name: String,
    pub author_email: String,
    pub known: String,
    pub doing: String,
    pub next_update_at: Option<NaiveDateTime>,
}

/// Stores an update.
pub fn insert(conn: &mut DbConnection, new: &NewStatusUpdate) -> QueryResult<()> {
    diesel::insert_into(status_updates::table)
        .values(new)
        .execute(conn)
        .map(|_| ())
}

/// Every update of an incident, oldest first.
pub fn list_for(conn: &mut DbConnection, incident_id: i64) -> QueryResult<Vec<StatusUpdateRow>> {
    status_updates::table
        .filter(status_updates::incident_id.eq(incident_id))
        .order(status_updates::id.asc())
        .select(StatusUpdateRow::as_select())
        .load(conn)
}

/// The latest update of an incident.
pub fn latest_for(conn: &mut DbConnection, incident_id: i64) -> QueryResult<Option<StatusUpdateRow>> {
    status_updates::table
        .filter(status_updates::incident_id.eq(incident_id))
        .order(status_updates::id.desc())
        .select(StatusUpdateRow::as_select())
        .first(conn)
        .optional()
}

/// The latest update of each of these incidents (one query; for the dashboard and the nudges).
pub fn latest_for_each(conn: &mut DbConnection, incident_ids: &[i64]) -> QueryResult<Vec<StatusUpdateRow>> {
    if incident_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows: Vec<StatusUpdateRow> = status_updates::table
        .filter(status_updates::incident_id.eq_any(incident_ids))
        .order((status_updates::incident_id.asc(), status_updates::id.desc()))
        .select(StatusUpdateRow::as_select())
        .load(conn)?;
    rows.dedup_by_key(|r| r.incident_id);
    Ok(rows)
}

/// A nudge as recorded.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = nudges)]
pub struct NudgeRow {
    pub id: i64,
    pub incident_id: i64,
    pub kind: String,
    pub period: String,
    pub at: NaiveDateTime,
}

/// Records that a nudge went out for this period. Fails with a unique violation when it already
/// did (here or in another process): the caller's transaction then rolls back and sends nothing.
pub fn record_nudge(
    conn: &mut DbConnection,
    incident_id: i64,
    kind: &str,
    period: &str,
    at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(nudges::table)
        .values((
            nudges::incident_id.eq(incident_id),
            nudges::kind.eq(kind),
            nudges::period.eq(period),
            nudges::at.eq(at),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Every nudge of an incident, oldest first.
pub fn nudges_for(conn: &mut DbConnection, incident_id: i64) -> QueryResult<Vec<NudgeRow>> {
    nudges::table
        .filter(nudges::incident_id.eq(incident_id))
        .order(nudges::id.asc())
        .select(NudgeRow::as_select())
        .load(conn)
}

/// The nudges sent for these incidents.
pub fn nudges_of_many(conn: &mut DbConnection, incident_ids: &[i64]) -> QueryResult<Vec<NudgeRow>> {
    if incident_ids.is_empty() {
        return Ok(Vec::new());
    }
    nudges::table
        .filter(nudges::incident_id.eq_any(incident_ids))
        .select(NudgeRow::as_select())
        .load(conn)
}

/// Whether this nudge was sent.
pub fn nudge_sent(conn: &mut DbConnection, incident_id: i64, kind: &str, period: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        nudges::table
            .filter(nudges::incident_id.eq(incident_id))
            .filter(nudges::kind.eq(kind))
            .filter(nudges::period.eq(period)),
    ))
    .get_result(conn)
}
