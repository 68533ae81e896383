//! `/admin/tokens`: admins make, list and revoke API tokens, and see who has signed in.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::auth::{Administer, Principal, Scope};
use crate::db::models::api_token::ApiTokenRow;
use crate::domain::declaration::now_utc;
use crate::services::ServiceError;
use crate::services::tokens::{self, TokenRequest};
use crate::state::AppState;
use crate::web::pages::Me;
use crate::web::session::{Access, checked_form};
use crate::web::{error_page, internal, render, see_other, view};

/// A token in the list.
pub struct TokenView {
    pub id: i64,
    pub name: String,
    pub public_id: String,
    pub scopes: String,
    pub created_by: String,
    pub created: String,
    pub expires: String,
    pub last_used: String,
    pub state: &'static str,
    pub active: bool,
}

/// A person in the list.
pub struct PersonView {
    pub name: String,
    pub email: String,
    pub role: String,
    pub last_seen: String,
}

/// A scope checkbox.
pub struct ScopeChoice {
    pub name: &'static str,
    pub description: &'static str,
    pub checked: bool,
}

/// The page.
#[derive(Template)]
#[template(path = "admin_tokens.html")]
pub struct TokensPage {
    me: Option<Me>,
    csrf: String,
    tokens: Vec<TokenView>,
    people: Vec<PersonView>,
    scopes: Vec<ScopeChoice>,
    name: String,
    expires_in_days: String,
    /// The secret of a token just made, shown once.
    new_secret: Option<String>,
    new_name: String,
    errors: Vec<String>,
}

fn token_view(t: &ApiTokenRow, now: chrono::NaiveDateTime) -> TokenView {
    let state = if t.revoked_at.is_some() {
        "revoked"
    } else if !t.is_active(now) {
        "expired"
    } else {
        "active"
    };
    TokenView {
        id: t.id,
        name: t.name.clone(),
        public_id: t.public_id.clone(),
        scopes: t.scopes.clone(),
        created_by: t.created_by_email.clone(),
        created: view::time(&t.created_at),
        expires: t.expires_at.map(|e| view::time(&e)).unwrap_or_else(|| "never".into()),
        last_used: t.last_used_at.map(|e| view::time(&e)).unwrap_or_else(|| "never".into()),
        state,
        active: state == "active",
    }
}

async fn page(state: &AppState, who: &Principal, form: &TokenRequest) -> Result<TokensPage, ServiceError> {
    let now = now_utc();
    let tokens = tokens::list(state).await?;
    let people = state.db.run(|conn| crate::db::models::user::list(conn, 1000)).await?;
    Ok(TokensPage {
        me: Some(Me::new(who, state.settings.auth.mode)),
        csrf: who.csrf().to_string(),
        tokens: tokens.iter().map(|t| token_view(t, now)).collect(),
        people: people
            .iter()
            .map(|u| PersonView {
                name: u.name.clone(),
                email: u.email.clone(),
                role: u.role.clone(),
                last_seen: view::time(&u.last_seen_at),
            })
            .collect(),
        scopes: Scope::ALL
            .iter()
            .map(|s| ScopeChoice {
                name: s.as_str(),
                description: s.describe(),
                checked: form.scopes.iter().any(|f| f == s.as_str()),
            })
            .collect(),
        name: form.name.clone(),
        expires_in_days: form.expires_in_days.clone(),
        new_secret: None,
        new_name: String::new(),
        errors: Vec::new(),
    })
}

/// `GET /admin/tokens`
pub async fn show(who: Access<Administer>, state: web::Data<AppState>) -> HttpResponse {
    match page(&state, &who, &TokenRequest::default()).await {
        Ok(p) => render(StatusCode::OK, &p),
        Err(e) => internal(&e),
    }
}

/// `POST /admin/tokens`: makes a token and shows its secret once.
pub async fn create(
    req: HttpRequest,
    body: web::Bytes,
    who: Access<Administer>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form = match checked_form(&req, &body, &who) {
        Ok(f) => f,
        Err(response) => return *response,
    };
    let request = TokenRequest {
        name: form.get("name").chars().take(200).collect(),
        scopes: form.all("scopes"),
        expires_in_days: form.get("expires_in_days").chars().take(20).collect(),
    };
    match tokens::create(&state, &who.actor, &request).await {
        Ok(created) => match page(&state, &who, &TokenRequest::default()).await {
            Ok(mut p) => {
                p.new_secret = Some(created.secret);
                p.new_name = created.row.name;
                render(StatusCode::CREATED, &p)
            }
            Err(e) => internal(&e),
        },
        Err(ServiceError::Invalid(errors)) => match page(&state, &who, &request).await {
            Ok(mut p) => {
                p.errors = errors.into_iter().map(|e| e.message).collect();
                render(StatusCode::UNPROCESSABLE_ENTITY, &p)
            }
            Err(e) => internal(&e),
        },
        Err(e) => internal(&e),
    }
}

/// `POST /admin/tokens/{id}/revoke`
pub async fn revoke(
    req: HttpRequest,
    body: web::Bytes,
    who: Access<Administer>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    if let Err(response) = checked_form(&req, &body, &who) {
        return *response;
    }
    let Some(id) = path.parse::<i64>().ok().filter(|id| *id > 0) else {
        return error_page(StatusCode::NOT_FOUND, "There is no such token.");
    };
    match tokens::revoke(&state, id).await {
        Ok(()) => see_other("/admin/tokens"),
        Err(ServiceError::NotFound) => error_page(StatusCode::NOT_FOUND, "There is no such token."),
        Err(e) => internal(&e),
    }
}
