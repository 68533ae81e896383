//! Timeline entries: every change and note, with who and when.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::timeline_entries;

/// A timeline entry as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = timeline_entries)]
pub struct TimelineEntryRow {
    pub id: i64,
    pub incident_id: i64,
    pub at: NaiveDateTime,
    pub actor_name: String,
    pub actor_email: String,
    pub kind: String,
    pub field: Option<String>,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub body: Option<String>,
}

/// A new timeline entry.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = timeline_entries)]
pub struct NewTimelineEntry {
    pub incident_id: i64,
    pub at: NaiveDateTime,
    pub actor_name: String,
    pub actor_email: String,
    pub kind: String,
    pub field: Option<String>,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub body: Option<String>,
}

/// Appends an entry and returns its id.
pub fn insert(conn: &mut DbConnection, entry: &NewTimelineEntry) -> QueryResult<i64> {
    diesel::insert_into(timeline_entries::table)
        .values(entry)
        .returning(timeline_entries::id)
        .get_result(conn)
}

/// The whole timeline of an incident, oldest first.
pub fn list_for(conn: &mut DbConnection, incident_id: i64) -> QueryResult<Vec<TimelineEntryRow>> {
    timeline_entries::table
        .filter(timeline_entries::incident_id.eq(incident_id))
        .order((timeline_entries::at.asc(), timeline_entries::id.asc()))
        .select(TimelineEntryRow::as_select())
        .load(conn)
}
