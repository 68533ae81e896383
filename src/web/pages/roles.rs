//! `POST /incidents/{number}/roles/{role}`: the Roles card's forms. `action=take` gives the role
//! to the person signed in, `action=assign` to the person named by `email` (and `name` when they
//! have not signed in yet), `action=leave` leaves it held by nobody. `expected` is the holder's
//! email as the form showed it ("" for nobody).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::incident::{handle, number_from};
use crate::auth::Work;
use crate::services::ServiceError;
use crate::services::roles;
use crate::state::AppState;
use crate::web::error_page;
use crate::web::session::Access;

/// A role, as the Roles card shows it.
pub struct RoleCard {
    /// Role id (the form's path).
    pub id: String,
    /// Display name.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// The holder's name.
    pub holder: Option<String>,
    /// The holder's email, or "" (the form's `expected`).
    pub holder_email: String,
    /// Whether the viewer holds it.
    pub mine: bool,
}

/// The cards for every configured role of an incident, the lead first.
pub fn cards(held: Vec<roles::HeldRole>, viewer_email: &str) -> Vec<RoleCard> {
    held.into_iter()
        .map(|h| RoleCard {
            mine: h.holder.as_ref().is_some_and(|a| a.email == viewer_email),
            holder_email: h.holder.as_ref().map(|a| a.email.clone()).unwrap_or_default(),
            holder: h.holder.map(|a| a.name),
            id: h.role.id,
            name: h.role.name,
            description: h.role.description,
        })
        .collect()
}

/// `POST /incidents/{number}/roles/{role}`
pub async fn change(
    req: HttpRequest,
    body: web::Bytes,
    user: Access<Work>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (raw, role) = path.into_inner();
    if number_from(&raw).is_some() && state.settings.role(&role).is_none() {
        return error_page(StatusCode::NOT_FOUND, "There is no such role.");
    }
    handle(req, body, user, state, &raw, move |st, n, u, form| async move {
        let to = match form.get("action") {
            "take" => Some(u.actor.clone()),
            "leave" => None,
            "assign" => Some(roles::person(&st, form.get("email"), form.get("name")).await?),
            _ => {
                return Err(ServiceError::field(
                    "action",
                    "Choose whether to take, hand over or leave the role.",
                ));
            }
        };
        roles::change_role(&st, n, u.actor, &role, to, form.get("expected")).await
    })
    .await
}

/// A `role_changed` timeline entry in words, after the actor's name: "took the comms lead role",
/// "handed the scribe role from Ada Lovelace to Grace Hopper", "left the scribe role".
pub fn describe(e: &crate::db::models::TimelineEntryRow, settings: &crate::config::Settings) -> String {
    let id = e.field.as_deref().unwrap_or("");
    let role = settings
        .role(id)
        .map(|r| r.in_sentence())
        .unwrap_or_else(|| id.replace(['_', '-'], " "));
    match (e.old_value.as_deref(), e.new_value.as_deref()) {
        (None, Some(n)) if n == e.actor_name => format!("took the {role} role"),
        (None, Some(n)) => format!("made {n} {role}"),
        (Some(o), None) if o == e.actor_name => format!("left the {role} role"),
        (Some(o), None) => format!("took {o} off the {role} role"),
        (Some(o), Some(n)) => format!("handed the {role} role from {o} to {n}"),
        (None, None) => format!("changed the {role} role"),
    }
}
