//! Signed Slack requests already acted on (replay protection for the slash command).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::slack_requests_seen;

/// Records a signed request once. Returns `false` when the same signature was recorded before
/// (a replay). Rows whose signed timestamp is older than `oldest_ts` are deleted first: such a
/// request is refused by its timestamp alone, so remembering it serves nothing.
pub fn record_once(
    conn: &mut DbConnection,
    signature: &str,
    request_ts: i64,
    oldest_ts: i64,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::delete(slack_requests_seen::table.filter(slack_requests_seen::request_ts.lt(oldest_ts))).execute(conn)?;
    let row = (
        slack_requests_seen::signature.eq(signature),
        slack_requests_seen::request_ts.eq(request_ts),
        slack_requests_seen::seen_at.eq(now),
    );
    // Two copies arriving together: one insert wins, the other inserts nothing.
    let inserted = match conn {
        DbConnection::Postgresql(pg) => diesel::insert_into(slack_requests_seen::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(pg)?,
        DbConnection::Sqlite(lite) => diesel::insert_or_ignore_into(slack_requests_seen::table)
            .values(row)
            .execute(lite)?,
    };
    Ok(inserted == 1)
}

/// How many signed requests are remembered (tests look at it).
pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    slack_requests_seen::table.count().get_result(conn)
}
