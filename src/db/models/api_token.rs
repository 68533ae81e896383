//! API tokens: named, scoped, optionally expiring, revocable. Only a hash of the secret is stored.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::api_tokens;

/// A token as stored.
#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = api_tokens)]
pub struct ApiTokenRow {
    pub id: i64,
    pub public_id: String,
    pub name: String,
    pub secret_hash: String,
    pub scopes: String,
    pub created_by_email: String,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

impl ApiTokenRow {
    /// Whether the token works at `now`: not revoked, not expired.
    pub fn is_active(&self, now: NaiveDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

/// A token to store.
#[derive(Debug, Insertable)]
#[diesel(table_name = api_tokens)]
pub struct NewApiToken<'a> {
    pub public_id: &'a str,
    pub name: &'a str,
    pub secret_hash: &'a str,
    pub scopes: &'a str,
    pub created_by_email: &'a str,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
}

/// Stores a token, returning its id.
pub fn insert(conn: &mut DbConnection, token: &NewApiToken<'_>) -> QueryResult<i64> {
    diesel::insert_into(api_tokens::table)
        .values(token)
        .returning(api_tokens::id)
        .get_result(conn)
}

/// Finds a token by its public id.
pub fn find_by_public_id(conn: &mut DbConnection, public_id: &str) -> QueryResult<Option<ApiTokenRow>> {
    api_tokens::table
        .filter(api_tokens::public_id.eq(public_id))
        .select(ApiTokenRow::as_select())
        .first(conn)
        .optional()
}

/// Every token, newest first.
pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<ApiTokenRow>> {
    api_tokens::table
        .order(api_tokens::id.desc())
        .select(ApiTokenRow::as_select())
        .load(conn)
}

/// Revokes a token (once: a second revocation keeps the first time). Returns whether it existed.
pub fn revoke(conn: &mut DbConnection, id: i64, now: NaiveDateTime) -> QueryResult<bool> {
    let exists = api_tokens::table.find(id).count().get_result::<i64>(conn)? > 0;
    diesel::update(api_tokens::table.find(id).filter(api_tokens::revoked_at.is_null()))
        .set(api_tokens::revoked_at.eq(now))
        .execute(conn)?;
    Ok(exists)
}

/// Records a use. Written at most once a minute per token, so busy scripts do not turn every read
/// into a write.
pub fn touch(conn: &mut DbConnection, id: i64, now: NaiveDateTime) -> QueryResult<usize> {
    let stale = now - chrono::Duration::seconds(60);
    diesel::update(
        api_tokens::table.find(id).filter(
            api_tokens::last_used_at
                .is_null()
                .or(api_tokens::last_used_at.lt(stale)),
        ),
    )
    .set(api_tokens::last_used_at.eq(now))
    .execute(conn)
}
