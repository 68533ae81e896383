//! The transactional outbox: one row per side effect, written in the same transaction as the
//! change that caused it, then delivered by the worker.
//!
//! States: `pending` (waiting for its next attempt), `leased` (a worker holds it until
//! `lease_until`), `done`, and `dead` (given up; a person can retry it). A lease carries a
//! random token: a worker may only finish a row it still holds, so a row whose lease expired and
//! was taken by another worker is never finished twice.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use crate::db::DbConnection;
use crate::db::schema::outbox;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its (next) attempt.
    Pending,
    /// Being delivered by a worker.
    Leased,
    /// Delivered.
    Done,
    /// Out of attempts, or failed permanently.
    Dead,
}

impl DeliveryState {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Leased => "leased",
            DeliveryState::Done => "done",
            DeliveryState::Dead => "dead",
        }
    }

    /// Parses the stored form.
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Pending, Self::Leased, Self::Done, Self::Dead]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// An outbox row.
#[derive(Debug, Clone, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: i64,
    pub incident_id: i64,
    pub timeline_entry_id: Option<i64>,
    pub notifier: String,
    pub event: String,
    pub idempotency_key: String,
    pub payload: String,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub lease_until: Option<NaiveDateTime>,
    pub lease_token: Option<String>,
    pub last_error: Option<String>,
    pub external_id: Option<String>,
    pub external_url: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub delivered_at: Option<NaiveDateTime>,
    pub sequence_key: Option<String>,
    pub target: Option<String>,
}

/// A new outbox row.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = outbox)]
pub struct NewOutboxRow {
    pub incident_id: i64,
    pub timeline_entry_id: Option<i64>,
    pub notifier: String,
    pub event: String,
    pub idempotency_key: String,
    pub payload: String,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub sequence_key: Option<String>,
    pub target: Option<String>,
}

/// Enqueues rows (inside the caller's transaction).
pub fn insert_many(conn: &mut DbConnection, rows: &[NewOutboxRow]) -> QueryResult<()> {
    for row in rows {
        diesel::insert_into(outbox::table).values(row).execute(conn)?;
    }
    Ok(())
}

// The claim picks due rows (pending and due, or leased with an expired lease: a worker died
// holding them), marks them leased, counts the attempt, and returns them.
// On PostgreSQL `FOR UPDATE SKIP LOCKED` lets several replicas claim concurrently without ever
// taking the same row, and lease times come from the database's clock, so replicas whose clocks
// disagree still agree on when a lease has expired. SQLite has one writer at a time (and one
// process), so the same statement without the locking clause is already exclusive.
// Rows sharing a `sequence_key` (one incident's deliveries to one integration) are handed out one
// at a time in id order: a row waits while an earlier one is pending or leased, so a channel is
// created before anything is posted in it. A dead row no longer holds the ones after it.
// One integration gets at most `per_notifier` rows in flight in this worker (its rows still
// leased under a token starting with `own`, plus the ones this claim takes), so a vendor that
// hangs until the time limit cannot fill every slot and hold up the other integrations. The due
// rows of integrations below that share are looked at in order, a window of a few times `limit`
// of them, and each integration's turn counted within it.
//
// Both kinds of due row are found through the `(state, next_attempt_at)` index in its own order and
// the scan stops after the window: with thousands of rows waiting (a burst of declarations and a
// slow vendor) a claim reads a few dozen index entries instead of sorting the whole backlog, which
// matters because on SQLite the claim holds the one writer that declarations also need.
//
// On PostgreSQL the chosen rows are locked (`FOR UPDATE SKIP LOCKED`) and checked once more, as
// another replica may have taken them meanwhile; SQLite runs the statement alone, and there the
// check would make its planner scan the whole backlog again instead of fetching rows by id.
fn claim_sql(now: &str, lease_until: &str, p: [&str; 5], postgres: bool) -> String {
    let [token, limit, cap, own, window] = p;
    let busy = format!(
        "SELECT COUNT(*) FROM outbox AS busy WHERE busy.notifier = head.notifier AND busy.state = 'leased' \
         AND busy.lease_until > {now} AND busy.lease_token LIKE {own}"
    );
    let due = |cond: &str| {
        format!(
            "SELECT due.id, due.notifier, due.next_attempt_at FROM outbox AS due WHERE {cond} \
             AND due.notifier NOT IN (SELECT capped.notifier FROM outbox AS capped WHERE capped.state = 'leased' \
                 AND capped.lease_until > {now} AND capped.lease_token LIKE {own} \
                 GROUP BY capped.notifier HAVING COUNT(*) >= {cap}) \
             AND NOT EXISTS (SELECT 1 FROM outbox AS earlier WHERE earlier.sequence_key = due.sequence_key \
                 AND earlier.id < due.id AND earlier.state IN ('pending', 'leased')) \
             ORDER BY due.next_attempt_at, due.id LIMIT {window}"
        )
    };
    let pending = due(&format!("due.state = 'pending' AND due.next_attempt_at <= {now}"));
    let expired = due(&format!("due.state = 'leased' AND due.lease_until <= {now}"));
    let (recheck, lock) = if postgres {
        (
            format!(
                "AND ((o.state = 'pending' AND o.next_attempt_at <= {now}) OR (o.state = 'leased' AND o.lease_until <= {now}))"
            ),
            "FOR UPDATE SKIP LOCKED",
        )
    } else {
        (String::new(), "")
    };
    format!(
        "UPDATE outbox SET state = 'leased', attempts = attempts + 1, lease_until = {lease_until}, \
         lease_token = {token}, updated_at = {now} \
         WHERE id IN (SELECT o.id FROM outbox AS o \
           WHERE o.id IN (SELECT ranked.id FROM (SELECT head.id, \
                 ROW_NUMBER() OVER (PARTITION BY head.notifier ORDER BY head.next_attempt_at, head.id) + ({busy}) AS slot \
               FROM (SELECT * FROM ({pending}) AS p UNION ALL SELECT * FROM ({expired}) AS x) AS head) AS ranked \
             WHERE ranked.slot <= {cap}) \
           {recheck} ORDER BY o.next_attempt_at, o.id LIMIT {limit} {lock}) \
         RETURNING *"
    )
}

static CLAIM_POSTGRES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    claim_sql(
        "(now() AT TIME ZONE 'UTC')",
        "(now() AT TIME ZONE 'UTC') + ($1 * interval '1 millisecond')",
        ["$2", "$3", "$4", "$5", "$6"],
        true,
    )
});
static CLAIM_SQLITE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| claim_sql("?3", "?1", ["?2", "?4", "?5", "?6", "?7"], false));

/// Claims up to `limit` due rows for `lease_ms` under `token`, at most `per_notifier` in flight
/// per integration counting the rows still leased under tokens starting with `own`.
pub fn claim(
    conn: &mut DbConnection,
    lease_ms: i64,
    token: &str,
    limit: i64,
    per_notifier: i64,
    own: &str,
) -> QueryResult<Vec<OutboxRow>> {
    let own = format!("{own}%");
    let window = limit.saturating_mul(8);
    match conn {
        DbConnection::Postgresql(pg) => diesel::sql_query(CLAIM_POSTGRES.as_str())
            .bind::<BigInt, _>(lease_ms)
            .bind::<Text, _>(token)
            .bind::<BigInt, _>(limit)
            .bind::<BigInt, _>(per_notifier)
            .bind::<Text, _>(&own)
            .bind::<BigInt, _>(window)
            .load(pg),
        DbConnection::Sqlite(lite) => {
            let now = crate::domain::declaration::now_utc();
            diesel::sql_query(CLAIM_SQLITE.as_str())
                .bind::<Timestamp, _>(now + chrono::Duration::milliseconds(lease_ms))
                .bind::<Text, _>(token)
                .bind::<Timestamp, _>(now)
                .bind::<BigInt, _>(limit)
                .bind::<BigInt, _>(per_notifier)
                .bind::<Text, _>(&own)
                .bind::<BigInt, _>(window)
                .load(lite)
        }
    }
}

/// Marks a held row delivered. Returns false if the lease was lost meanwhile.
pub fn mark_done(
    conn: &mut DbConnection,
    id: i64,
    token: &str,
    external_id: Option<&str>,
    external_url: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let target = outbox::table
        .filter(outbox::id.eq(id))
        .filter(outbox::state.eq("leased"))
        .filter(outbox::lease_token.eq(token));
    diesel::update(target)
        .set((
            outbox::state.eq("done"),
            outbox::external_id.eq(external_id),
            outbox::external_url.eq(external_url),
            outbox::delivered_at.eq(Some(now)),
            outbox::updated_at.eq(now),
            outbox::lease_until.eq(None::<NaiveDateTime>),
            outbox::lease_token.eq(None::<String>),
        ))
        .execute(conn)
        .map(|n| n == 1)
}

/// Records a failed attempt on a held row: back to pending at `retry_at`, or dead when `None`.
/// `uncount` gives the attempt back (the delivery was only waiting for something).
pub fn mark_failed(
    conn: &mut DbConnection,
    id: i64,
    token: &str,
    error: &str,
    retry_at: Option<NaiveDateTime>,
    uncount: bool,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let target = outbox::table
        .filter(outbox::id.eq(id))
        .filter(outbox::state.eq("leased"))
        .filter(outbox::lease_token.eq(token));
    let (state, next) = match retry_at {
        Some(at) => ("pending", at),
        None => ("dead", now),
    };
    diesel::update(target)
        .set((
            outbox::state.eq(state),
            outbox::next_attempt_at.eq(next),
            outbox::last_error.eq(Some(error)),
            outbox::attempts.eq(outbox::attempts - if uncount { 1 } else { 0 }),
            outbox::updated_at.eq(now),
            outbox::lease_until.eq(None::<NaiveDateTime>),
            outbox::lease_token.eq(None::<String>),
        ))
        .execute(conn)
        .map(|n| n == 1)
}

/// Puts a dead row of `incident_id` back in the queue, due now, with a fresh attempt budget.
/// Returns the row if it was dead (and so was requeued).
pub fn requeue_dead(
    conn: &mut DbConnection,
    id: i64,
    incident_id: i64,
    now: NaiveDateTime,
) -> QueryResult<Option<OutboxRow>> {
    let n = diesel::update(
        outbox::table
            .filter(outbox::id.eq(id))
            .filter(outbox::incident_id.eq(incident_id))
            .filter(outbox::state.eq("dead")),
    )
    .set((
        outbox::state.eq("pending"),
        outbox::attempts.eq(0),
        outbox::next_attempt_at.eq(now),
        outbox::updated_at.eq(now),
    ))
    .execute(conn)?;
    if n == 0 {
        return Ok(None);
    }
    outbox::table
        .find(id)
        .select(OutboxRow::as_select())
        .first(conn)
        .optional()
}

/// Every delivery of an incident, oldest first.
pub fn list_for(conn: &mut DbConnection, incident_id: i64) -> QueryResult<Vec<OutboxRow>> {
    outbox::table
        .filter(outbox::incident_id.eq(incident_id))
        .order(outbox::id.asc())
        .select(OutboxRow::as_select())
        .load(conn)
}

/// How many rows are in each state (for tests, health and metrics).
pub fn count_by_state(conn: &mut DbConnection) -> QueryResult<Vec<(String, i64)>> {
    outbox::table
        .group_by(outbox::state)
        .select((outbox::state, diesel::dsl::count_star()))
        .load(conn)
}

/// How many rows each integration has in each state (for `/metrics`).
pub fn count_by_notifier_and_state(conn: &mut DbConnection) -> QueryResult<Vec<(String, String, i64)>> {
    outbox::table
        .group_by((outbox::notifier, outbox::state))
        .select((outbox::notifier, outbox::state, diesel::dsl::count_star()))
        .order((outbox::notifier.asc(), outbox::state.asc()))
        .load(conn)
}

/// When the oldest delivery still to make (pending or in flight) was enqueued.
pub fn oldest_unfinished(conn: &mut DbConnection) -> QueryResult<Option<NaiveDateTime>> {
    outbox::table
        .filter(outbox::state.eq_any(["pending", "leased"]))
        .select(diesel::dsl::min(outbox::created_at))
        .first(conn)
}

/// The earliest time a pending row becomes due, so the worker can sleep until then.
pub fn next_due(conn: &mut DbConnection) -> QueryResult<Option<NaiveDateTime>> {
    let pending: Option<NaiveDateTime> = outbox::table
        .filter(outbox::state.eq("pending"))
        .select(diesel::dsl::min(outbox::next_attempt_at))
        .first(conn)?;
    let leased: Option<NaiveDateTime> = outbox::table
        .filter(outbox::state.eq("leased"))
        .select(diesel::dsl::min(outbox::lease_until))
        .first::<Option<NaiveDateTime>>(conn)?;
    Ok(match (pending, leased) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

/// State and last error of the first row of `incident_id` for `notifier` and `event`, without
/// the payload (it is read on every wait).
pub fn first_state(
    conn: &mut DbConnection,
    incident_id: i64,
    notifier: &str,
    event: &str,
) -> QueryResult<Option<(String, Option<String>)>> {
    outbox::table
        .filter(outbox::incident_id.eq(incident_id))
        .filter(outbox::notifier.eq(notifier))
        .filter(outbox::event.eq(event))
        .order(outbox::id)
        .select((outbox::state, outbox::last_error))
        .first(conn)
        .optional()
}

/// How many rows of a sequence are still to run (pending or leased).
pub fn unfinished_in_sequence(conn: &mut DbConnection, sequence_key: &str) -> QueryResult<i64> {
    outbox::table
        .filter(outbox::sequence_key.eq(sequence_key))
        .filter(outbox::state.eq_any(["pending", "leased"]))
        .count()
        .get_result(conn)
}

/// Makes the incident's waiting deliveries due now (a delivery of the same incident just finished,
/// which may be what they wait for). Waiting rows are the pending ones with an error but no spent
/// attempt: a wait gives its attempt back, a real failure does not.
pub fn wake_waiting(conn: &mut DbConnection, incident_id: i64, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        outbox::table
            .filter(outbox::incident_id.eq(incident_id))
            .filter(outbox::state.eq("pending"))
            .filter(outbox::attempts.eq(0))
            .filter(outbox::last_error.is_not_null())
            .filter(outbox::next_attempt_at.gt(now)),
    )
    .set(outbox::next_attempt_at.eq(now))
    .execute(conn)
}
