//! `/me`: a person's own settings. For now, the time zone pages show times in.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::auth::{Principal, Read};
use crate::domain::declaration::now_utc;
use crate::services::{ServiceError, queries};
use crate::state::AppState;
use crate::web::pages::Me;
use crate::web::session::{Access, checked_form};
use crate::web::{internal, render, see_other, view};

/// The settings page.
#[derive(Template)]
#[template(path = "me.html")]
pub struct MePage {
    me: Option<Me>,
    csrf: String,
    /// Every IANA zone this build knows, as (name, selected).
    zones: Vec<(&'static str, bool)>,
    /// The chosen zone's name.
    current: String,
    /// The time now in the chosen zone, as an example.
    now: view::Shown,
    saved: bool,
    error: Option<String>,
}

fn page(state: &AppState, who: &Principal, zone: Option<String>, saved: bool, error: Option<String>) -> MePage {
    let tz = view::zone(zone.as_deref());
    MePage {
        me: Some(Me::new(who, state.settings.auth.mode)),
        csrf: who.csrf().to_string(),
        zones: chrono_tz::TZ_VARIANTS.iter().map(|z| (z.name(), *z == tz)).collect(),
        current: tz.name().to_string(),
        now: view::shown(&now_utc(), tz),
        saved,
        error,
    }
}

/// `GET /me`
pub async fn show(user: Access<Read>, state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let saved = req.query_string() == "saved=1";
    match queries::time_zone_of(&state, &user.actor.email).await {
        Ok(zone) => render(StatusCode::OK, &page(&state, &user, zone, saved, None)),
        Err(e) => internal(&e),
    }
}

/// `POST /me/time-zone`: anyone signed in (viewers too) chooses how times are shown to them.
pub async fn time_zone(
    req: HttpRequest,
    body: web::Bytes,
    user: Access<Read>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form = match checked_form(&req, &body, &user) {
        Ok(f) => f,
        Err(response) => return *response,
    };
    match queries::set_time_zone(&state, &user, form.get("time_zone")).await {
        Ok(()) => see_other("/me?saved=1"),
        Err(ServiceError::Invalid(errors)) => {
            let message = errors.into_iter().map(|e| e.message).collect::<Vec<_>>().join(" ");
            match queries::time_zone_of(&state, &user.actor.email).await {
                Ok(zone) => render(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &page(&state, &user, zone, false, Some(message)),
                ),
                Err(e) => internal(&e),
            }
        }
        Err(e) => internal(&e),
    }
}
