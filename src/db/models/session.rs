//! Signed-in sessions, so signing out ends a session everywhere at once.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::sessions;

/// Records a new session, and forgets expired ones.
pub fn insert(
    conn: &mut DbConnection,
    id: &str,
    email: &str,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::delete(sessions::table.filter(sessions::expires_at.lt(now))).execute(conn)?;
    diesel::insert_into(sessions::table)
        .values((
            sessions::id.eq(id),
            sessions::email.eq(email),
            sessions::created_at.eq(now),
            sessions::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Whether a session is still signed in at `now`.
pub fn is_live(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> QueryResult<bool> {
    sessions::table
        .find(id)
        .filter(sessions::expires_at.gt(now))
        .count()
        .get_result::<i64>(conn)
        .map(|n| n > 0)
}

/// Ends a session.
pub fn delete(conn: &mut DbConnection, id: &str) -> QueryResult<usize> {
    diesel::delete(sessions::table.find(id)).execute(conn)
}
