//! Idempotency keys of the declare form: one submission, one incident.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::idempotency_keys;

/// A key already used, with what it produced.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = idempotency_keys)]
pub struct IdempotencyRecord {
    pub key: String,
    pub actor_email: String,
    pub request_hash: String,
    pub incident_number: i64,
    pub created_at: NaiveDateTime,
}

/// Looks a key up.
pub fn find(conn: &mut DbConnection, key: &str) -> QueryResult<Option<IdempotencyRecord>> {
    idempotency_keys::table
        .find(key)
        .select(IdempotencyRecord::as_select())
        .first(conn)
        .optional()
}

/// Stores a key; fails with a unique violation if it is already taken.
pub fn insert(conn: &mut DbConnection, record: &IdempotencyRecord) -> QueryResult<()> {
    diesel::insert_into(idempotency_keys::table)
        .values(record)
        .execute(conn)
        .map(|_| ())
}
