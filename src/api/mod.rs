//! The JSON API, version 1, under `/api/v1`, for scripts holding an API token.
//!
//! Handlers are as thin as the page handlers: they read JSON, ask for a permission through
//! `web::session::Access` (the only permission check), call the same use cases in `services` as
//! the pages do, and answer JSON. Every error is an `application/problem+json` document
//! (RFC 9457), from malformed bodies and unknown paths to database failures. The OpenAPI 3.1
//! document (`GET /api/v1/openapi.json`) is generated from these handlers and types.

pub mod alertmanager;
pub mod follow_ups;
pub mod incidents;
pub mod openapi;
pub mod roles;
pub mod types;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use crate::services::ServiceError;
use crate::web::problem::{FieldProblem, Problem};

/// The largest JSON body read, in bytes (the same limit as forms).
pub const JSON_LIMIT: usize = crate::web::BODY_LIMIT;

/// The API's routes: `/api/v1/…`, and problem documents for every other `/api` path.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api")
            .app_data(web::JsonConfig::default().limit(JSON_LIMIT).error_handler(json_error))
            .app_data(web::QueryConfig::default().error_handler(query_error))
            .app_data(web::PathConfig::default().error_handler(path_error))
            .service(
                web::scope("/v1")
                    .service(
                        web::resource("/incidents")
                            .route(web::get().to(incidents::list))
                            .route(web::post().to(incidents::declare))
                            .default_service(web::to(|| not_allowed("GET, POST"))),
                    )
                    .service(
                        web::resource("/incidents/{number}")
                            .route(web::get().to(incidents::show))
                            .default_service(web::to(|| not_allowed("GET"))),
                    )
                    .service(
                        web::resource("/incidents/{number}/postmortem")
                            .route(web::get().to(incidents::postmortem))
                            .default_service(web::to(|| not_allowed("GET"))),
                    )
                    .service(
                        web::resource("/incidents/{number}/status")
                            .route(web::post().to(incidents::status))
                            .default_service(web::to(|| not_allowed("POST"))),
                    )
                    .service(
                        web::resource("/incidents/{number}/severity")
                            .route(web::post().to(incidents::severity))
                            .default_service(web::to(|| not_allowed("POST"))),
                    )
                    .service(
                        web::resource("/incidents/{number}/lead")
                            .route(web::post().to(incidents::lead))
                            .default_service(web::to(|| not_allowed("POST"))),
                    )
                    .service(
                        web::resource("/incidents/{number}/roles/{role}")
                            .route(web::post().to(roles::change))
                            .default_service(web::to(|| not_allowed("POST"))),
                    )
                    .service(
                        web::resource("/incidents/{number}/notes")
                            .route(web::post().to(incidents::note))
                            .default_service(web::to(|| not_allowed("POST"))),
                    )
                    .service(
                        web::resource("/incidents/{number}/updates")
                            .route(web::post().to(incidents::update))
                            .default_service(web::to(|| not_allowed("POST"))),
                    )
                    .service(
                        web::resource("/incidents/{number}/key-times")
                            .route(web::post().to(incidents::key_times))
                            .default_service(web::to(|| not_allowed("POST"))),
                    )
                    .service(
                        web::resource("/incidents/{number}/follow-ups")
                            .route(web::get().to(follow_ups::list))
                            .route(web::post().to(follow_ups::add))
                            .default_service(web::to(|| not_allowed("GET, POST"))),
                    )
                    .service(
                        web::resource("/alertmanager")
                            .route(web::post().to(alertmanager::receive_webhook))
                            .default_service(web::to(|| not_allowed("POST"))),
                    )
                    .service(
                        web::resource("/openapi.json")
                            .route(web::get().to(openapi::serve))
                            .default_service(web::to(|| not_allowed("GET"))),
                    )
                    .default_service(web::to(not_found)),
            )
            .default_service(web::to(not_found)),
    );
}

/// 404 for any `/api` path that names nothing.
async fn not_found() -> HttpResponse {
    crate::web::problem::problem(
        StatusCode::NOT_FOUND,
        "There is nothing at this address. The API lives under /api/v1; its description is at \
         /api/v1/openapi.json.",
    )
}

/// 405 with the methods the resource does take.
async fn not_allowed(allow: &'static str) -> HttpResponse {
    let mut response = crate::web::problem::problem(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("This address does not take that method; it takes {allow}."),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    response
}

/// A failed API request, answered as a problem document.
#[derive(Debug)]
pub struct ApiError(pub Problem, Option<u64>);

impl ApiError {
    /// A problem with a status and detail.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self(Problem::new(status, detail), None)
    }

    /// 400: a request the server cannot read.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 404 for an incident number.
    pub fn no_incident(number: i64) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("There is no incident INC-{number}."))
    }

    /// 422 with one problem per field.
    pub fn invalid(errors: Vec<FieldProblem>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join(" ");
        let mut p = Problem::new(StatusCode::UNPROCESSABLE_ENTITY, detail);
        p.errors = errors;
        Self(p, None)
    }

    /// Maps a use case's refusal or failure. Failures that are not the caller's are logged with
    /// their cause and answered without it.
    pub fn from_service(e: ServiceError, number: Option<i64>) -> Self {
        match e {
            ServiceError::Invalid(errors) => Self::invalid(
                errors
                    .into_iter()
                    .map(|f| FieldProblem {
                        field: api_field(f.field).into(),
                        message: f.message,
                    })
                    .collect(),
            ),
            ServiceError::NotFound => match number {
                Some(n) => Self::no_incident(n),
                None => Self::new(StatusCode::NOT_FOUND, "There is no such thing."),
            },
            ServiceError::Conflict(message) => Self::new(StatusCode::CONFLICT, message),
            ServiceError::Db(crate::db::DbError::Busy) => {
                tracing::warn!("API request refused: the database is busy");
                Self(
                    Problem::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "The database is busy right now and nothing was saved. Try again in a moment.",
                    ),
                    Some(2),
                )
            }
            other => {
                let mut chain = other.to_string();
                let mut source = std::error::Error::source(&other);
                while let Some(s) = source {
                    chain.push_str(": ");
                    chain.push_str(&s.to_string());
                    source = s.source();
                }
                tracing::error!(error.cause_chain = %chain, "API request failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong on the server and nothing was saved. Try again; if it keeps happening, \
                     tell whoever runs this server.",
                )
            }
        }
    }
}

/// The API's name for a field the use cases name after the form's.
fn api_field(form_field: &str) -> &str {
    match form_field {
        "impact_started" => "impact_started_at",
        "detected" => "detected_at",
        "declared" => "declared_at",
        "mustered" => "mustered_at",
        "mitigated" => "mitigated_at",
        "resolved" => "resolved_at",
        "note" => "body",
        other => other,
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = self.0.response();
        if let Some(secs) = self.1
            && let Ok(v) = header::HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

/// Cuts a parser's message to one readable line.
fn readable(message: &str) -> String {
    let one_line: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    one_line.trim().to_string()
}

/// Malformed JSON, a wrong content type, unknown fields, a body over the limit.
fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let api = match &err {
        JsonPayloadError::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Send the body as JSON, with \u{201c}Content-Type: application/json\u{201d}.",
        ),
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "The body is over the size limit ({} KiB), so it was not read.",
                JSON_LIMIT / 1024
            ),
        ),
        JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::bad_request(format!(
            "The JSON does not fit this request: {}.",
            readable(&e.to_string())
        )),
        JsonPayloadError::Deserialize(e) => {
            ApiError::bad_request(format!("The body is not valid JSON: {}.", readable(&e.to_string())))
        }
        other => ApiError::bad_request(format!("The body could not be read: {}.", readable(&other.to_string()))),
    };
    actix_web::error::InternalError::from_response(err, api.error_response()).into()
}

/// A query string that does not fit (an unknown filter, a word where a number goes).
fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let detail = match &err {
        QueryPayloadError::Deserialize(e) => readable(&e.to_string()),
        other => readable(&other.to_string()),
    };
    let api = ApiError::bad_request(format!("The query string cannot be read: {detail}."));
    actix_web::error::InternalError::from_response(err, api.error_response()).into()
}

/// A path segment that does not fit.
fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    let api = ApiError::new(StatusCode::NOT_FOUND, "There is nothing at this address.");
    actix_web::error::InternalError::from_response(err, api.error_response()).into()
}
