//! Secrets the application generates for itself (the session signing key), shared by replicas.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::app_secrets;

/// Returns the stored secret `name`, storing `generated` first if there is none. Two replicas
/// racing here both end up with whichever value was stored first.
pub fn get_or_insert(conn: &mut DbConnection, name: &str, generated: &str) -> QueryResult<String> {
    if let Some(v) = find(conn, name)? {
        return Ok(v);
    }
    let inserted = diesel::insert_into(app_secrets::table)
        .values((
            app_secrets::name.eq(name),
            app_secrets::value.eq(generated),
            app_secrets::created_at.eq(crate::domain::declaration::now_utc()),
        ))
        .execute(conn);
    match inserted {
        Ok(_) => Ok(generated.to_string()),
        Err(e) if crate::db::is_unique_violation(&e) => find(conn, name)?.ok_or(e),
        Err(e) => Err(e),
    }
}

fn find(conn: &mut DbConnection, name: &str) -> QueryResult<Option<String>> {
    app_secrets::table
        .find(name)
        .select(app_secrets::value)
        .first(conn)
        .optional()
}
