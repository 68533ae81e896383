//! Who holds an incident's roles other than the lead (the lead lives on the incident row). One
//! row per held role; a role nobody holds has no row.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::incident_roles;

/// One held role.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = incident_roles)]
pub struct RoleRow {
    pub incident_id: i64,
    /// The role id from the configuration, e.g. `comms`.
    pub role: String,
    /// The holder's name.
    pub name: String,
    /// The holder's email (lowercase).
    pub email: String,
    /// When they took it.
    pub assigned_at: NaiveDateTime,
}

/// Who holds `role` on an incident.
pub fn get(conn: &mut DbConnection, incident_id: i64, role: &str) -> QueryResult<Option<RoleRow>> {
    incident_roles::table
        .find((incident_id, role))
        .select(RoleRow::as_select())
        .first(conn)
        .optional()
}

/// Gives `row.role` to `row`'s person, replacing any holder.
pub fn put(conn: &mut DbConnection, row: &RoleRow) -> QueryResult<()> {
    let updated = diesel::update(incident_roles::table.find((row.incident_id, &row.role)))
        .set((
            incident_roles::name.eq(&row.name),
            incident_roles::email.eq(&row.email),
            incident_roles::assigned_at.eq(row.assigned_at),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(incident_roles::table).values(row).execute(conn)?;
    }
    Ok(())
}

/// Leaves `role` held by nobody.
pub fn clear(conn: &mut DbConnection, incident_id: i64, role: &str) -> QueryResult<usize> {
    diesel::delete(incident_roles::table.find((incident_id, role))).execute(conn)
}

/// Every held role of an incident, by role id.
pub fn list_for(conn: &mut DbConnection, incident_id: i64) -> QueryResult<Vec<RoleRow>> {
    incident_roles::table
        .filter(incident_roles::incident_id.eq(incident_id))
        .order(incident_roles::role)
        .select(RoleRow::as_select())
        .load(conn)
}

/// Every held role of several incidents (the dashboard), by incident then role.
pub fn list_for_many(conn: &mut DbConnection, incident_ids: &[i64]) -> QueryResult<Vec<RoleRow>> {
    if incident_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    // Bounded IN lists: SQLite caps bound parameters.
    for chunk in incident_ids.chunks(500) {
        out.extend(
            incident_roles::table
                .filter(incident_roles::incident_id.eq_any(chunk))
                .order((incident_roles::incident_id, incident_roles::role))
                .select(RoleRow::as_select())
                .load(conn)?,
        );
    }
    Ok(out)
}
