//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` attributes and the
//! types' `ToSchema` derives, then completed here: the bearer security scheme, and the problem
//! responses every operation can give (listed once in [`problems_for`] instead of on each handler).

use std::sync::OnceLock;

use actix_web::HttpResponse;
use actix_web::http::header;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::auth::Read;
use crate::web::problem::PROBLEM_JSON;
use crate::web::session::Access;

/// The security scheme's name in the document.
pub const BEARER: &str = "bearer";

/// The whole API, as utoipa sees it.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Big Red Button API",
        version = "1",
        description = "Declare, read and work incidents from scripts. Every request needs an API token \
                       (`Authorization: Bearer rbt_…`), made by an admin on /admin/tokens, whose scopes \
                       (`incidents:read`, `incidents:declare`, `incidents:write`) say what it may do. Errors are \
                       `application/problem+json` documents (RFC 9457).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        super::incidents::declare,
        super::incidents::list,
        super::incidents::show,
        super::incidents::postmortem,
        super::incidents::status,
        super::incidents::severity,
        super::incidents::lead,
        super::roles::change,
        super::incidents::note,
        super::incidents::update,
        super::incidents::key_times,
        super::follow_ups::list,
        super::follow_ups::add,
        super::alertmanager::receive_webhook,
        serve,
    ),
    components(schemas(crate::web::problem::Problem, crate::web::problem::FieldProblem)),
    security(("bearer" = [])),
    modifiers(&Completion),
    tags((name = "incidents", description = "Incidents: declare, list, read, change."),
         (name = "meta", description = "This document."),
         (name = "alertmanager", description = "The Prometheus Alertmanager webhook receiver.")),
)]
pub struct ApiDoc;

/// The error statuses an operation can answer with, by operation id.
fn problems_for(operation_id: &str) -> Vec<(u16, &'static str)> {
    // Every operation: no or bad token, a token without the scope, too many requests, and the
    // server's own failures.
    let mut statuses = vec![
        (401, "No API token, or one that is unknown, revoked or expired."),
        (403, "The token lacks the scope this operation needs."),
        (
            429,
            "Too many requests for this token; wait as long as `Retry-After` says.",
        ),
        (500, "The server failed; nothing was saved."),
        (
            503,
            "The database is busy; nothing was saved. Try again after `Retry-After` seconds.",
        ),
    ];
    let body = [
        (
            400,
            "The body is not JSON, or does not fit the request (a field unknown or of the wrong type).",
        ),
        (413, "The body is over the size limit."),
        (415, "The body is not sent as `application/json`."),
    ];
    let number = (404, "There is no such incident.");
    let invalid = (422, "A field's value is refused; `errors` says which and why.");
    let conflict = (
        409,
        "The change does not fit the incident as it is now (a forbidden move, or `expected` no longer true); nothing changed.",
    );
    match operation_id {
        "declareIncident" => {
            // The first description of a status wins; these say more than the shared ones.
            statuses.push((
                400,
                "The body is not JSON or does not fit the request, or the Idempotency-Key header is malformed.",
            ));
            statuses.push((
                422,
                "A field's value is refused (`errors` says which and why), or the Idempotency-Key was already used \
                 with a different body.",
            ));
            statuses.extend(body);
        }
        "listIncidents" => statuses.push((400, "A filter, `limit` or `cursor` cannot be read.")),
        "getIncident" => statuses.push(number),
        "getPostmortem" => statuses.extend([
            (
                400,
                "`tz` is not a time zone this server knows, or the query string cannot be read.",
            ),
            number,
        ]),
        "changeStatus" | "changeSeverity" | "changeLead" => {
            statuses.extend(body);
            statuses.extend([number, invalid, conflict]);
        }
        "listFollowUps" => statuses.push(number),
        "addFollowUp" => {
            statuses.extend(body);
            statuses.extend([number, invalid]);
        }
        "changeRole" => {
            statuses.push((404, "There is no such incident, or no such role."));
            statuses.extend(body);
            statuses.extend([number, invalid, conflict]);
        }
        "addNote" => {
            statuses.extend(body);
            statuses.extend([number, invalid]);
        }
        "postUpdate" => {
            statuses.extend(body);
            statuses.extend([
                number,
                invalid,
                (409, "The incident is resolved; reopen it first. Nothing was posted."),
            ]);
        }
        "setKeyTimes" => {
            statuses.push((
                422,
                "A time is out of order, in the future, or contradicts the status; `errors` names the field and \
                 both times. Nothing was stored.",
            ));
            statuses.extend(body);
            statuses.push(number);
        }
        "receiveAlertmanager" => {
            statuses.push((
                400,
                "The body is not JSON, lacks a required field, has a field of the wrong type, is not version 4, \
                 or holds a time or fingerprint that cannot be read. Nothing was stored.",
            ));
            statuses.extend(body);
            statuses.push((
                404,
                "The Alertmanager receiver is off: the server has no `[alertmanager]` section.",
            ));
            statuses.push(invalid);
        }
        _ => {}
    }
    statuses
}

/// Adds what the attributes cannot say once for all operations.
struct Completion;

impl Modify for Completion {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.bearer_format = Some("rbt_<id>_<secret>".into());
        bearer.description = Some("An API token made on /admin/tokens, sent as `Authorization: Bearer rbt_…`.".into());
        components.add_security_scheme(BEARER, SecurityScheme::Http(bearer));

        for item in openapi.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post].into_iter().flatten() {
                let id = op.operation_id.clone().unwrap_or_default();
                for (status, description) in problems_for(&id) {
                    let key = status.to_string();
                    if op.responses.responses.contains_key(&key) {
                        continue;
                    }
                    let mut response = ResponseBuilder::new().description(description).content(
                        PROBLEM_JSON,
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("Problem")))
                            .build(),
                    );
                    if status == 429 || status == 503 {
                        response = response.header(
                            "Retry-After",
                            utoipa::openapi::HeaderBuilder::new()
                                .schema(
                                    utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::Integer),
                                )
                                .description(Some("Seconds to wait."))
                                .build(),
                        );
                    }
                    op.responses.responses.insert(key, response.build().into());
                }
            }
        }
    }
}

/// The document, built once.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".into()))
}

#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi",
    tag = "meta",
    summary = "This API's OpenAPI 3.1 document",
    description = "Needs the `incidents:read` scope, like every API route.",
    responses((status = 200, description = "The document.", content_type = "application/json", body = Object)),
)]
/// `GET /api/v1/openapi.json`
pub async fn serve(_who: Access<Read>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(document())
}
