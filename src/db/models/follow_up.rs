//! Follow-ups: an incident's action items, with owner, due date, status and maybe a Jira issue.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{follow_ups, incidents};

/// A follow-up as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = follow_ups)]
pub struct FollowUpRow {
    pub id: i64,
    pub incident_id: i64,
    pub title: String,
    pub owner_name: String,
    pub owner_email: Option<String>,
    /// `YYYY-MM-DD`.
    pub due_on: String,
    /// `open`, `done` or `wont_do` (see [`crate::domain::follow_up::FollowUpStatus`]).
    pub status: String,
    pub jira_key: Option<String>,
    pub jira_url: Option<String>,
    /// The Jira status category key last seen by the sync (`new`, `indeterminate`, `done`).
    pub jira_status: Option<String>,
    pub created_by_name: String,
    pub created_by_email: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub closed_at: Option<NaiveDateTime>,
}

/// A new follow-up.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = follow_ups)]
pub struct NewFollowUp {
    pub incident_id: i64,
    pub title: String,
    pub owner_name: String,
    pub owner_email: Option<String>,
    pub due_on: String,
    pub status: String,
    pub created_by_name: String,
    pub created_by_email: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// An overdue follow-up with the incident it belongs to.
#[derive(Debug, Clone)]
pub struct OverdueRow {
    pub follow_up: FollowUpRow,
    pub incident_number: i64,
    pub incident_title: String,
}

/// Inserts one and returns its id.
pub fn insert(conn: &mut DbConnection, new: &NewFollowUp) -> QueryResult<i64> {
    diesel::insert_into(follow_ups::table)
        .values(new)
        .returning(follow_ups::id)
        .get_result(conn)
}

/// One follow-up of an incident.
pub fn find(conn: &mut DbConnection, incident_id: i64, id: i64) -> QueryResult<Option<FollowUpRow>> {
    follow_ups::table
        .filter(follow_ups::incident_id.eq(incident_id))
        .filter(follow_ups::id.eq(id))
        .select(FollowUpRow::as_select())
        .first(conn)
        .optional()
}

/// An incident's follow-ups, in the order they were recorded.
pub fn list_for(conn: &mut DbConnection, incident_id: i64) -> QueryResult<Vec<FollowUpRow>> {
    follow_ups::table
        .filter(follow_ups::incident_id.eq(incident_id))
        .order(follow_ups::id.asc())
        .select(FollowUpRow::as_select())
        .load(conn)
}

/// Writes the editable fields, the status and the times of a loaded row back.
pub fn update(conn: &mut DbConnection, row: &FollowUpRow) -> QueryResult<()> {
    diesel::update(follow_ups::table.find(row.id))
        .set((
            follow_ups::title.eq(&row.title),
            follow_ups::owner_name.eq(&row.owner_name),
            follow_ups::owner_email.eq(&row.owner_email),
            follow_ups::due_on.eq(&row.due_on),
            follow_ups::status.eq(&row.status),
            follow_ups::jira_status.eq(&row.jira_status),
            follow_ups::updated_at.eq(row.updated_at),
            follow_ups::closed_at.eq(row.closed_at),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Records the Jira issue made for a follow-up, unless one is recorded already. Returns the key
/// that is stored now.
pub fn set_jira_issue(
    conn: &mut DbConnection,
    incident_id: i64,
    id: i64,
    key: &str,
    url: &str,
    at: NaiveDateTime,
) -> QueryResult<Option<String>> {
    diesel::update(
        follow_ups::table
            .filter(follow_ups::id.eq(id))
            .filter(follow_ups::incident_id.eq(incident_id))
            .filter(follow_ups::jira_key.is_null()),
    )
    .set((
        follow_ups::jira_key.eq(key),
        follow_ups::jira_url.eq(url),
        follow_ups::updated_at.eq(at),
    ))
    .execute(conn)?;
    follow_ups::table
        .filter(follow_ups::id.eq(id))
        .select(follow_ups::jira_key)
        .first::<Option<String>>(conn)
        .optional()
        .map(Option::flatten)
}

/// The Jira issue recorded for a follow-up, as (key, url).
pub fn jira_issue(conn: &mut DbConnection, incident_id: i64, id: i64) -> QueryResult<Option<(String, Option<String>)>> {
    follow_ups::table
        .filter(follow_ups::id.eq(id))
        .filter(follow_ups::incident_id.eq(incident_id))
        .select((follow_ups::jira_key, follow_ups::jira_url))
        .first::<(Option<String>, Option<String>)>(conn)
        .optional()
        .map(|r| r.and_then(|(k, u)| k.map(|k| (k, u))))
}

/// Follow-ups whose Jira status the sync should read: those with an issue that are open, or were
/// closed since `closed_since` (so a reopen in Jira is still noticed), oldest first.
pub fn with_jira_issue(
    conn: &mut DbConnection,
    closed_since: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<FollowUpRow>> {
    follow_ups::table
        .filter(follow_ups::jira_key.is_not_null())
        .filter(
            follow_ups::status.eq("open").or(follow_ups::status
                .eq("done")
                .and(follow_ups::closed_at.ge(closed_since))),
        )
        .order(follow_ups::id.asc())
        .limit(limit)
        .select(FollowUpRow::as_select())
        .load(conn)
}

/// Open follow-ups due before `today` (`YYYY-MM-DD`) across incidents, earliest due first.
pub fn overdue(conn: &mut DbConnection, today: &str, limit: i64) -> QueryResult<Vec<OverdueRow>> {
    let rows = follow_ups::table
        .inner_join(incidents::table)
        .filter(follow_ups::status.eq("open"))
        .filter(follow_ups::due_on.lt(today))
        .order((follow_ups::due_on.asc(), follow_ups::id.asc()))
        .limit(limit)
        .select((FollowUpRow::as_select(), incidents::number, incidents::title))
        .load::<(FollowUpRow, i64, String)>(conn)?;
    Ok(rows
        .into_iter()
        .map(|(follow_up, incident_number, incident_title)| OverdueRow {
            follow_up,
            incident_number,
            incident_title,
        })
        .collect())
}
