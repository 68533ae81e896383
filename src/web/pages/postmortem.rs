//! `/incidents/{number}/postmortem`: the postmortem draft, made again from the record on every
//! request, shown as a page (rendered and raw) or downloaded as a Markdown file.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::auth::Read;
use crate::domain::IncidentNumber;
use crate::domain::declaration::now_utc;
use crate::services::queries::{IncidentDetail, incident_detail};
use crate::services::{ServiceError, postmortem};
use crate::state::AppState;
use crate::web::pages::Me;
use crate::web::session::Access;
use crate::web::view::{self, Tz};
use crate::web::{error_page, internal, markdown, render};

/// The query string: `?tz=Europe/Paris`.
#[derive(Debug, serde::Deserialize)]
pub struct PostmortemQuery {
    /// An IANA time zone name; absent or empty means the viewer's own.
    pub tz: Option<String>,
}

/// The draft page.
#[derive(Template)]
#[template(path = "postmortem.html")]
pub struct PostmortemPage {
    me: Option<Me>,
    number: i64,
    title: String,
    /// Every IANA zone this build knows, as (name, selected).
    zones: Vec<(&'static str, bool)>,
    /// The `.md` address for the zone shown.
    download: String,
    html: String,
    markdown: String,
}

/// Reads a zone name asked for, or says why it cannot.
pub fn parse_zone(raw: &str) -> Result<Tz, String> {
    raw.trim().parse::<Tz>().map_err(|_| {
        format!(
            "\u{201c}{}\u{201d} is not a time zone this server knows. Use an IANA name such as Europe/Paris or UTC.",
            raw.chars().filter(|c| !c.is_control()).take(64).collect::<String>()
        )
    })
}

/// The incident and the zone to show it in, or the error page to answer with.
async fn load(
    user: &Access<Read>,
    state: &AppState,
    raw: &str,
    query: &PostmortemQuery,
) -> Result<(IncidentDetail, Tz), HttpResponse> {
    let Some(number) = IncidentNumber::parse(raw).map(|n| n.0) else {
        return Err(error_page(StatusCode::NOT_FOUND, "There is no such incident."));
    };
    let asked = match query.tz.as_deref().filter(|z| !z.trim().is_empty()) {
        Some(z) => Some(parse_zone(z).map_err(|m| error_page(StatusCode::BAD_REQUEST, &m))?),
        None => None,
    };
    let d = match incident_detail(state, number, Some(user.actor.email.clone())).await {
        Ok(d) => d,
        Err(ServiceError::NotFound) => {
            return Err(error_page(
                StatusCode::NOT_FOUND,
                &format!("There is no incident INC-{number}."),
            ));
        }
        Err(e) => return Err(internal(&e)),
    };
    let tz = asked.unwrap_or_else(|| view::zone(d.viewer_time_zone.as_deref()));
    Ok((d, tz))
}

/// `GET /incidents/{number}/postmortem`
pub async fn show(
    user: Access<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<PostmortemQuery>,
) -> HttpResponse {
    let (d, tz) = match load(&user, &state, &path, &query).await {
        Ok(x) => x,
        Err(response) => return response,
    };
    let md = postmortem::render(&d, tz, &state.settings, now_utc());
    let page = PostmortemPage {
        me: Some(Me::new(&user, state.settings.auth.mode)),
        number: d.row.number,
        title: d.row.title.clone(),
        zones: chrono_tz::TZ_VARIANTS.iter().map(|z| (z.name(), *z == tz)).collect(),
        download: format!(
            "/incidents/{}/postmortem.md?tz={}",
            d.row.number,
            percent_encoding::utf8_percent_encode(tz.name(), percent_encoding::NON_ALPHANUMERIC)
        ),
        html: markdown::render(&md),
        markdown: md,
    };
    render(StatusCode::OK, &page)
}

/// `GET /incidents/{number}/postmortem.md`: the same draft as a file.
pub async fn download(
    user: Access<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<PostmortemQuery>,
) -> HttpResponse {
    let (d, tz) = match load(&user, &state, &path, &query).await {
        Ok(x) => x,
        Err(response) => return response,
    };
    let md = postmortem::render(&d, tz, &state.settings, now_utc());
    markdown_file(d.row.number, md)
}

/// A Markdown answer offered as `INC-<n>-postmortem.md`.
pub fn markdown_file(number: i64, md: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/markdown; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"INC-{number}-postmortem.md\""),
        ))
        .body(md)
}
