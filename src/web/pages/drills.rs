//! `POST /drills`: the dashboard's "Start a drill" button. Declares a drill from one of the
//! `[[drills.scenarios]]` of the configuration, through the same declare use case (and its
//! idempotency key) as the declare form, then opens the drill's page.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::auth::Declare;
use crate::domain::DeclarationInput;
use crate::services::ServiceError;
use crate::services::declare::declare;
use crate::state::AppState;
use crate::web::session::{Access, checked_form};
use crate::web::{error_page, internal, see_other};

/// A scenario as the dashboard's form offers it: (id, title).
pub fn choices(state: &AppState) -> Vec<(String, String)> {
    state
        .settings
        .drills
        .iter()
        .flat_map(|d| d.scenarios.iter())
        .map(|s| (s.id.clone(), s.title.clone()))
        .collect()
}

/// Starts the chosen scenario as a drill.
pub async fn start(
    req: HttpRequest,
    body: web::Bytes,
    user: Access<Declare>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form = match checked_form(&req, &body, &user) {
        Ok(f) => f,
        Err(response) => return *response,
    };
    let chosen = form.get("scenario").trim().to_string();
    let Some(scenario) = state
        .settings
        .drills
        .iter()
        .flat_map(|d| d.scenarios.iter())
        .find(|s| s.id == chosen)
    else {
        return error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose a drill scenario from the list on the dashboard; nothing was started.",
        );
    };
    let input = DeclarationInput {
        title: scenario.title.clone(),
        severity: scenario.severity.clone(),
        services: scenario.services.clone(),
        summary: scenario.summary.clone(),
        lead_self: false,
        drill: true,
        impact_started: String::new(),
    };
    let key = form.get("idempotency_key").to_string();
    match declare(&state, user.actor.clone(), input, Some(key)).await {
        Ok(d) => see_other(&format!("/incidents/{}", d.number)),
        Err(ServiceError::Invalid(errors)) => {
            let msg = errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join(" ");
            error_page(StatusCode::UNPROCESSABLE_ENTITY, &format!("{msg} Nothing was started."))
        }
        Err(ServiceError::Conflict(msg)) => error_page(StatusCode::CONFLICT, &msg),
        Err(e) => internal(&e),
    }
}
