//! `/identify`: until sign-in lands, a person names themselves once (dev mode, loopback only).

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::domain::parse_person;
use crate::state::AppState;
use crate::web::form::FormData;
use crate::web::session::{
    CurrentUser, PRE_CSRF_COOKIE, check_origin, checked_form, clear_session_cookie, random_token, safe_next,
    session_cookie,
};
use crate::web::{error_page, internal, render, see_other};

/// The identify form.
#[derive(Template)]
#[template(path = "identify.html")]
pub struct IdentifyPage {
    me: Option<super::Me>,
    csrf: String,
    next: String,
    name: String,
    email: String,
    error: Option<String>,
}

/// Query string of `GET /identify`.
#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

fn with_csrf_cookie(mut resp: HttpResponse, token: &str, fresh: bool) -> HttpResponse {
    if fresh {
        let cookie = Cookie::build(PRE_CSRF_COOKIE, token.to_string())
            .path("/identify")
            .http_only(true)
            .same_site(SameSite::Strict)
            .finish();
        let _ = resp.add_cookie(&cookie);
    }
    resp
}

/// Shows the form.
pub async fn show(req: HttpRequest, query: web::Query<NextQuery>) -> HttpResponse {
    let existing = req
        .cookie(PRE_CSRF_COOKIE)
        .map(|c| c.value().to_string())
        .filter(|v| v.len() >= 32);
    let fresh = existing.is_none();
    let token = existing.unwrap_or_else(random_token);
    let page = IdentifyPage {
        me: None,
        csrf: token.clone(),
        next: safe_next(query.next.as_deref().unwrap_or("/")),
        name: String::new(),
        email: String::new(),
        error: None,
    };
    with_csrf_cookie(render(StatusCode::OK, &page), &token, fresh)
}

/// Accepts the form: sets the session cookie and goes to `next`.
pub async fn submit(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let form = match FormData::parse(&req, &body) {
        Ok(f) => f,
        Err(e) => return error_page(e.status, e.message),
    };
    let cookie_token = req
        .cookie(PRE_CSRF_COOKIE)
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    let form_token = form.get("csrf");
    if check_origin(&req).is_err()
        || cookie_token.is_empty()
        || !bool::from(cookie_token.as_bytes().ct_eq(form_token.as_bytes()))
    {
        return error_page(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site. Go back, reload the page and try again.",
        );
    }
    let next = safe_next(form.get("next"));
    match parse_person(form.get("name"), form.get("email")) {
        Ok(actor) => match session_cookie(&state.session_key, &actor) {
            Ok(cookie) => {
                tracing::info!(user.email = %actor.email, "person identified");
                let mut resp = see_other(&next);
                let _ = resp.add_cookie(&cookie);
                resp
            }
            Err(e) => internal(&e),
        },
        Err(e) => {
            let page = IdentifyPage {
                me: None,
                csrf: cookie_token,
                next,
                name: form.get("name").chars().take(100).collect(),
                email: form.get("email").chars().take(254).collect(),
                error: Some(e.message),
            };
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
    }
}

/// Forgets the person.
pub async fn sign_out(req: HttpRequest, body: web::Bytes, user: CurrentUser) -> HttpResponse {
    if let Err(response) = checked_form(&req, &body, &user) {
        return *response;
    }
    let mut resp = see_other("/identify");
    let _ = resp.add_cookie(&clear_session_cookie());
    resp
}
