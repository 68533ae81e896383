//! Incidents and their affected services.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{counters, incident_services, incidents};

/// An incident as stored.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = incidents)]
pub struct IncidentRow {
    pub id: i64,
    pub number: i64,
    pub title: String,
    pub severity: String,
    pub status: String,
    pub summary: String,
    pub declared_by_name: String,
    pub declared_by_email: String,
    pub lead_name: Option<String>,
    pub lead_email: Option<String>,
    pub drill: bool,
    pub impact_started_at: Option<NaiveDateTime>,
    pub declared_at: NaiveDateTime,
    pub mitigated_at: Option<NaiveDateTime>,
    pub resolved_at: Option<NaiveDateTime>,
    pub updated_at: NaiveDateTime,
    /// When the problem was noticed (by a person or an alert), if recorded.
    pub detected_at: Option<NaiveDateTime>,
    /// When responders mustered: the first action by someone other than the declarer, or set by hand.
    pub mustered_at: Option<NaiveDateTime>,
    /// Why it was declined (not an incident); `None` otherwise.
    pub closed_reason: Option<String>,
    /// The number of the incident it was merged into, for a merged duplicate.
    pub merged_into_number: Option<i64>,
}

/// A new incident row.
#[derive(Debug, Insertable)]
#[diesel(table_name = incidents)]
pub struct NewIncident<'a> {
    pub number: i64,
    pub title: &'a str,
    pub severity: &'a str,
    pub status: &'a str,
    pub summary: &'a str,
    pub declared_by_name: &'a str,
    pub declared_by_email: &'a str,
    pub lead_name: Option<&'a str>,
    pub lead_email: Option<&'a str>,
    pub drill: bool,
    pub impact_started_at: Option<NaiveDateTime>,
    pub declared_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Filters for listing incidents.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    /// Only this status.
    pub status: Option<String>,
    /// Only this severity.
    pub severity: Option<String>,
    /// Only incidents affecting this service.
    pub service: Option<String>,
    /// Case-insensitive substring of the title.
    pub text: Option<String>,
    /// Only live (true) or only closed (false: resolved, declined or merged) incidents.
    pub live: Option<bool>,
    /// Only drills (true) or only real incidents (false).
    pub drill: Option<bool>,
}

diesel::define_sql_function! {
    /// SQL `lower()`, the same on both backends.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// Allocates the next incident number. Must run inside the declaring transaction: the counter
/// row stays locked until commit (a row lock on PostgreSQL, the write lock on SQLite), so
/// concurrent declarations get distinct, gap-free numbers on both databases.
pub fn allocate_number(conn: &mut DbConnection) -> QueryResult<i64> {
    diesel::update(counters::table.filter(counters::name.eq("incident_number")))
        .set(counters::value.eq(counters::value + 1))
        .returning(counters::value)
        .get_result(conn)
}

/// Inserts an incident and returns its id.
pub fn insert(conn: &mut DbConnection, new: &NewIncident<'_>) -> QueryResult<i64> {
    diesel::insert_into(incidents::table)
        .values(new)
        .returning(incidents::id)
        .get_result(conn)
}

/// Records the affected services.
pub fn insert_services(conn: &mut DbConnection, incident_id: i64, services: &[String]) -> QueryResult<()> {
    for s in services {
        diesel::insert_into(incident_services::table)
            .values((
                incident_services::incident_id.eq(incident_id),
                incident_services::service.eq(s),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Finds an incident by its number and locks its row until the transaction ends, so two people
/// changing the same incident at once are serialised instead of overwriting each other. (A no-op
/// update takes the row lock on PostgreSQL; on SQLite the transaction already holds the write lock.)
pub fn find_by_number_for_update(conn: &mut DbConnection, number: i64) -> QueryResult<Option<IncidentRow>> {
    let locked = diesel::update(incidents::table.filter(incidents::number.eq(number)))
        .set(incidents::updated_at.eq(incidents::updated_at))
        .execute(conn)?;
    if locked == 0 {
        return Ok(None);
    }
    find_by_number(conn, number)
}

/// Finds an incident by its human number.
pub fn find_by_number(conn: &mut DbConnection, number: i64) -> QueryResult<Option<IncidentRow>> {
    incidents::table
        .filter(incidents::number.eq(number))
        .select(IncidentRow::as_select())
        .first(conn)
        .optional()
}

/// The services of one incident, in name order.
pub fn services_of(conn: &mut DbConnection, incident_id: i64) -> QueryResult<Vec<String>> {
    incident_services::table
        .filter(incident_services::incident_id.eq(incident_id))
        .select(incident_services::service)
        .order(incident_services::service.asc())
        .load(conn)
}

/// The services of many incidents at once, as `(incident_id, service)` pairs.
pub fn services_of_many(conn: &mut DbConnection, ids: &[i64]) -> QueryResult<Vec<(i64, String)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    incident_services::table
        .filter(incident_services::incident_id.eq_any(ids))
        .select((incident_services::incident_id, incident_services::service))
        .order((incident_services::incident_id.asc(), incident_services::service.asc()))
        .load(conn)
}

/// The stored forms of the statuses that count as live.
fn live_statuses() -> Vec<&'static str> {
    crate::domain::Status::ALL
        .into_iter()
        .filter(|s| s.is_live())
        .map(|s| s.as_str())
        .collect()
}

/// The stored forms of the statuses that close an incident.
fn closed_statuses() -> Vec<&'static str> {
    crate::domain::Status::CLOSED.into_iter().map(|s| s.as_str()).collect()
}

fn filtered(filter: &IncidentFilter) -> incidents::BoxedQuery<'static, crate::db::MultiBackend> {
    let mut q = incidents::table.into_boxed::<crate::db::MultiBackend>();
    if let Some(status) = &filter.status {
        q = q.filter(incidents::status.eq(status.clone()));
    }
    if let Some(severity) = &filter.severity {
        q = q.filter(incidents::severity.eq(severity.clone()));
    }
    if let Some(service) = &filter.service {
        let ids = incident_services::table
            .filter(incident_services::service.eq(service.clone()))
            .select(incident_services::incident_id);
        q = q.filter(incidents::id.eq_any(ids));
    }
    if let Some(text) = &filter.text {
        let escaped = text
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        q = q.filter(lower(incidents::title).like(format!("%{escaped}%")).escape('\\'));
    }
    match filter.live {
        // An IN list over the live statuses, not `<> 'resolved'`: the (status, declared_at)
        // index then finds the few live incidents directly instead of walking all the past ones.
        Some(true) => q = q.filter(incidents::status.eq_any(live_statuses())),
        Some(false) => q = q.filter(incidents::status.eq_any(closed_statuses())),
        None => {}
    }
    if let Some(drill) = filter.drill {
        q = q.filter(incidents::drill.eq(drill));
    }
    q
}

/// Lists incidents matching `filter`, newest first.
pub fn list(
    conn: &mut DbConnection,
    filter: &IncidentFilter,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<IncidentRow>> {
    filtered(filter)
        .order((incidents::declared_at.desc(), incidents::id.desc()))
        .limit(limit)
        .offset(offset)
        .select(IncidentRow::as_select())
        .load(conn)
}

/// One page of incidents matching `filter`, newest first (`declared_at`, then `id`, both
/// descending), starting after `after`, the sort key of the last incident of the previous page.
/// A keyset page: the database seeks to the position instead of counting past an offset, and an
/// incident declared while someone pages neither repeats nor hides one further down.
pub fn list_after(
    conn: &mut DbConnection,
    filter: &IncidentFilter,
    after: Option<(NaiveDateTime, i64)>,
    limit: i64,
) -> QueryResult<Vec<IncidentRow>> {
    let mut q = filtered(filter);
    if let Some((at, id)) = after {
        q = q.filter(
            incidents::declared_at
                .lt(at)
                .or(incidents::declared_at.eq(at).and(incidents::id.lt(id))),
        );
    }
    q.order((incidents::declared_at.desc(), incidents::id.desc()))
        .limit(limit)
        .select(IncidentRow::as_select())
        .load(conn)
}

/// Counts incidents matching `filter`.
pub fn count(conn: &mut DbConnection, filter: &IncidentFilter) -> QueryResult<i64> {
    filtered(filter).count().get_result(conn)
}

/// Live incidents affecting any of `services` (all live incidents when `services` is empty).
pub fn live_on_services(conn: &mut DbConnection, services: &[String], limit: i64) -> QueryResult<Vec<IncidentRow>> {
    let mut q = incidents::table
        .into_boxed::<crate::db::MultiBackend>()
        .filter(incidents::status.eq_any(live_statuses()));
    if !services.is_empty() {
        let ids = incident_services::table
            .filter(incident_services::service.eq_any(services.to_vec()))
            .select(incident_services::incident_id);
        q = q.filter(incidents::id.eq_any(ids));
    }
    q.order(incidents::declared_at.desc())
        .limit(limit)
        .select(IncidentRow::as_select())
        .load(conn)
}

/// Writes the mutable fields of an incident back.
pub fn update(conn: &mut DbConnection, row: &IncidentRow) -> QueryResult<()> {
    diesel::update(incidents::table.find(row.id))
        .set((
            incidents::severity.eq(&row.severity),
            incidents::status.eq(&row.status),
            incidents::lead_name.eq(&row.lead_name),
            incidents::lead_email.eq(&row.lead_email),
            incidents::mitigated_at.eq(row.mitigated_at),
            incidents::resolved_at.eq(row.resolved_at),
            incidents::impact_started_at.eq(row.impact_started_at),
            incidents::detected_at.eq(row.detected_at),
            incidents::mustered_at.eq(row.mustered_at),
            incidents::updated_at.eq(row.updated_at),
            incidents::closed_reason.eq(&row.closed_reason),
            incidents::merged_into_number.eq(row.merged_into_number),
        ))
        .execute(conn)
        .map(|_| ())
}

/// The incidents merged into incident `number`, lowest number first, as (number, title).
pub fn merged_into(conn: &mut DbConnection, number: i64) -> QueryResult<Vec<(i64, String)>> {
    incidents::table
        .filter(incidents::merged_into_number.eq(number))
        .order(incidents::number.asc())
        .select((incidents::number, incidents::title))
        .load(conn)
}

/// The incidents that count in metrics, declared from `since` on: real incidents (not drills)
/// that were neither declined (not an incident) nor merged into another. The one definition of
/// "counts"; every figure about incidents goes through it.
pub fn counted_since(conn: &mut DbConnection, since: NaiveDateTime) -> QueryResult<Vec<IncidentRow>> {
    incidents::table
        .filter(incidents::declared_at.ge(since))
        .filter(incidents::drill.eq(false))
        .filter(
            incidents::status.ne_all(
                crate::domain::Status::UNCOUNTED
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>(),
            ),
        )
        .order(incidents::declared_at.asc())
        .select(IncidentRow::as_select())
        .load(conn)
}

/// Marks an incident as touched (a note or a retry).
pub fn touch(conn: &mut DbConnection, id: i64, at: NaiveDateTime) -> QueryResult<()> {
    diesel::update(incidents::table.find(id))
        .set(incidents::updated_at.eq(at))
        .execute(conn)
        .map(|_| ())
}

/// How many incidents there are of each status, drills apart (for `/metrics`).
pub fn count_by_status(conn: &mut DbConnection) -> QueryResult<Vec<(String, bool, i64)>> {
    incidents::table
        .group_by((incidents::status, incidents::drill))
        .select((incidents::status, incidents::drill, diesel::dsl::count_star()))
        .order((incidents::status.asc(), incidents::drill.asc()))
        .load(conn)
}
