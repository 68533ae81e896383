//! What integrations created outside for an incident: a Slack channel id, a Jira key, the ts of
//! a posted message. Also the markers an integration writes just before a call whose answer a
//! crash could lose, so that the next attempt looks for what it may already have made instead of
//! making it twice.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::external_refs;

/// One stored reference.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = external_refs)]
pub struct ExternalRefRow {
    pub incident_id: i64,
    pub integration: String,
    pub name: String,
    pub value: String,
    pub url: Option<String>,
    pub updated_at: NaiveDateTime,
}

/// Reads one reference.
pub fn get(
    conn: &mut DbConnection,
    incident_id: i64,
    integration: &str,
    name: &str,
) -> QueryResult<Option<ExternalRefRow>> {
    external_refs::table
        .find((incident_id, integration, name))
        .select(ExternalRefRow::as_select())
        .first(conn)
        .optional()
}

/// Writes (inserts or replaces) one reference.
pub fn put(conn: &mut DbConnection, row: &ExternalRefRow) -> QueryResult<()> {
    let updated = diesel::update(external_refs::table.find((row.incident_id, &row.integration, &row.name)))
        .set((
            external_refs::value.eq(&row.value),
            external_refs::url.eq(&row.url),
            external_refs::updated_at.eq(row.updated_at),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(external_refs::table).values(row).execute(conn)?;
    }
    Ok(())
}

/// Removes one reference (a marker whose call is settled).
pub fn delete(conn: &mut DbConnection, incident_id: i64, integration: &str, name: &str) -> QueryResult<()> {
    diesel::delete(external_refs::table.find((incident_id, integration, name))).execute(conn)?;
    Ok(())
}

/// Every reference of an incident, for its page.
pub fn list_for(conn: &mut DbConnection, incident_id: i64) -> QueryResult<Vec<ExternalRefRow>> {
    external_refs::table
        .filter(external_refs::incident_id.eq(incident_id))
        .order((external_refs::integration, external_refs::name))
        .select(ExternalRefRow::as_select())
        .load(conn)
}

/// The incident that stored `value` under `integration`/`name` (the incident whose Slack channel
/// is `C…`), if any.
pub fn incident_with(conn: &mut DbConnection, integration: &str, name: &str, value: &str) -> QueryResult<Option<i64>> {
    external_refs::table
        .filter(external_refs::integration.eq(integration))
        .filter(external_refs::name.eq(name))
        .filter(external_refs::value.eq(value))
        .select(external_refs::incident_id)
        .order(external_refs::incident_id.desc())
        .first(conn)
        .optional()
}
