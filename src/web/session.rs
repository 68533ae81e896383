//! Who is asking, resolved once per request, and the one extractor handlers use to ask for a
//! permission.
//!
//! - People: a signed session cookie (a JWT made with jsonwebtoken, HS256) after OpenID Connect or
//!   development sign-in, or headers from a trusted authenticating proxy.
//! - Scripts: `Authorization: Bearer rbt_…` API tokens, on `/api/` only.
//!
//! The [`authenticate`] middleware resolves the [`Principal`] and refuses anonymous requests
//! before any handler runs (except the health checks, the sign-in routes and static files);
//! handlers then take [`Access<P>`], which refuses a principal lacking permission `P`.

use std::future::{Ready, ready};
use std::marker::PhantomData;

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, dev::Payload, web};
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::{Permission, Principal, Role, Via};
use crate::config::AuthMode;
use crate::domain::Actor;
use crate::state::AppState;
use crate::web::problem::problem;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "rb_session";
/// The pre-session CSRF cookie used by the development sign-in form.
pub const PRE_CSRF_COOKIE: &str = "rb_csrf";
const ISSUER: &str = "redbutton";

/// The key that signs and verifies sessions and derives proxy-mode CSRF tokens. Its bytes never
/// leave this type.
pub struct SessionKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
    csrf_key: [u8; 32],
    secure_cookies: bool,
    hours: u32,
}

impl SessionKey {
    /// A key from secret bytes.
    pub fn new(secret: &[u8], secure_cookies: bool, hours: u32) -> Self {
        let mut h = Sha256::new();
        h.update(b"redbutton csrf key\0");
        h.update(secret);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            csrf_key: h.finalize().into(),
            secure_cookies,
            hours,
        }
    }

    /// Whether cookies are marked `Secure` (the site is served over HTTPS).
    pub fn secure_cookies(&self) -> bool {
        self.secure_cookies
    }

    /// The CSRF token of a proxy-signed-in person: a MAC of their email, so it needs no storage
    /// and no cookie, and cannot be guessed without the key.
    fn proxy_csrf(&self, email: &str) -> String {
        use base64::Engine;
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.csrf_key) else {
            return String::new();
        };
        mac.update(email.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

/// What the session cookie holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    name: String,
    role: Role,
    /// The sign-in mode that made it: a development session is worthless once the server runs
    /// with real sign-in.
    mode: String,
    csrf: String,
    /// The session's row in `sessions`; signing out deletes it.
    sid: String,
    iat: i64,
    exp: i64,
}

/// A random URL-safe token (256 bits).
pub fn random_token() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Starts a session for a person who just signed in through `mode`: records their user row and
/// the session's row, and returns the cookie that carries it.
pub async fn start_session(
    state: &AppState,
    actor: &Actor,
    role: Role,
    mode: AuthMode,
) -> Result<Cookie<'static>, crate::services::ServiceError> {
    record_sign_in(state, actor, role).await?;
    let sid = random_token();
    let now = crate::domain::declaration::now_utc();
    let expires = now + chrono::Duration::hours(i64::from(state.session_key.hours));
    let (id, email) = (sid.clone(), actor.email.clone());
    state
        .db
        .write(move |conn| {
            crate::db::models::session::insert(conn, &id, &email, now, expires).map_err(crate::db::DbError::from)
        })
        .await?;
    session_cookie(&state.session_key, actor, role, mode, sid)
        .map_err(|e| crate::services::ServiceError::Conflict(format!("could not sign the session: {e}")))
}

/// Builds the session cookie for a person signed in through `mode`, naming session `sid`.
pub fn session_cookie(
    key: &SessionKey,
    actor: &Actor,
    role: Role,
    mode: AuthMode,
    sid: String,
) -> Result<Cookie<'static>, jsonwebtoken::errors::Error> {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        iss: ISSUER.into(),
        sub: actor.email.clone(),
        name: actor.name.clone(),
        role,
        mode: mode.as_str().into(),
        csrf: random_token(),
        sid,
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

/// Parses a signed-in person's form post and checks its CSRF token, or answers with the page
/// that says what is wrong (415/400/413 for a bad body, 403 for a bad token).
pub fn checked_form(
    req: &HttpRequest,
    body: &[u8],
    who: &Principal,
) -> Result<crate::web::form::FormData, Box<HttpResponse>> {
    let form = crate::web::form::FormData::parse(req, body)
        .map_err(|e| Box::new(crate::web::error_page(e.status, e.message)))?;
    check_csrf(who, req, form.get("csrf")).map_err(|e| Box::new(e.error_response()))?;
    Ok(form)
}

/// Checks a form's CSRF token in constant time, and that a browser-sent `Origin`, if any, is this
/// site. Token principals have no forms, so they never pass.
pub fn check_csrf(who: &Principal, req: &HttpRequest, token: &str) -> Result<(), CsrfError> {
    check_origin(req)?;
    let expected = who.csrf();
    if !expected.is_empty() && !token.is_empty() && bool::from(expected.as_bytes().ct_eq(token.as_bytes())) {
        Ok(())
    } else {
        Err(CsrfError)
    }
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
    fn status_code(&self) -> StatusCode {
        StatusCode::FORBIDDEN
    }

    fn error_response(&self) -> HttpResponse {
        crate::web::error_page(self.status_code(), &self.to_string())
    }
}

/// Whether a path belongs to the JSON API (tokens, problem+json errors).
pub fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// Paths anyone may open without signing in.
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/identify" | "/auth/login" | "/auth/callback" | "/signed-out"
    ) || path.starts_with("/static/")
        // Signed by Slack instead of a session (web::slack_commands checks it).
        || path == "/slack/commands"
}

/// How long a session found live in the database is believed without asking again.
pub const LIVE_SESSION_TTL: std::time::Duration = std::time::Duration::from_secs(5);

fn recently_live(state: &AppState, sid: &str) -> bool {
    let live = state
        .live_sessions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    live.get(sid).is_some_and(|t| t.elapsed() < LIVE_SESSION_TTL)
}

fn remember_live(state: &AppState, sid: &str) {
    let mut live = state
        .live_sessions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if live.len() > 10_000 {
        live.retain(|_, t| t.elapsed() < LIVE_SESSION_TTL);
    }
    live.insert(sid.to_string(), std::time::Instant::now());
}

/// Forgets that a session was live (it was just signed out here).
pub fn forget_live(state: &AppState, sid: &str) {
    let mut live = state
        .live_sessions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    live.remove(sid);
}

/// The person a request's session cookie names, if the cookie is valid, was made in the current
/// sign-in mode, and its session has not been signed out.
async fn from_session(state: &AppState, req: &HttpRequest) -> Option<Principal> {
    let claims = verify(&state.session_key, req.cookie(SESSION_COOKIE)?.value())?;
    if claims.mode != state.settings.auth.mode.as_str() {
        return None;
    }
    if !recently_live(state, &claims.sid) {
        let (sid, now) = (claims.sid.clone(), crate::domain::declaration::now_utc());
        match state
            .db
            .run(move |conn| crate::db::models::session::is_live(conn, &sid, now))
            .await
        {
            Ok(true) => remember_live(state, &claims.sid),
            Ok(false) => return None,
            Err(e) => {
                tracing::error!(error.message = %e, "could not check a session");
                return None;
            }
        }
    }
    Some(Principal {
        actor: Actor {
            name: claims.name,
            email: claims.sub,
        },
        role: claims.role,
        via: Via::Session {
            csrf: claims.csrf,
            sid: claims.sid,
        },
    })
}

/// The person a trusted proxy vouches for. Headers on a connection from any other address are
/// ignored, whatever they say.
fn from_proxy(state: &AppState, req: &HttpRequest) -> Option<Principal> {
    let proxy = state.settings.auth.proxy.as_ref()?;
    let peer = req.peer_addr()?.ip();
    if !state.trusted_proxies.iter().any(|net| net.contains(peer)) {
        return None;
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let email = header(&proxy.email_header)?.to_ascii_lowercase();
    let name = header(&proxy.name_header)
        .or_else(|| header(&proxy.user_header))
        .unwrap_or(&email)
        .to_string();
    let actor = crate::domain::parse_person(&name, &email).ok()?;
    let groups = header(&proxy.groups_header)
        .map(crate::auth::proxy::split_groups)
        .unwrap_or_default();
    let role = crate::auth::role_for(&state.settings.auth, &actor.email, &groups);
    let csrf = state.session_key.proxy_csrf(&actor.email);
    Some(Principal {
        actor,
        role,
        via: Via::Proxy { csrf },
    })
}

/// Why a presented API token was refused. The messages say what to do and never echo the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenRefusal {
    Malformed,
    Unknown,
    Revoked,
    Expired,
}

impl TokenRefusal {
    fn detail(self) -> &'static str {
        match self {
            TokenRefusal::Malformed => {
                "The Authorization header must be \u{201c}Bearer rbt_\u{2026}\u{201d} with an API token made on /admin/tokens."
            }
            TokenRefusal::Unknown => "This API token is not known. Check that it was copied whole.",
            TokenRefusal::Revoked => "This API token has been revoked. Ask an admin for a new one.",
            TokenRefusal::Expired => "This API token has expired. Ask an admin for a new one.",
        }
    }
}

/// The token in an `Authorization: Bearer` header, checked against its stored hash.
async fn from_token(state: &AppState, req: &HttpRequest) -> Option<Result<Principal, TokenRefusal>> {
    let value = req.headers().get(header::AUTHORIZATION)?;
    let Some(presented) = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
    else {
        return Some(Err(TokenRefusal::Malformed));
    };
    let Some((public_id, secret)) = crate::auth::tokens::split(presented) else {
        return Some(Err(TokenRefusal::Malformed));
    };
    let (public_id, secret) = (public_id.to_string(), secret.to_string());
    let now = crate::domain::declaration::now_utc();
    let found = state
        .db
        .run(move |conn| crate::db::models::api_token::find_by_public_id(conn, &public_id))
        .await;
    let row = match found {
        Ok(Some(row)) if crate::auth::tokens::matches(&secret, &row.secret_hash) => row,
        Ok(_) => return Some(Err(TokenRefusal::Unknown)),
        Err(e) => {
            tracing::error!(error.message = %e, "could not look up an API token");
            return Some(Err(TokenRefusal::Unknown));
        }
    };
    if row.revoked_at.is_some() {
        return Some(Err(TokenRefusal::Revoked));
    }
    if !row.is_active(now) {
        return Some(Err(TokenRefusal::Expired));
    }
    if row.last_used_at.is_none_or(|t| t < now - chrono::Duration::seconds(60)) {
        let id = row.id;
        let touched = state
            .db
            .write(move |conn| crate::db::models::api_token::touch(conn, id, now).map_err(crate::db::DbError::from))
            .await;
        if let Err(e) = touched {
            tracing::warn!(error.message = %e, "could not record an API token's use");
        }
    }
    let scopes = crate::auth::parse_scopes(&row.scopes).unwrap_or_default();
    Some(Ok(Principal {
        actor: Actor {
            name: format!("{} (API token)", row.name),
            email: row.created_by_email,
        },
        role: Role::Responder,
        via: Via::Token { id: row.id, scopes },
    }))
}

/// Where a page request without a session is sent to sign in, or the page that says how.
fn sign_in_response(state: &AppState, req: &HttpRequest) -> HttpResponse {
    let next = match (req.method() == actix_web::http::Method::GET, req.uri().path_and_query()) {
        (true, Some(p)) => p.as_str().to_string(),
        _ => "/".into(),
    };
    let next = percent_encoding::utf8_percent_encode(&next, percent_encoding::NON_ALPHANUMERIC);
    match state.settings.auth.mode {
        AuthMode::Dev => see_other_to(&format!("/identify?next={next}")),
        AuthMode::Oidc if req.method() == actix_web::http::Method::GET => {
            see_other_to(&format!("/auth/login?next={next}"))
        }
        AuthMode::Oidc => crate::web::error_page(
            StatusCode::UNAUTHORIZED,
            "Your session has ended, so nothing was saved. Sign in again, then send it once more.",
        ),
        AuthMode::Proxy => crate::web::error_page(
            StatusCode::UNAUTHORIZED,
            "This server signs people in through your company's sign-in proxy, and this request did not come \
             through it. Open the tool at its usual address.",
        ),
    }
}

fn see_other_to(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// Resolves who is asking. `Err` carries the refusal to send.
async fn resolve(state: &AppState, req: &HttpRequest) -> Result<Option<Principal>, HttpResponse> {
    if is_api(req.path()) || req.path() == crate::web::pages::metrics::PATH {
        // Scripts present tokens; browser sessions are not accepted here, so a page cannot be
        // tricked into calling the API with someone's cookie.
        return match from_token(state, req).await {
            None => Ok(None),
            Some(Ok(p)) => Ok(Some(p)),
            Some(Err(refusal)) => Err(problem(StatusCode::UNAUTHORIZED, refusal.detail())),
        };
    }
    Ok(match state.settings.auth.mode {
        AuthMode::Proxy => {
            let p = from_proxy(state, req);
            if let Some(p) = &p {
                remember_proxy_user(state, p).await;
            }
            p
        }
        AuthMode::Dev | AuthMode::Oidc => from_session(state, req).await,
    })
}

/// Records a proxy-signed-in person in the users table (at most every five minutes per process,
/// so page views do not each write).
async fn remember_proxy_user(state: &AppState, p: &Principal) {
    let now = std::time::Instant::now();
    {
        let mut seen = state
            .seen_users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen
            .get(&p.actor.email)
            .is_some_and(|t| now.duration_since(*t) < std::time::Duration::from_secs(300))
        {
            return;
        }
        if seen.len() > 10_000 {
            seen.clear();
        }
        seen.insert(p.actor.email.clone(), now);
    }
    if let Err(e) = record_sign_in(state, &p.actor, p.role).await {
        tracing::warn!(error.message = %e, "could not record a signed-in person");
    }
}

/// Creates or refreshes the person's user row.
pub async fn record_sign_in(state: &AppState, actor: &Actor, role: Role) -> Result<(), crate::db::DbError> {
    let (email, name) = (actor.email.clone(), actor.name.clone());
    let now = crate::domain::declaration::now_utc();
    state
        .db
        .write(move |conn| {
            crate::db::models::user::upsert(conn, &email, &name, role.as_str(), now)
                .map(|_| ())
                .map_err(crate::db::DbError::from)
        })
        .await
}

/// Middleware: resolves the principal once (kept in the request's extensions for [`Access`]) and
/// refuses anonymous requests to anything but the public paths: pages send people to sign in,
/// the API answers 401 with a problem document.
pub async fn authenticate(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<actix_web::body::BoxBody>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await;
    };
    match resolve(&state, req.request()).await {
        Ok(Some(principal)) => {
            req.extensions_mut().insert(principal);
            next.call(req).await
        }
        // `/metrics` decides itself: scrapers on an allowed network need no token.
        Ok(None) if is_public(req.path()) || req.path() == crate::web::pages::metrics::PATH => next.call(req).await,
        Ok(None) if is_api(req.path()) => {
            let response = problem(
                StatusCode::UNAUTHORIZED,
                "This API needs an API token: send \u{201c}Authorization: Bearer rbt_\u{2026}\u{201d}. Admins make \
                 tokens on /admin/tokens.",
            );
            Ok(req.into_response(response))
        }
        Ok(None) => {
            let response = sign_in_response(&state, req.request());
            Ok(req.into_response(response))
        }
        Err(response) => Ok(req.into_response(response)),
    }
}

/// The one handler-level check: the signed-in principal, holding permission `P`
/// (`Access<Read>`, `Access<Declare>`, `Access<Work>`, `Access<Administer>`).
pub struct Access<P> {
    /// Who is asking.
    pub principal: Principal,
    _need: PhantomData<P>,
}

impl<P> Clone for Access<P> {
    fn clone(&self) -> Self {
        Self {
            principal: self.principal.clone(),
            _need: PhantomData,
        }
    }
}

impl<P> std::ops::Deref for Access<P> {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}

/// Refused by [`Access`]: not signed in (401) or not allowed (403), answered as a page or, on the
/// API, as a problem document.
#[derive(Debug)]
pub struct Refused {
    status: StatusCode,
    detail: String,
    api: bool,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

impl ResponseError for Refused {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if self.api {
            problem(self.status, self.detail.clone())
        } else {
            crate::web::error_page(self.status, &self.detail)
        }
    }
}

/// Why a principal may not do what `need` asks, in words.
fn refusal_detail(p: &Principal, need: crate::auth::Need) -> String {
    match &p.via {
        Via::Token { .. } => match need.scope {
            Some(scope) => format!(
                "This API token may not {}: it needs the \u{201c}{}\u{201d} scope.",
                need.doing,
                scope.as_str()
            ),
            None => format!("API tokens may not {}; sign in as an admin.", need.doing),
        },
        _ => {
            let who = match p.role {
                Role::Viewer => "a viewer (read-only)",
                Role::Responder => "a responder",
                Role::Admin => "an admin",
            };
            let allowed = match need.role {
                Role::Viewer => "everyone signed in",
                Role::Responder => "responders and admins",
                Role::Admin => "admins",
            };
            format!(
                "You are signed in as {who}, and only {allowed} may {}. Ask an admin if you need to.",
                need.doing
            )
        }
    }
}

impl<P: Permission> FromRequest for Access<P> {
    type Error = Refused;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let api = is_api(req.path());
        let principal = req.extensions().get::<Principal>().cloned();
        ready(match principal {
            // A principal of the wrong kind for the route (a token on a page) counts as no one.
            Some(p) if api != matches!(p.via, Via::Token { .. }) => Err(Refused {
                status: StatusCode::UNAUTHORIZED,
                detail: "Sign in first.".into(),
                api,
            }),
            Some(p) if p.holds(P::NEED) => Ok(Access {
                principal: p,
                _need: PhantomData,
            }),
            Some(p) => Err(Refused {
                status: StatusCode::FORBIDDEN,
                detail: refusal_detail(&p, P::NEED),
                api,
            }),
            None => Err(Refused {
                status: StatusCode::UNAUTHORIZED,
                detail: "Sign in first.".into(),
                api,
            }),
        })
    }
}

/// Only same-site paths are accepted as a post-sign-in destination.
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
        let cookie = session_cookie(&key, &actor, Role::Responder, AuthMode::Dev, "sid".into()).unwrap();
        let claims = verify(&key, cookie.value()).unwrap();
        assert_eq!(claims.sub, "ada@example.com");
        assert_eq!(claims.role, Role::Responder);
        assert!(verify(&other, cookie.value()).is_none(), "forged key");
        let mut tampered = cookie.value().to_string();
        tampered.pop();
        assert!(verify(&key, &tampered).is_none(), "tampered signature");

        let old = Claims {
            iss: ISSUER.into(),
            sub: "x@y.z".into(),
            name: "x".into(),
            role: Role::Admin,
            mode: "dev".into(),
            csrf: "c".into(),
            sid: "s".into(),
            iat: 0,
            exp: 1000,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &old, &key.encoding).unwrap();
        assert!(verify(&key, &token).is_none(), "expired");
    }

    #[test]
    fn proxy_csrf_tokens_differ_per_person_and_key() {
        let key = SessionKey::new(b"0123456789abcdef0123456789abcdef", false, 1);
        let other = SessionKey::new(b"ffffffffffffffffffffffffffffffff", false, 1);
        let a = key.proxy_csrf("a@example.com");
        assert_eq!(a, key.proxy_csrf("a@example.com"));
        assert_ne!(a, key.proxy_csrf("b@example.com"));
        assert_ne!(a, other.proxy_csrf("a@example.com"));
        assert!(a.len() >= 40);
    }

    #[test]
    fn next_must_stay_on_site() {
        assert_eq!(safe_next("/incidents/4"), "/incidents/4");
        assert_eq!(safe_next("//evil.example"), "/");
        assert_eq!(safe_next("https://evil.example"), "/");
        assert_eq!(safe_next("/\\evil"), "/");
    }
}
