//! Read-only views: the dashboard, one incident with its timeline and deliveries; and a person's
//! time zone, which only changes how times are shown to them.

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
    /// Its latest status update, if any.
    pub latest_update: Option<crate::db::models::StatusUpdateRow>,
    /// Who holds its roles other than the lead.
    pub roles: Vec<crate::db::models::RoleRow>,
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
    let mut updates = crate::db::models::status_update::latest_for_each(conn, &ids)?;
    let mut roles = crate::db::models::role::list_for_many(conn, &ids)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let services = pairs
                .iter()
                .filter(|(id, _)| *id == row.id)
                .map(|(_, s)| s.clone())
                .collect();
            let latest_update = updates
                .iter()
                .position(|u| u.incident_id == row.id)
                .map(|i| updates.swap_remove(i));
            let (mine, rest) = std::mem::take(&mut roles)
                .into_iter()
                .partition(|r| r.incident_id == row.id);
            roles = rest;
            IncidentSummary {
                row,
                services,
                latest_update,
                roles: mine,
            }
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
    /// The incidents merged into this one, as (number, title).
    pub merged_from: Vec<(i64, String)>,
    /// What integrations created for it (channel, ticket), by integration and name.
    pub external: Vec<crate::db::models::ExternalRefRow>,
    /// People who have signed in (the lead picker offers them), by name.
    pub people: Vec<crate::db::models::user::UserRow>,
    /// The time zone the viewer chose, if a viewer was named and chose one.
    pub viewer_time_zone: Option<String>,
    /// Its status updates, oldest first.
    pub updates: Vec<crate::db::models::StatusUpdateRow>,
    /// Its follow-ups, in the order they were recorded.
    pub follow_ups: Vec<crate::db::models::FollowUpRow>,
    /// Who holds its roles other than the lead (see [`super::roles::held_roles`]).
    pub roles: Vec<crate::db::models::RoleRow>,
    /// The Prometheus Alertmanager alerts it has seen, in the order they arrived.
    pub alerts: Vec<crate::db::models::AlertRow>,
}

/// Loads one incident by number, with the time zone of `viewer` (an email) when given.
pub async fn incident_detail(
    state: &AppState,
    number: i64,
    viewer: Option<String>,
) -> Result<IncidentDetail, ServiceError> {
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
            let updates = crate::db::models::status_update::list_for(conn, row.id)?;
            let follow_ups = crate::db::models::follow_up::list_for(conn, row.id)?;
            let roles = crate::db::models::role::list_for(conn, row.id)?;
            let merged_from = incident::merged_into(conn, row.number)?;
            let alerts = crate::db::models::alert::list_for_incident(conn, row.id)?;
            let viewer_time_zone = match &viewer {
                Some(email) => crate::db::models::user::time_zone_of(conn, email)?,
                None => None,
            };
            Ok(Some(IncidentDetail {
                updates,
                follow_ups,
                roles,
                people,
                viewer_time_zone,
                row,
                services,
                timeline,
                deliveries,
                merged_from,
                external,
                alerts,
            }))
        })
        .await?
        .ok_or(ServiceError::NotFound)
}

/// The IANA time zone a person chose, if any (none means UTC).
pub async fn time_zone_of(state: &AppState, email: &str) -> Result<Option<String>, ServiceError> {
    let email = email.to_string();
    Ok(state
        .db
        .run(move |conn| crate::db::models::user::time_zone_of(conn, &email))
        .await?)
}

/// Sets (or clears, back to UTC) a person's time zone. The name must be one `chrono-tz` knows.
pub async fn set_time_zone(state: &AppState, who: &crate::auth::Principal, name: &str) -> Result<(), ServiceError> {
    let name = name.trim();
    let zone = if name.is_empty() || name == "UTC" {
        None
    } else {
        match name.parse::<chrono_tz::Tz>() {
            Ok(tz) => Some(tz.name().to_string()),
            Err(_) => {
                return Err(ServiceError::field(
                    "time_zone",
                    "Choose a time zone from the list, like Europe/Paris.",
                ));
            }
        }
    };
    let actor = who.actor.clone();
    let role = who.role;
    state
        .db
        .write(move |conn| -> Result<(), ServiceError> {
            use crate::db::models::user;
            if user::set_time_zone(conn, &actor.email, zone.as_deref())? == 0 {
                // No user row yet (a proxy sign-in not recorded yet): make it, then set.
                let now = crate::domain::declaration::now_utc();
                user::upsert(conn, &actor.email, &actor.name, role.as_str(), now)?;
                user::set_time_zone(conn, &actor.email, zone.as_deref())?;
            }
            Ok(())
        })
        .await?;
    Ok(())
}
