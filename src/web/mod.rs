//! The web layer: routes, pages, forms and the small helpers they share. Handlers are thin: they
//! parse the request, call a use case in `services`, and render a page or redirect.

pub mod charts;
pub mod form;
pub mod limits;
pub mod markdown;
pub mod pages;
pub mod problem;
pub mod session;
pub mod slack_commands;
pub mod view;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use askama::Template;

/// Every route, in one place.
pub fn configure(cfg: &mut web::ServiceConfig) {
    crate::api::configure(cfg);
    cfg.route("/healthz", web::get().to(pages::health::healthz))
        .route("/readyz", web::get().to(pages::health::readyz))
        .route("/metrics", web::get().to(pages::metrics::show))
        .route("/static/{file}", web::get().to(pages::assets::serve))
        .route("/identify", web::get().to(pages::identify::show))
        .route("/identify", web::post().to(pages::identify::submit))
        .route("/auth/login", web::get().to(pages::signin::login))
        .route("/auth/callback", web::get().to(pages::signin::callback))
        .route("/signout", web::post().to(pages::identify::sign_out))
        .route("/signed-out", web::get().to(pages::identify::signed_out))
        .route("/admin/tokens", web::get().to(pages::admin::show))
        .route("/admin/tokens", web::post().to(pages::admin::create))
        .route("/admin/tokens/{id}/revoke", web::post().to(pages::admin::revoke))
        .route("/me", web::get().to(pages::me::show))
        .route("/me/time-zone", web::post().to(pages::me::time_zone))
        .route("/", web::get().to(pages::dashboard::show))
        .route("/declare", web::get().to(pages::declare::show))
        .route("/declare", web::post().to(pages::declare::submit))
        .route("/drills", web::post().to(pages::drills::start))
        .route("/incidents/{number}", web::get().to(pages::incident::show))
        .route("/incidents/{number}/postmortem", web::get().to(pages::postmortem::show))
        .route(
            "/incidents/{number}/postmortem.md",
            web::get().to(pages::postmortem::download),
        )
        .route("/incidents/{number}/status", web::post().to(pages::incident::status))
        .route("/incidents/{number}/decline", web::post().to(pages::incident::decline))
        .route("/incidents/{number}/merge", web::post().to(pages::incident::merge))
        .route(
            "/incidents/{number}/severity",
            web::post().to(pages::incident::severity),
        )
        .route("/incidents/{number}/lead", web::post().to(pages::incident::lead))
        .route("/incidents/{number}/roles/{role}", web::post().to(pages::roles::change))
        .route("/incidents/{number}/notes", web::post().to(pages::incident::note))
        .route("/incidents/{number}/updates", web::post().to(pages::incident::update))
        .route(
            "/incidents/{number}/key-times",
            web::post().to(pages::incident::key_times),
        )
        .route("/incidents/{number}/follow-ups", web::post().to(pages::follow_ups::add))
        .route(
            "/incidents/{number}/follow-ups/{id}",
            web::post().to(pages::follow_ups::edit),
        )
        .route(
            "/incidents/{number}/follow-ups/{id}/status",
            web::post().to(pages::follow_ups::status),
        )
        .route(
            "/incidents/{number}/deliveries/{id}/retry",
            web::post().to(pages::incident::retry),
        )
        .route("/slack/commands", web::post().to(slack_commands::receive))
        .route("/insights", web::get().to(pages::insights::show))
        .route("/insights/incidents.csv", web::get().to(pages::insights::csv));
}

/// The error page.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

/// Renders the HTML error page with a status.
pub fn error_page(status: StatusCode, message: &str) -> HttpResponse {
    let title = status.canonical_reason().unwrap_or("Error");
    match (ErrorPage { title, message }).render() {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body),
        Err(_) => HttpResponse::build(status)
            .content_type("text/plain; charset=utf-8")
            .body(message.to_string()),
    }
}

/// The largest form body read, in bytes; anything longer gets [`too_large`]'s page.
pub const BODY_LIMIT: usize = 512 * 1024;

/// Replaces actix's plain-text 413 (a body over [`BODY_LIMIT`]) with the app's error page, or on
/// the API with a problem document.
pub fn too_large<B>(
    res: actix_web::dev::ServiceResponse<B>,
) -> actix_web::Result<actix_web::middleware::ErrorHandlerResponse<B>> {
    let (req, _) = res.into_parts();
    if session::is_api(req.path()) {
        let problem = problem::problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "The body is over the size limit ({} KiB), so it was not read.",
                BODY_LIMIT / 1024
            ),
        );
        return Ok(actix_web::middleware::ErrorHandlerResponse::Response(
            actix_web::dev::ServiceResponse::new(req, problem).map_into_right_body(),
        ));
    }
    let page = error_page(
        StatusCode::PAYLOAD_TOO_LARGE,
        "This request is over the size limit (512 KiB), so it was not read and nothing was saved. \
         Shorten the text and send it again.",
    );
    Ok(actix_web::middleware::ErrorHandlerResponse::Response(
        actix_web::dev::ServiceResponse::new(req, page).map_into_right_body(),
    ))
}

/// The app's error page for a query string the page cannot read (a filter given twice, say),
/// instead of actix's plain text.
pub fn bad_query(err: actix_web::error::QueryPayloadError, _req: &actix_web::HttpRequest) -> actix_web::Error {
    let page = error_page(
        StatusCode::BAD_REQUEST,
        &format!("The filters in this address cannot be read ({err}). Remove the odd one and try again."),
    );
    actix_web::error::InternalError::from_response(err, page).into()
}

/// Renders a page with a status.
pub fn render<T: Template>(status: StatusCode, page: &T) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(body),
        Err(e) => {
            tracing::error!(error.message = %e, "template failed");
            error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong while drawing this page.",
            )
        }
    }
}

/// A 303 redirect (after a successful form post).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_string()))
        .finish()
}

/// Maps a failure that is not the user's to a page, logging the cause. A database locked by
/// another writer past every retry is a 503 ("press again"); anything else is an opaque 500.
pub fn internal(e: &(dyn std::error::Error + 'static)) -> HttpResponse {
    let mut chain = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    tracing::error!(error.cause_chain = %chain, "request failed");
    if let Some(crate::services::ServiceError::Db(crate::db::DbError::Busy)) =
        e.downcast_ref::<crate::services::ServiceError>()
    {
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The database is busy right now and nothing was saved. Press the button again in a moment.",
        );
    }
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong and nothing was saved. Please try again.",
    )
}
