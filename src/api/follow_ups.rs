//! `/api/v1/incidents/{number}/follow-ups`: list an incident's follow-ups and add one, through the
//! same use cases as the incident page.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiError;
use crate::auth::{Read, Work};
use crate::db::models::FollowUpRow;
use crate::domain::IncidentNumber;
use crate::domain::follow_up::{FollowUpStatus, is_overdue};
use crate::services::follow_ups;
use crate::state::AppState;
use crate::web::session::Access;

/// Where a follow-up stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpStatusName {
    /// Still to do.
    Open,
    /// Done.
    Done,
    /// Decided against.
    WontDo,
}

impl From<FollowUpStatus> for FollowUpStatusName {
    fn from(s: FollowUpStatus) -> Self {
        match s {
            FollowUpStatus::Open => Self::Open,
            FollowUpStatus::Done => Self::Done,
            FollowUpStatus::WontDo => Self::WontDo,
        }
    }
}

/// An action item of an incident.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FollowUp {
    /// Its id.
    pub id: i64,
    /// What needs doing.
    pub title: String,
    /// Who owns it: a person's name, an email address, or a team.
    pub owner_name: String,
    /// The owner's email, when the owner was given by email.
    pub owner_email: Option<String>,
    /// The due date (a calendar date).
    #[schema(format = Date, example = "2026-12-01")]
    pub due_on: String,
    /// Where it stands.
    pub status: FollowUpStatusName,
    /// Open and due before today (UTC).
    pub overdue: bool,
    /// The Jira issue made for it, once made.
    pub jira_key: Option<String>,
    /// A link to that issue.
    pub jira_url: Option<String>,
    /// Who recorded it (email).
    pub created_by: String,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it was closed (done or won't do), if it is.
    pub closed_at: Option<DateTime<Utc>>,
}

impl FollowUp {
    fn from_row(r: &FollowUpRow, today: chrono::NaiveDate) -> Self {
        let status = FollowUpStatus::parse(&r.status).unwrap_or(FollowUpStatus::Open);
        FollowUp {
            id: r.id,
            title: r.title.clone(),
            owner_name: r.owner_name.clone(),
            owner_email: r.owner_email.clone(),
            due_on: r.due_on.clone(),
            status: status.into(),
            overdue: is_overdue(status, &r.due_on, today),
            jira_key: r.jira_key.clone(),
            jira_url: r.jira_url.clone(),
            created_by: r.created_by_email.clone(),
            created_at: r.created_at.and_utc(),
            updated_at: r.updated_at.and_utc(),
            closed_at: r.closed_at.map(|t| t.and_utc()),
        }
    }
}

/// An incident's follow-ups, in the order they were recorded.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FollowUpList {
    /// The follow-ups.
    pub follow_ups: Vec<FollowUp>,
}

/// A follow-up to record.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowUpRequest {
    /// What needs doing: one line, 1 to 200 characters.
    pub title: String,
    /// The owner: an email address (someone who signed in is shown with their name) or a name.
    pub owner: String,
    /// The due date, `YYYY-MM-DD`, from a year ago to five years ahead.
    #[schema(format = Date, example = "2026-12-01")]
    pub due_on: String,
}

fn number_from(raw: &str) -> Result<i64, ApiError> {
    IncidentNumber::parse(raw)
        .map(|n| n.0)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "There is no such incident."))
}

fn location(number: i64) -> String {
    format!("/api/v1/incidents/{number}/follow-ups")
}

async fn listed(state: &AppState, number: i64) -> Result<FollowUpList, ApiError> {
    let rows = follow_ups::list(state, number)
        .await
        .map_err(|e| ApiError::from_service(e, Some(number)))?;
    let today = follow_ups::today();
    Ok(FollowUpList {
        follow_ups: rows.iter().map(|r| FollowUp::from_row(r, today)).collect(),
    })
}

fn json(status: StatusCode, body: &impl Serialize) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

#[utoipa::path(
    get,
    path = "/api/v1/incidents/{number}/follow-ups",
    operation_id = "listFollowUps",
    tag = "incidents",
    summary = "An incident's follow-ups",
    description = "Needs the `incidents:read` scope.",
    params(("number" = i64, Path, description = "The incident's number.", minimum = 1, example = 1)),
    responses((status = 200, description = "Its follow-ups, oldest first.", body = FollowUpList)),
)]
/// `GET /api/v1/incidents/{number}/follow-ups`
pub async fn list(
    _who: Access<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let number = number_from(&path)?;
    Ok(json(StatusCode::OK, &listed(&state, number).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/incidents/{number}/follow-ups",
    operation_id = "addFollowUp",
    tag = "incidents",
    summary = "Record a follow-up",
    description = "Needs the `incidents:write` scope. Writes a `follow_up_added` timeline entry; with Jira \
                   follow-ups configured, a Jira issue is opened for it in the background. A refused field (422) \
                   stores nothing.",
    params(("number" = i64, Path, description = "The incident's number.", minimum = 1, example = 1)),
    request_body(content = FollowUpRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Recorded; the incident's follow-ups as they are now.", body = FollowUpList,
         headers(("Location" = String, description = "The incident's follow-ups in the API."))),
    ),
)]
/// `POST /api/v1/incidents/{number}/follow-ups`
pub async fn add(
    who: Access<Work>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<FollowUpRequest>,
) -> Result<HttpResponse, ApiError> {
    let number = number_from(&path)?;
    follow_ups::add(
        &state,
        number,
        who.actor.clone(),
        &body.title,
        &body.owner,
        &body.due_on,
    )
    .await
    .map_err(|e| ApiError::from_service(e, Some(number)))?;
    let mut response = json(StatusCode::CREATED, &listed(&state, number).await?);
    if let Ok(v) = header::HeaderValue::from_str(&location(number)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}
