//! Who is asking: a signed session cookie (a JWT made with jsonwebtoken) carrying the person's
//! name, email and the CSRF token every form must echo.
//!
//! Until OpenID Connect sign-in lands, people name themselves once on `/identify` (dev mode),
//! which the server only allows on a loopback address.

use std::future::{Ready, ready};

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, dev::Payload, web};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::domain::Actor;
use crate::state::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "rb_session";
/// The pre-session CSRF cookie used by the identify form.
pub const PRE_CSRF_COOKIE: &str = "rb_csrf";
const ISSUER: &str = "redbutton";

/// The key that signs and verifies sessions. Its bytes never leave this type.
pub struct SessionKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
    secure_cookies: bool,
    hours: u32,
}

impl SessionKey {
    /// A key from secret bytes.
    pub fn new(secret: &[u8], secure_cookies: bool, hours: u32) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            secure_cookies,
            hours,
        }
    }
}

/// What the session cookie holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    name: String,
    csrf: String,
    iat: i64,
    exp: i64,
}

/// A random URL-safe token.
pub fn random_token() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Builds the session cookie for a person.
pub fn session_cookie(key: &SessionKey, actor: &Actor) -> Result<Cookie<'static>, jsonwebtoken::errors::Error> {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        iss: ISSUER.into(),
        sub: actor.email.clone(),
        name: actor.name.clone(),
        csrf: random_token(),
        iat: now,
        exp: now + i64::from(key.hours) * 3600,
    };
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key.encoding)?;
    Ok(Cookie::build(SESSION_COOKIE, token)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(key.secure_cookies)
        .max_age(CookieDuration::hours(i64::from(key.hours)))
        .finish())
}

/// A cookie that removes the session.
pub fn clear_session_cookie() -> Cookie<'static> {
    let mut c = Cookie::build(SESSION_COOKIE, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .finish();
    c.make_removal();
    c
}

fn verify(key: &SessionKey, token: &str) -> Option<Claims> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    validation.leeway = 30;
    jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
        .ok()
        .map(|d| d.claims)
}

/// The signed-in person, required by every page except health checks and `/identify`.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// Who they are.
    pub actor: Actor,
    /// The CSRF token their forms must carry.
    pub csrf: String,
}

impl CurrentUser {
    /// Checks a form's CSRF token in constant time, and that a browser-sent `Origin`, if any,
    /// is this site.
    pub fn check_csrf(&self, req: &HttpRequest, token: &str) -> Result<(), CsrfError> {
        check_origin(req)?;
        if bool::from(self.csrf.as_bytes().ct_eq(token.as_bytes())) && !token.is_empty() {
            Ok(())
        } else {
            Err(CsrfError)
        }
    }
}

/// Parses a signed-in person's form post and checks its CSRF token, or answers with the page
/// that says what is wrong (415/400/413 for a bad body, 403 for a bad token).
pub fn checked_form(
    req: &HttpRequest,
    body: &[u8],
    user: &CurrentUser,
) -> Result<crate::web::form::FormData, Box<HttpResponse>> {
    let form = crate::web::form::FormData::parse(req, body)
        .map_err(|e| Box::new(crate::web::error_page(e.status, e.message)))?;
    user.check_csrf(req, form.get("csrf"))
        .map_err(|e| Box::new(e.error_response()))?;
    Ok(form)
}

/// Refuses a cross-site form post: an `Origin` header naming another host.
pub fn check_origin(req: &HttpRequest) -> Result<(), CsrfError> {
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = req.connection_info().host().to_string();
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
    if origin_host == host { Ok(()) } else { Err(CsrfError) }
}

/// A form post without a valid CSRF token.
#[derive(Debug, thiserror::Error)]
#[error("This form has expired or did not come from this site. Go back, reload the page and try again.")]
pub struct CsrfError;

impl ResponseError for CsrfError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::FORBIDDEN
    }

    fn error_response(&self) -> HttpResponse {
        crate::web::error_page(self.status_code(), &self.to_string())
    }
}

/// Not identified: send the browser to `/identify`, then back.
#[derive(Debug, thiserror::Error)]
#[error("Tell us who you are first.")]
pub struct NotIdentified {
    next: String,
}

impl ResponseError for NotIdentified {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::SEE_OTHER
    }

    fn error_response(&self) -> HttpResponse {
        let target = format!(
            "/identify?next={}",
            percent_encoding::utf8_percent_encode(&self.next, percent_encoding::NON_ALPHANUMERIC)
        );
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, target))
            .finish()
    }
}

/// The person a request's session cookie names, if the cookie is valid.
fn identify(req: &HttpRequest) -> Option<CurrentUser> {
    let state = req.app_data::<web::Data<AppState>>()?;
    let claims = verify(&state.session_key, req.cookie(SESSION_COOKIE)?.value())?;
    Some(CurrentUser {
        actor: Actor {
            name: claims.name,
            email: claims.sub,
        },
        csrf: claims.csrf,
    })
}

/// Where to come back to after identifying: the page asked for (GET only) or the dashboard.
fn come_back_to(req: &HttpRequest) -> NotIdentified {
    let next = match (req.method() == actix_web::http::Method::GET, req.uri().path_and_query()) {
        (true, Some(p)) => p.as_str().to_string(),
        _ => "/".into(),
    };
    NotIdentified { next }
}

impl FromRequest for CurrentUser {
    type Error = NotIdentified;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(identify(req).ok_or_else(|| come_back_to(req)))
    }
}

/// Paths anyone may open without naming themselves.
fn is_public(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/identify") || path.starts_with("/static/")
}

/// Middleware: sends anyone without a valid session to `/identify` (then back), before any
/// handler runs. It answers with a plain redirect rather than an error, so unauthenticated
/// visits are not logged as failures.
pub async fn require_identity(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<actix_web::body::BoxBody>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    if is_public(req.path()) || identify(req.request()).is_some() {
        return next.call(req).await;
    }
    let response = come_back_to(req.request()).error_response();
    Ok(req.into_response(response))
}

/// Only same-site paths are accepted as a post-identify destination.
pub fn safe_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') && !next.chars().any(char::is_control) {
        next.to_string()
    } else {
        "/".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_verifies_only_with_its_key_and_before_expiry() {
        let key = SessionKey::new(b"0123456789abcdef0123456789abcdef", false, 1);
        let other = SessionKey::new(b"ffffffffffffffffffffffffffffffff", false, 1);
        let actor = Actor {
            name: "Ada".into(),
            email: "ada@example.com".into(),
        };
        let cookie = session_cookie(&key, &actor).unwrap();
        let claims = verify(&key, cookie.value()).unwrap();
        assert_eq!(claims.sub, "ada@example.com");
        assert!(verify(&other, cookie.value()).is_none(), "forged key");
        let mut tampered = cookie.value().to_string();
        tampered.pop();
        assert!(verify(&key, &tampered).is_none(), "tampered signature");

        let old = Claims {
            iss: ISSUER.into(),
            sub: "x@y.z".into(),
            name: "x".into(),
            csrf: "c".into(),
            iat: 0,
            exp: 1000,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &old, &key.encoding).unwrap();
        assert!(verify(&key, &token).is_none(), "expired");
    }

    #[test]
    fn next_must_stay_on_site() {
        assert_eq!(safe_next("/incidents/4"), "/incidents/4");
        assert_eq!(safe_next("//evil.example"), "/");
        assert_eq!(safe_next("https://evil.example"), "/");
        assert_eq!(safe_next("/\\evil"), "/");
    }
}
