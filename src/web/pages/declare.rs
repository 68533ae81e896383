//! `/declare`: the big red button.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::auth::{Declare, Principal};
use crate::domain::declaration::SUMMARY_MAX_CHARS;
use crate::domain::{DeclarationInput, FieldError, UNKNOWN_SEVERITY};
use crate::services::declare::declare;
use crate::services::{ServiceError, queries};
use crate::state::AppState;
use crate::web::pages::Me;
use crate::web::session::{Access, checked_form};
use crate::web::{internal, render, see_other, view};

/// A severity the declarer can pick, with its criterion beside it.
pub struct SeverityOption {
    pub id: String,
    pub label: String,
    pub criterion: String,
    pub class: String,
    pub checked: bool,
}

/// A service option.
pub struct ServiceOption {
    pub id: String,
    pub name: String,
    pub description: String,
    pub selected: bool,
}

/// A live incident shown as "join instead?".
pub struct LiveOption {
    pub number: i64,
    pub title: String,
    pub severity: String,
    pub severity_class: String,
    pub status: String,
    pub services: String,
    pub service_ids: String,
    pub age: String,
    pub matches: bool,
}

/// The declare form.
#[derive(Template)]
#[template(path = "declare.html")]
pub struct DeclarePage {
    me: Option<super::Me>,
    csrf: String,
    idempotency_key: String,
    severities: Vec<SeverityOption>,
    services: Vec<ServiceOption>,
    live: Vec<LiveOption>,
    any_selected_service: bool,
    title: String,
    summary: String,
    impact_started: String,
    lead_self: bool,
    drill: bool,
    errors: Vec<FieldError>,
    general_error: Option<String>,
    summary_max: usize,
}

impl DeclarePage {
    fn error_for(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }
}

async fn page(
    state: &AppState,
    user: &Principal,
    input: &DeclarationInput,
    key: String,
    errors: Vec<FieldError>,
    general_error: Option<String>,
) -> Result<DeclarePage, ServiceError> {
    let settings = &state.settings;
    let live = queries::live_incidents(state).await?;
    let now = crate::domain::declaration::now_utc();
    let chosen_severity = if input.severity.is_empty() {
        UNKNOWN_SEVERITY
    } else {
        input.severity.as_str()
    };
    let mut severities: Vec<SeverityOption> = settings
        .severities
        .iter()
        .map(|s| SeverityOption {
            id: s.id.clone(),
            label: s.label.clone(),
            criterion: s.criterion.clone(),
            class: view::severity_class(&s.id),
            checked: s.id == chosen_severity,
        })
        .collect();
    severities.push(SeverityOption {
        id: UNKNOWN_SEVERITY.into(),
        label: "Not sure yet".into(),
        criterion: "Declare now and decide the severity once you know more.".into(),
        class: view::severity_class(UNKNOWN_SEVERITY),
        checked: !severities.iter().any(|s| s.checked),
    });
    let services: Vec<ServiceOption> = settings
        .services
        .iter()
        .map(|s| ServiceOption {
            id: s.id.clone(),
            name: s.display_name().to_string(),
            description: s.description.clone(),
            selected: input.services.iter().any(|x| x == &s.id),
        })
        .collect();
    let live = live
        .iter()
        .map(|i| LiveOption {
            number: i.row.number,
            title: i.row.title.clone(),
            severity: i.row.severity.clone(),
            severity_class: view::severity_class(&i.row.severity),
            status: i.row.status.clone(),
            services: i.services.join(", "),
            service_ids: i.services.join(" "),
            age: view::age(&i.row.declared_at, &now),
            matches: i.services.iter().any(|s| input.services.contains(s)),
        })
        .collect();
    Ok(DeclarePage {
        me: Some(Me::new(user, state.settings.auth.mode)),
        csrf: user.csrf().to_string(),
        idempotency_key: key,
        any_selected_service: services.iter().any(|s| s.selected),
        severities,
        services,
        live,
        title: input.title.chars().take(400).collect(),
        summary: input.summary.chars().take(SUMMARY_MAX_CHARS + 100).collect(),
        impact_started: input.impact_started.chars().take(40).collect(),
        lead_self: input.lead_self,
        drill: input.drill,
        errors,
        general_error,
        summary_max: SUMMARY_MAX_CHARS,
    })
}

/// Query string of `GET /declare`: a service may be preselected.
#[derive(serde::Deserialize)]
pub struct DeclareQuery {
    service: Option<String>,
}

/// Shows the form with a fresh idempotency key.
pub async fn show(user: Access<Declare>, state: web::Data<AppState>, query: web::Query<DeclareQuery>) -> HttpResponse {
    let input = DeclarationInput {
        services: query.service.iter().cloned().collect(),
        ..Default::default()
    };
    match page(&state, &user, &input, uuid::Uuid::new_v4().to_string(), vec![], None).await {
        Ok(p) => render(StatusCode::OK, &p),
        Err(e) => internal(&e),
    }
}

/// Declares, then redirects to the incident page (303). Invalid input gets the form back.
pub async fn submit(
    req: HttpRequest,
    body: web::Bytes,
    user: Access<Declare>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form = match checked_form(&req, &body, &user) {
        Ok(f) => f,
        Err(response) => return *response,
    };
    let input = DeclarationInput {
        title: form.get("title").to_string(),
        severity: form.get("severity").to_string(),
        services: form.all("services"),
        summary: form.get("summary").to_string(),
        lead_self: form.checked("lead_self"),
        drill: form.checked("drill"),
        impact_started: form.get("impact_started").to_string(),
    };
    let key = form.get("idempotency_key").to_string();
    match declare(&state, user.actor.clone(), input.clone(), Some(key.clone())).await {
        Ok(d) => see_other(&format!("/incidents/{}", d.number)),
        Err(ServiceError::Invalid(errors)) => {
            let key = if key.is_empty() {
                uuid::Uuid::new_v4().to_string()
            } else {
                key
            };
            match page(&state, &user, &input, key, errors, None).await {
                Ok(p) => render(StatusCode::UNPROCESSABLE_ENTITY, &p),
                Err(e) => internal(&e),
            }
        }
        Err(ServiceError::Conflict(message)) => {
            match page(
                &state,
                &user,
                &input,
                uuid::Uuid::new_v4().to_string(),
                vec![],
                Some(message),
            )
            .await
            {
                Ok(p) => render(StatusCode::CONFLICT, &p),
                Err(e) => internal(&e),
            }
        }
        Err(e) => internal(&e),
    }
}
