//! OpenID Connect sign-in: `/auth/login` sends the browser to the provider; `/auth/callback` takes
//! its answer, checks it and starts a session.
//!
//! Between the two, the login's state, nonce and PKCE verifier wait in the `login_attempts` table
//! (so any replica can take the answer), and the browser holds the state in a short-lived cookie
//! (so an answer only counts in the browser that started the sign-in). The row is deleted when the
//! answer arrives: a state, and so its nonce, works once.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::auth::oidc::{OidcError, PendingLogin};
use crate::config::AuthMode;
use crate::db::models::login_attempt::{self, LoginAttempt};
use crate::domain::Actor;
use crate::domain::declaration::now_utc;
use crate::state::AppState;
use crate::web::session::{safe_next, start_session};
use crate::web::{error_page, internal};

/// The cookie holding the state of the sign-in this browser started.
const LOGIN_COOKIE: &str = "rb_login";
/// How long a sign-in may take at the provider.
const LOGIN_MINUTES: i64 = 10;

/// `GET /auth/login` query.
#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// `GET /auth/callback` query: the provider's answer.
#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn not_in_this_mode() -> HttpResponse {
    error_page(
        StatusCode::NOT_FOUND,
        "This server does not use OpenID Connect sign-in.",
    )
}

fn login_cookie(value: &str, secure: bool, remove: bool) -> Cookie<'static> {
    let mut c = Cookie::build(LOGIN_COOKIE, value.to_string())
        .path("/auth/callback")
        .http_only(true)
        // Lax, not Strict: the provider's redirect back is a cross-site top-level navigation.
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(CookieDuration::minutes(LOGIN_MINUTES))
        .finish();
    if remove {
        c.make_removal();
    }
    c
}

/// Starts a sign-in: remembers it, then sends the browser to the provider.
pub async fn login(query: web::Query<LoginQuery>, state: web::Data<AppState>) -> HttpResponse {
    let (AuthMode::Oidc, Some(client)) = (state.settings.auth.mode, state.oidc.clone()) else {
        return not_in_this_mode();
    };
    let (url, pending) = match client.begin().await {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error.message = %e, "cannot start OpenID Connect sign-in");
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The sign-in provider cannot be reached right now. Try again in a minute; if it keeps failing, \
                 tell whoever runs this server.",
            );
        }
    };
    let now = now_utc();
    let attempt = LoginAttempt {
        state: pending.state.clone(),
        nonce: pending.nonce,
        code_verifier: pending.code_verifier,
        next_path: safe_next(query.next.as_deref().unwrap_or("/")),
        created_at: now,
    };
    let forget_before = now - chrono::Duration::minutes(LOGIN_MINUTES);
    let stored = state
        .db
        .write(move |conn| login_attempt::insert(conn, &attempt, forget_before).map_err(crate::db::DbError::from))
        .await;
    if let Err(e) = stored {
        return internal(&e);
    }
    let mut resp = HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, url))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .finish();
    let _ = resp.add_cookie(&login_cookie(&pending.state, state.session_key.secure_cookies(), false));
    resp
}

/// A refused sign-in: the page says why and offers to start again.
fn refused(status: StatusCode, why: &str) -> HttpResponse {
    error_page(
        status,
        &format!("Sign-in did not work: {why} Start again from the sign-in link."),
    )
}

/// Takes the provider's answer.
pub async fn callback(req: HttpRequest, query: web::Query<CallbackQuery>, state: web::Data<AppState>) -> HttpResponse {
    let (AuthMode::Oidc, Some(client)) = (state.settings.auth.mode, state.oidc.clone()) else {
        return not_in_this_mode();
    };
    let secure = state.session_key.secure_cookies();
    let mut resp = handle_callback(&req, &query, &state, &client).await;
    // Whatever happened, this browser's pending sign-in is over.
    let _ = resp.add_cookie(&login_cookie("", secure, true));
    resp
}

async fn handle_callback(
    req: &HttpRequest,
    query: &CallbackQuery,
    state: &AppState,
    client: &crate::auth::oidc::OidcClient,
) -> HttpResponse {
    let Some(returned_state) = query.state.as_deref().filter(|s| !s.is_empty() && s.len() <= 200) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "the answer from the sign-in provider has no state.",
        );
    };
    let cookie_state = req
        .cookie(LOGIN_COOKIE)
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    if cookie_state.is_empty() || !bool::from(cookie_state.as_bytes().ct_eq(returned_state.as_bytes())) {
        tracing::warn!("OpenID Connect answer for a sign-in this browser did not start");
        return refused(
            StatusCode::BAD_REQUEST,
            "this answer belongs to a sign-in started in another browser.",
        );
    }
    let key = returned_state.to_string();
    let taken = state
        .db
        .write(move |conn| login_attempt::take(conn, &key).map_err(crate::db::DbError::from))
        .await;
    let attempt = match taken {
        Ok(Some(a)) => a,
        Ok(None) => {
            tracing::warn!("OpenID Connect answer for an unknown or already used sign-in");
            return refused(StatusCode::BAD_REQUEST, "this sign-in was already used or has expired.");
        }
        Err(e) => return internal(&e),
    };
    if now_utc() - attempt.created_at > chrono::Duration::minutes(LOGIN_MINUTES) {
        return refused(StatusCode::BAD_REQUEST, "it took longer than ten minutes.");
    }
    if let Some(error) = &query.error {
        let detail: String = query
            .error_description
            .as_deref()
            .unwrap_or(error)
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        tracing::warn!(oidc.error = %error.chars().take(64).collect::<String>(), "the provider refused the sign-in");
        return refused(
            StatusCode::UNAUTHORIZED,
            &format!("the sign-in provider said \u{201c}{detail}\u{201d}."),
        );
    }
    let Some(code) = query.code.as_deref().filter(|c| !c.is_empty() && c.len() <= 2048) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "the answer from the sign-in provider has no code.",
        );
    };
    let pending = PendingLogin {
        state: attempt.state,
        nonce: attempt.nonce,
        code_verifier: attempt.code_verifier,
    };
    let identity = match client.finish(code, &pending).await {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(error.message = %e, "OpenID Connect sign-in refused");
            let status = match e {
                OidcError::DomainNotAllowed(_) | OidcError::GroupNotAllowed | OidcError::EmailNotVerified => {
                    StatusCode::FORBIDDEN
                }
                OidcError::Discovery(_) | OidcError::Jwks(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNAUTHORIZED,
            };
            return refused(status, &format!("{e}."));
        }
    };
    let actor = match crate::domain::parse_person(&identity.name, &identity.email) {
        Ok(a) => a,
        Err(_) => Actor {
            name: identity.email.clone(),
            email: identity.email.clone(),
        },
    };
    let role = crate::auth::role_for(&state.settings.auth, &actor.email, &identity.groups);
    let cookie = match start_session(state, &actor, role, AuthMode::Oidc).await {
        Ok(c) => c,
        Err(e) => return internal(&e),
    };
    tracing::info!(user.email = %actor.email, role = role.as_str(), "signed in with OpenID Connect");
    let mut resp = crate::web::see_other(&attempt.next_path);
    let _ = resp.add_cookie(&cookie);
    resp
}
