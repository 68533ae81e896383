//! Secrets the application generates for itself (the session signing key), shared by replicas.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::app_secrets;

/// Returns the stored secret `name`, storing `generated` first if there is none. Two replicas
/// racing here both end up with whichever value was stored first.
pub fn get_or_insert(conn: &mut DbConnection, name: &str, generated: &str) -> QueryResult<String> {
    let now = crate::domain::declaration::now_utc();
    let row = (
        app_secrets::name.eq(name),
        app_secrets::value.eq(generated),
        app_secrets::created_at.eq(now),
    );
    // Insert-if-absent without an error on conflict: on PostgreSQL a failed insert would abort
    // the surrounding transaction.
    match conn {
        DbConnection::Postgresql(pg) => {
            diesel::insert_into(app_secrets::table)
                .values(row)
                .on_conflict_do_nothing()
                .execute(pg)?;
        }
        DbConnection::Sqlite(lite) => {
            diesel::insert_or_ignore_into(app_secrets::table)
                .values(row)
                .execute(lite)?;
        }
    }
    find(conn, name)?.ok_or(diesel::result::Error::NotFound)
}

fn find(conn: &mut DbConnection, name: &str) -> QueryResult<Option<String>> {
    app_secrets::table
        .find(name)
        .select(app_secrets::value)
        .first(conn)
        .optional()
}
