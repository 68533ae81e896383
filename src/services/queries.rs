//! Read-only views: the dashboard, one incident with its timeline and deliveries.

use super::ServiceError;
use crate::db::models::{IncidentFilter, IncidentRow, OutboxRow, TimelineEntryRow, incident, outbox, timeline};
use crate::state::AppState;

/// An incident with its services.
#[derive(Debug, Clone)]
pub struct IncidentSummary {
    /// The stored incident.
    pub row: IncidentRow,
    /// Its services.
    pub services: Vec<String>,
}

/// What the dashboard shows.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// Live incidents matching the filter (most severe first, then newest).
    pub live: Vec<IncidentSummary>,
    /// One page of resolved incidents matching the filter, newest first.
    pub past: Vec<IncidentSummary>,
    /// How many resolved incidents match in all.
    pub past_total: i64,
}

/// The most live incidents the dashboard lists (more than this is a very bad day).
pub const LIVE_LIMIT: i64 = 500;

fn attach(conn: &mut crate::db::DbConnection, rows: Vec<IncidentRow>) -> diesel::QueryResult<Vec<IncidentSummary>> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let pairs = incident::services_of_many(conn, &ids)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let services = pairs
                .iter()
                .filter(|(id, _)| *id == row.id)
                .map(|(_, s)| s.clone())
                .collect();
            IncidentSummary { row, services }
        })
        .collect())
}

/// Loads the dashboard for a filter and a page of past incidents.
pub async fn dashboard(
    state: &AppState,
    filter: IncidentFilter,
    page: i64,
    per_page: i64,
) -> Result<Dashboard, ServiceError> {
    let settings = state.settings.clone();
    let mut d = state
        .db
        .run(move |conn| {
            let live_filter = IncidentFilter {
                live: Some(true),
                ..filter.clone()
            };
            let past_filter = IncidentFilter {
                live: Some(false),
                ..filter
            };
            let live = incident::list(conn, &live_filter, LIVE_LIMIT, 0)?;
            let past_total = incident::count(conn, &past_filter)?;
            let past = incident::list(conn, &past_filter, per_page, (page - 1).max(0) * per_page)?;
            Ok(Dashboard {
                live: attach(conn, live)?,
                past: attach(conn, past)?,
                past_total,
            })
        })
        .await?;
    d.live.sort_by_key(|i| {
        (
            settings.severity_rank(&i.row.severity),
            std::cmp::Reverse(i.row.declared_at),
        )
    });
    Ok(d)
}

/// One page of incidents matching `filter`, newest first, after the sort key `after`
/// (`declared_at`, `id`) of the previous page's last one. Also says whether more follow.
pub async fn incident_page(
    state: &AppState,
    filter: IncidentFilter,
    after: Option<(chrono::NaiveDateTime, i64)>,
    limit: i64,
) -> Result<(Vec<IncidentSummary>, bool), ServiceError> {
    Ok(state
        .db
        .run(move |conn| {
            // One more than asked for says whether another page exists.
            let mut rows = incident::list_after(conn, &filter, after, limit + 1)?;
            let more = rows.len() as i64 > limit;
            rows.truncate(usize::try_from(limit).unwrap_or(0));
            Ok((attach(conn, rows)?, more))
        })
        .await?)
}

/// Live incidents, for "join instead?" on the declare page.
pub async fn live_incidents(state: &AppState) -> Result<Vec<IncidentSummary>, ServiceError> {
    Ok(state
        .db
        .run(move |conn| {
            let rows = incident::live_on_services(conn, &[], LIVE_LIMIT)?;
            attach(conn, rows)
        })
        .await?)
}

/// One incident with everything its page shows.
#[derive(Debug, Clone)]
pub struct IncidentDetail {
    /// The incident.
    pub row: IncidentRow,
    /// Its services.
    pub services: Vec<String>,
    /// Its timeline, oldest first.
    pub timeline: Vec<TimelineEntryRow>,
    /// Its deliveries, oldest first.
    pub deliveries: Vec<OutboxRow>,
    /// What integrations created for it (channel, ticket), by integration and name.
    pub external: Vec<crate::db::models::ExternalRefRow>,
    /// People who have signed in (the lead picker offers them), by name.
    pub people: Vec<crate::db::models::user::UserRow>,
}

/// Loads one incident by number.
pub async fn incident_detail(state: &AppState, number: i64) -> Result<IncidentDetail, ServiceError> {
    state
        .db
        .run(move |conn| {
            let Some(row) = incident::find_by_number(conn, number)? else {
                return Ok(None);
            };
            let services = incident::services_of(conn, row.id)?;
            let timeline = timeline::list_for(conn, row.id)?;
            let deliveries = outbox::list_for(conn, row.id)?;
            let external = crate::db::models::external_ref::list_for(conn, row.id)?;
            let people = crate::db::models::user::list(conn, 500)?;
            Ok(Some(IncidentDetail {
                people,
                row,
                services,
                timeline,
                deliveries,
                external,
            }))
        })
        .await?
        .ok_or(ServiceError::NotFound)
}
