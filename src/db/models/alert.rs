//! Prometheus Alertmanager groups and the alerts each incident has seen (`alert_groups`,
//! `alerts`). The unique keys (the group key's hash; incident + fingerprint + start) are what
//! deduplicate repeated and concurrent notifications.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{alert_groups, alerts};

/// An Alertmanager group as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = alert_groups)]
pub struct AlertGroupRow {
    pub id: i64,
    /// SHA-256 (hex) of the group key.
    pub group_key_hash: String,
    pub group_key: String,
    pub receiver: String,
    /// The group's current incident.
    pub incident_id: i64,
    pub external_url: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A new group.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = alert_groups)]
pub struct NewAlertGroup<'a> {
    pub group_key_hash: &'a str,
    pub group_key: &'a str,
    pub receiver: &'a str,
    pub incident_id: i64,
    pub external_url: &'a str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// An alert as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = alerts)]
pub struct AlertRow {
    pub id: i64,
    pub group_id: i64,
    pub incident_id: i64,
    pub fingerprint: String,
    pub starts_at: NaiveDateTime,
    pub ends_at: Option<NaiveDateTime>,
    /// `firing` or `resolved`.
    pub status: String,
    /// JSON object.
    pub labels: String,
    /// JSON object.
    pub annotations: String,
    pub generator_url: String,
    pub firing_entry_id: Option<i64>,
    pub resolved_entry_id: Option<i64>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A new alert.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = alerts)]
pub struct NewAlert<'a> {
    pub group_id: i64,
    pub incident_id: i64,
    pub fingerprint: &'a str,
    pub starts_at: NaiveDateTime,
    pub ends_at: Option<NaiveDateTime>,
    pub status: &'a str,
    pub labels: &'a str,
    pub annotations: &'a str,
    pub generator_url: &'a str,
    pub firing_entry_id: Option<i64>,
    pub resolved_entry_id: Option<i64>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// The group with this key hash.
pub fn find_group(conn: &mut DbConnection, key_hash: &str) -> QueryResult<Option<AlertGroupRow>> {
    alert_groups::table
        .filter(alert_groups::group_key_hash.eq(key_hash))
        .select(AlertGroupRow::as_select())
        .first(conn)
        .optional()
}

/// Locks the group's row until the transaction ends (a no-op update, portable to both backends),
/// so two notifications of one group are handled one after the other.
pub fn lock_group(conn: &mut DbConnection, id: i64) -> QueryResult<()> {
    diesel::update(alert_groups::table.find(id))
        .set(alert_groups::updated_at.eq(alert_groups::updated_at))
        .execute(conn)
        .map(|_| ())
}

/// Inserts a group and returns its id. Fails with a unique violation when another transaction
/// stored the same key first.
pub fn insert_group(conn: &mut DbConnection, new: &NewAlertGroup<'_>) -> QueryResult<i64> {
    diesel::insert_into(alert_groups::table)
        .values(new)
        .returning(alert_groups::id)
        .get_result(conn)
}

/// Points the group at a new incident (the old one was closed), with the latest receiver and URL.
pub fn move_group(
    conn: &mut DbConnection,
    id: i64,
    incident_id: i64,
    receiver: &str,
    external_url: &str,
    at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(alert_groups::table.find(id))
        .set((
            alert_groups::incident_id.eq(incident_id),
            alert_groups::receiver.eq(receiver),
            alert_groups::external_url.eq(external_url),
            alert_groups::updated_at.eq(at),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Records when the group was last heard from.
pub fn touch_group(conn: &mut DbConnection, id: i64, at: NaiveDateTime) -> QueryResult<()> {
    diesel::update(alert_groups::table.find(id))
        .set(alert_groups::updated_at.eq(at))
        .execute(conn)
        .map(|_| ())
}

/// One alert of an incident, by fingerprint and start.
pub fn find_alert(
    conn: &mut DbConnection,
    incident_id: i64,
    fingerprint: &str,
    starts_at: NaiveDateTime,
) -> QueryResult<Option<AlertRow>> {
    alerts::table
        .filter(alerts::incident_id.eq(incident_id))
        .filter(alerts::fingerprint.eq(fingerprint))
        .filter(alerts::starts_at.eq(starts_at))
        .select(AlertRow::as_select())
        .first(conn)
        .optional()
}

/// Inserts an alert and returns its id.
pub fn insert_alert(conn: &mut DbConnection, new: &NewAlert<'_>) -> QueryResult<i64> {
    diesel::insert_into(alerts::table)
        .values(new)
        .returning(alerts::id)
        .get_result(conn)
}

/// Marks an alert resolved.
pub fn resolve_alert(
    conn: &mut DbConnection,
    id: i64,
    ends_at: Option<NaiveDateTime>,
    entry_id: i64,
    at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(alerts::table.find(id))
        .set((
            alerts::status.eq("resolved"),
            alerts::ends_at.eq(ends_at),
            alerts::resolved_entry_id.eq(Some(entry_id)),
            alerts::updated_at.eq(at),
        ))
        .execute(conn)
        .map(|_| ())
}

/// How many of an incident's alerts are still firing.
pub fn count_firing(conn: &mut DbConnection, incident_id: i64) -> QueryResult<i64> {
    alerts::table
        .filter(alerts::incident_id.eq(incident_id))
        .filter(alerts::status.eq("firing"))
        .count()
        .get_result(conn)
}

/// Every alert of an incident, in the order they arrived.
pub fn list_for_incident(conn: &mut DbConnection, incident_id: i64) -> QueryResult<Vec<AlertRow>> {
    alerts::table
        .filter(alerts::incident_id.eq(incident_id))
        .order(alerts::id.asc())
        .select(AlertRow::as_select())
        .load(conn)
}

/// The groups whose current incident this is.
pub fn groups_of_incident(conn: &mut DbConnection, incident_id: i64) -> QueryResult<Vec<AlertGroupRow>> {
    alert_groups::table
        .filter(alert_groups::incident_id.eq(incident_id))
        .order(alert_groups::id.asc())
        .select(AlertGroupRow::as_select())
        .load(conn)
}

/// The number of the incident with this id.
pub fn incident_number(conn: &mut DbConnection, incident_id: i64) -> QueryResult<Option<i64>> {
    use crate::db::schema::incidents;
    incidents::table
        .find(incident_id)
        .select(incidents::number)
        .first(conn)
        .optional()
}
