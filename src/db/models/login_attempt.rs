//! OpenID Connect logins waiting for the provider's answer. Each is taken (deleted) once.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::login_attempts;

/// A login sent to the provider.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = login_attempts)]
pub struct LoginAttempt {
    pub state: String,
    pub nonce: String,
    pub code_verifier: String,
    pub next_path: String,
    pub created_at: NaiveDateTime,
}

/// Stores an attempt, and forgets attempts older than `forget_before` (abandoned logins).
pub fn insert(conn: &mut DbConnection, attempt: &LoginAttempt, forget_before: NaiveDateTime) -> QueryResult<()> {
    diesel::delete(login_attempts::table.filter(login_attempts::created_at.lt(forget_before))).execute(conn)?;
    diesel::insert_into(login_attempts::table)
        .values(attempt)
        .execute(conn)
        .map(|_| ())
}

/// Takes the attempt with this state: returns it and deletes it, so the same state (and its nonce)
/// cannot be used twice, even by two callbacks racing.
pub fn take(conn: &mut DbConnection, state: &str) -> QueryResult<Option<LoginAttempt>> {
    let found = login_attempts::table
        .find(state)
        .select(LoginAttempt::as_select())
        .first(conn)
        .optional()?;
    if found.is_some() {
        let deleted = diesel::delete(login_attempts::table.find(state)).execute(conn)?;
        if deleted == 0 {
            return Ok(None);
        }
    }
    Ok(found)
}
