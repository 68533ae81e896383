//! People who have signed in. A row is made on first sign-in and refreshed on later ones; the lead
//! picker offers them.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::users;

/// A person who has signed in.
#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub slack_user_id: Option<String>,
    pub role: String,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    /// The IANA time zone they read times in; `None` means UTC.
    pub time_zone: Option<String>,
}

/// Creates the person's row, or refreshes their name, role and last sign-in.
pub fn upsert(
    conn: &mut DbConnection,
    email: &str,
    name: &str,
    role: &str,
    now: NaiveDateTime,
) -> QueryResult<UserRow> {
    let updated = diesel::update(users::table.filter(users::email.eq(email)))
        .set((users::name.eq(name), users::role.eq(role), users::last_seen_at.eq(now)))
        .execute(conn)?;
    if updated == 0 {
        let row = (
            users::email.eq(email),
            users::name.eq(name),
            users::role.eq(role),
            users::created_at.eq(now),
            users::last_seen_at.eq(now),
        );
        // Two first sign-ins racing: the loser's insert does nothing, and both read the one row.
        match conn {
            DbConnection::Postgresql(pg) => {
                diesel::insert_into(users::table)
                    .values(row)
                    .on_conflict_do_nothing()
                    .execute(pg)?;
            }
            DbConnection::Sqlite(lite) => {
                diesel::insert_or_ignore_into(users::table).values(row).execute(lite)?;
            }
        }
    }
    users::table
        .filter(users::email.eq(email))
        .select(UserRow::as_select())
        .first(conn)
}

/// Finds a person by email.
pub fn find_by_email(conn: &mut DbConnection, email: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::email.eq(email))
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

/// Everyone, by name (bounded: the picker shows at most `limit`).
pub fn list(conn: &mut DbConnection, limit: i64) -> QueryResult<Vec<UserRow>> {
    users::table
        .order((users::name.asc(), users::id.asc()))
        .limit(limit)
        .select(UserRow::as_select())
        .load(conn)
}

/// Sets or clears a person's Slack member id.
pub fn set_slack_id(conn: &mut DbConnection, email: &str, slack_user_id: Option<&str>) -> QueryResult<usize> {
    diesel::update(users::table.filter(users::email.eq(email)))
        .set(users::slack_user_id.eq(slack_user_id))
        .execute(conn)
}

/// Sets or clears (back to UTC) a person's time zone. Returns how many rows changed (0: no such person).
pub fn set_time_zone(conn: &mut DbConnection, email: &str, time_zone: Option<&str>) -> QueryResult<usize> {
    diesel::update(users::table.filter(users::email.eq(email)))
        .set(users::time_zone.eq(time_zone))
        .execute(conn)
}

/// The time zone a person reads times in, if they chose one.
pub fn time_zone_of(conn: &mut DbConnection, email: &str) -> QueryResult<Option<String>> {
    Ok(users::table
        .filter(users::email.eq(email))
        .select(users::time_zone)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten())
}
