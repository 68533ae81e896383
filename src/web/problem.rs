//! Errors for the JSON API: `application/problem+json` (RFC 9457).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde::Serialize;

/// The media type of a problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem document.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem; `about:blank` when the status says it all.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What exactly went wrong with this request, and how to fix it.
    pub detail: String,
    /// Field-level errors, for invalid input.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
}

/// One invalid field.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct FieldProblem {
    /// The field's name in the request.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl Problem {
    /// A problem whose type is its status.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// The response.
    pub fn response(&self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut builder = HttpResponse::build(status);
        builder
            .content_type(PROBLEM_JSON)
            .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
        if status == StatusCode::UNAUTHORIZED {
            builder.insert_header((actix_web::http::header::WWW_AUTHENTICATE, "Bearer realm=\"redbutton\""));
        }
        builder.body(serde_json::to_string(self).unwrap_or_else(|_| "{}".into()))
    }
}

/// A problem response with a status and detail.
pub fn problem(status: StatusCode, detail: impl Into<String>) -> HttpResponse {
    Problem::new(status, detail).response()
}
