//! Incident roles over the API: `POST /api/v1/incidents/{number}/roles/{role}` takes, hands over
//! or clears any configured role (the lead included, through the same use case as the page), and
//! answers every role with its holder. `GET /api/v1/incidents/{number}` lists them too.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiError;
use super::types::Person;
use crate::auth::Work;
use crate::domain::IncidentNumber;
use crate::services::roles::{self, HeldRole};
use crate::state::AppState;
use crate::web::problem::FieldProblem;
use crate::web::session::Access;

/// A role on an incident and who holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct IncidentRole {
    /// The role id as configured: `lead`, `comms`, `scribe`, or one from `[[roles]]`.
    pub id: String,
    /// Its display name, e.g. "Comms lead".
    pub name: String,
    /// What the holder does during an incident, in one line.
    pub description: String,
    /// Who holds it, or null when nobody does.
    pub holder: Option<Person>,
}

impl From<HeldRole> for IncidentRole {
    fn from(h: HeldRole) -> Self {
        Self {
            id: h.role.id,
            name: h.role.name,
            description: h.role.description,
            holder: h.holder.map(|a| Person {
                name: a.name,
                email: a.email,
            }),
        }
    }
}

/// A role change: `{"email": …, "name"?: …}` to give the role to that person (taking it or
/// handing it over), `{"clear": true}` to leave it held by nobody.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    /// The new holder's email.
    #[serde(default)]
    pub email: Option<String>,
    /// The new holder's name; when absent, taken from the people who have signed in.
    #[serde(default)]
    pub name: Option<String>,
    /// `true` to leave the role held by nobody (without `email`).
    #[serde(default)]
    pub clear: Option<bool>,
    /// The email of the holder you believe it has now, `""` for nobody; if that is no longer
    /// true, nothing changes (409). Absent: no check.
    #[serde(default)]
    pub expected: Option<String>,
}

/// The incident's roles after a change.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IncidentRoles {
    /// Every configured role, the lead first, with its holder.
    pub roles: Vec<IncidentRole>,
}

fn no_role(state: &AppState) -> ApiError {
    let known: Vec<String> = state.settings.roles().into_iter().map(|r| r.id).collect();
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("There is no such role; the roles are {}.", known.join(", ")),
    )
}

#[utoipa::path(
    post,
    path = "/api/v1/incidents/{number}/roles/{role}",
    operation_id = "changeRole",
    tag = "incidents",
    summary = "Take, hand over or clear a role",
    description = "Needs the `incidents:write` scope. `{\"email\": …}` gives the role to that person (their name is \
                   taken from the people who have signed in unless `name` is given); `{\"clear\": true}` leaves it \
                   held by nobody. With `expected`, a holder other than the one you name refuses the change (409). \
                   Giving a role to its holder, or clearing a role nobody holds, is refused (409). The lead is the \
                   role `lead`.",
    params(
        ("number" = i64, Path, description = "The incident's number.", minimum = 1, example = 1),
        ("role" = String, Path, description = "A configured role id.", example = "comms"),
    ),
    request_body(content = RoleRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Changed; every role of the incident as it is now.", body = IncidentRoles),
    ),
)]
/// `POST /api/v1/incidents/{number}/roles/{role}`
pub async fn change(
    who: Access<Work>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<RoleRequest>,
) -> Result<HttpResponse, ApiError> {
    let (raw, role) = path.into_inner();
    let number = IncidentNumber::parse(&raw)
        .map(|n| n.0)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "There is no such incident."))?;
    if state.settings.role(&role).is_none() {
        return Err(no_role(&state));
    }
    let body = body.into_inner();
    let to = match (&body.email, body.clear.unwrap_or(false)) {
        (None, true) if body.name.is_none() => None,
        (Some(email), false) => Some(
            roles::person(&state, email, body.name.as_deref().unwrap_or_default())
                .await
                .map_err(|e| ApiError::from_service(e, Some(number)))?,
        ),
        _ => {
            return Err(ApiError::invalid(vec![FieldProblem {
                field: "email".into(),
                message: "Send {\"email\": …} (and optionally \"name\") to give the role to someone, or \
                          {\"clear\": true} alone to leave it held by nobody."
                    .into(),
            }]));
        }
    };
    let held = roles::roles_of(&state, number)
        .await
        .map_err(|e| ApiError::from_service(e, Some(number)))?;
    let expected = match body.expected {
        Some(e) => e,
        None => held
            .iter()
            .find(|h| h.role.id == role)
            .and_then(|h| h.holder.as_ref().map(|a| a.email.clone()))
            .unwrap_or_default(),
    };
    roles::change_role(&state, number, who.actor.clone(), &role, to, &expected)
        .await
        .map_err(|e| ApiError::from_service(e, Some(number)))?;
    let now = roles::roles_of(&state, number)
        .await
        .map_err(|e| ApiError::from_service(e, Some(number)))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(IncidentRoles {
            roles: now.into_iter().map(Into::into).collect(),
        }))
}
