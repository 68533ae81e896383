//! `/identify`: development sign-in, where a person names themselves (loopback only, with a banner
//! on every page), and `/signout`. In the other modes `/identify` does not exist.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::auth::Read;
use crate::config::AuthMode;
use crate::domain::parse_person;
use crate::state::AppState;
use crate::web::form::FormData;
use crate::web::session::{
    Access, PRE_CSRF_COOKIE, check_origin, checked_form, clear_session_cookie, random_token, safe_next,
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

fn not_in_this_mode() -> HttpResponse {
    error_page(
        StatusCode::NOT_FOUND,
        "People sign in through the company's sign-in here, not by naming themselves.",
    )
}

/// Shows the form.
pub async fn show(req: HttpRequest, query: web::Query<NextQuery>, state: web::Data<AppState>) -> HttpResponse {
    if state.settings.auth.mode != AuthMode::Dev {
        return not_in_this_mode();
    }
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
    if state.settings.auth.mode != AuthMode::Dev {
        return not_in_this_mode();
    }
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
        Ok(actor) => {
            let role = crate::auth::role_for(&state.settings.auth, &actor.email, &[]);
            match crate::web::session::start_session(&state, &actor, role, AuthMode::Dev).await {
                Ok(cookie) => {
                    tracing::info!(user.email = %actor.email, role = role.as_str(), "person identified");
                    let mut resp = see_other(&next);
                    let _ = resp.add_cookie(&cookie);
                    resp
                }
                Err(e) => internal(&e),
            }
        }
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

/// Signs the person out: the session cookie is removed and they land on a page saying so.
pub async fn sign_out(
    req: HttpRequest,
    body: web::Bytes,
    user: Access<Read>,
    state: web::Data<AppState>,
) -> HttpResponse {
    if let Err(response) = checked_form(&req, &body, &user) {
        return *response;
    }
    if let crate::auth::Via::Session { sid, .. } = &user.via {
        crate::web::session::forget_live(&state, sid);
        let sid = sid.clone();
        let ended = state
            .db
            .write(move |conn| crate::db::models::session::delete(conn, &sid).map_err(crate::db::DbError::from))
            .await;
        if let Err(e) = ended {
            return internal(&e);
        }
    }
    tracing::info!(user.email = %user.actor.email, "signed out");
    let mut resp = see_other("/signed-out");
    let _ = resp.add_cookie(&clear_session_cookie());
    resp
}

/// The page after signing out.
#[derive(Template)]
#[template(path = "signed_out.html")]
pub struct SignedOutPage {
    me: Option<super::Me>,
    sign_in: &'static str,
}

/// `GET /signed-out`
pub async fn signed_out(state: web::Data<AppState>) -> HttpResponse {
    let sign_in = match state.settings.auth.mode {
        AuthMode::Dev => "/identify",
        AuthMode::Oidc => "/auth/login",
        AuthMode::Proxy => "/",
    };
    render(StatusCode::OK, &SignedOutPage { me: None, sign_in })
}
