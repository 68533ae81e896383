//! `/api/v1/incidents`: declare, list, read and work incidents.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use sha2::{Digest, Sha256};

use super::ApiError;
use super::types::{
    DeclareRequest, Incident, IncidentDetail, IncidentPage, KeyTimesRequest, LeadRequest, ListParams, NoteRequest,
    SeverityRequest, StatusRequest, StatusUpdate, UpdateRequest,
};
use crate::auth::{Declare, Read, Via, Work};
use crate::db::models::{IncidentFilter, idempotency, incident};
use crate::domain::{DeclarationInput, IncidentNumber, parse_person};
use crate::services::{ServiceError, declare as declaring, lifecycle, queries};
use crate::state::AppState;
use crate::web::problem::FieldProblem;
use crate::web::session::Access;

/// The header that makes a declaration safe to send again.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Set on an answer that repeats an earlier declaration's.
pub const IDEMPOTENT_REPLAYED: &str = "Idempotent-Replayed";
/// The default page size.
pub const DEFAULT_LIMIT: i64 = 25;
/// The largest page size.
pub const MAX_LIMIT: i64 = 100;

fn number_from(raw: &str) -> Result<i64, ApiError> {
    IncidentNumber::parse(raw)
        .map(|n| n.0)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "There is no such incident."))
}

fn json(status: StatusCode, body: &impl serde::Serialize) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

fn location(number: i64) -> String {
    format!("/api/v1/incidents/{number}")
}

/// The incident as it is now.
async fn current(state: &AppState, number: i64) -> Result<Incident, ApiError> {
    let found = state
        .db
        .run(move |conn| {
            let Some(row) = incident::find_by_number(conn, number)? else {
                return Ok(None);
            };
            let services = incident::services_of(conn, row.id)?;
            Ok(Some((row, services)))
        })
        .await
        .map_err(|e| ApiError::from_service(ServiceError::Db(e), Some(number)))?;
    let (row, services) = found.ok_or_else(|| ApiError::no_incident(number))?;
    Ok(Incident::from_row(state, &row, services))
}

/// The `Idempotency-Key` header, checked: 1–255 visible ASCII characters.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let mut values = req.headers().get_all(IDEMPOTENCY_KEY);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::bad_request("Send one Idempotency-Key header, not several."));
    }
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > 255 || !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(ApiError::bad_request(
            "The Idempotency-Key header must be 1 to 255 visible ASCII characters (no spaces), such as a UUID.",
        ));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// The key stored for a caller's `Idempotency-Key`: scoped to the token, so two scripts cannot
/// collide or learn of each other's keys, and reduced to the characters the store takes.
fn scoped_key(principal_via: &Via, key: &str) -> String {
    let token = match principal_via {
        Via::Token { id, .. } => *id,
        _ => 0,
    };
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    format!("api-{token}-{}", &digest[..40])
}

#[utoipa::path(
    post,
    path = "/api/v1/incidents",
    operation_id = "declareIncident",
    tag = "incidents",
    summary = "Declare an incident",
    description = "Needs the `incidents:declare` scope. With an `Idempotency-Key`, sending the same body again \
                   returns the incident the first request declared (200, `Idempotent-Replayed: true`); the same key \
                   with a different body is refused (422) and nothing is stored.",
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "1–255 visible ASCII characters (a UUID, say); makes the request safe to repeat.",
         min_length = 1, max_length = 255, pattern = "^[!-~]+$"),
    ),
    request_body(content = DeclareRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Declared.", body = Incident,
         headers(("Location" = String, description = "The new incident's address in the API."))),
        (status = 200, description = "A repeat of an earlier request with the same Idempotency-Key and body: that request's incident.", body = Incident,
         headers(("Idempotent-Replayed" = String, description = "Always `true`."),
                 ("Location" = String, description = "The incident's address in the API."))),
    ),
)]
/// `POST /api/v1/incidents`
pub async fn declare(
    who: Access<Declare>,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<DeclareRequest>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
    let body = body.into_inner();
    let input = DeclarationInput {
        title: body.title,
        severity: body.severity.unwrap_or_default(),
        services: body.services.unwrap_or_default(),
        summary: body.summary.unwrap_or_default(),
        lead_self: body.lead.is_some(),
        drill: body.drill.unwrap_or(false),
        impact_started: body
            .impact_started_at
            .map(|t| t.naive_utc().format("%Y-%m-%dT%H:%M:%S").to_string())
            .unwrap_or_default(),
    };
    let stored_key = key.as_deref().map(|k| scoped_key(&who.via, k));
    let declared = match declaring::declare(&state, who.actor.clone(), input, stored_key.clone()).await {
        Ok(d) => d,
        Err(ServiceError::Conflict(message)) => {
            // With a key, the one refusal `declare` makes is a key already used for another body.
            let prior = match stored_key {
                Some(k) => state
                    .db
                    .run(move |conn| idempotency::find(conn, &k))
                    .await
                    .ok()
                    .flatten(),
                None => None,
            };
            return Err(match prior {
                Some(p) => ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!(
                        "This Idempotency-Key was already used to declare INC-{} with a different body, so nothing \
                         was stored. Send that exact body to get INC-{} again, or use a new key for a new incident.",
                        p.incident_number, p.incident_number
                    ),
                ),
                None => ApiError::new(StatusCode::CONFLICT, message),
            });
        }
        Err(e) => return Err(ApiError::from_service(e, None)),
    };
    let incident = current(&state, declared.number).await?;
    let mut response = if declared.created {
        json(StatusCode::CREATED, &incident)
    } else {
        let mut r = json(StatusCode::OK, &incident);
        r.headers_mut().insert(
            header::HeaderName::from_static("idempotent-replayed"),
            header::HeaderValue::from_static("true"),
        );
        r
    };
    if let Ok(v) = header::HeaderValue::from_str(&location(declared.number)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// What a cursor is bound to: the filters it was made with.
fn filter_fingerprint(f: &IncidentFilter) -> String {
    let mut h = Sha256::new();
    for part in [&f.status, &f.severity, &f.service, &f.text] {
        let s = part.as_deref().unwrap_or("\u{0}none");
        h.update(s.len().to_le_bytes());
        h.update(s.as_bytes());
    }
    h.update([match f.drill {
        None => 0u8,
        Some(false) => 1,
        Some(true) => 2,
    }]);
    hex::encode(h.finalize())
}

fn cursor_check(fingerprint: &str, payload: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"redbutton api cursor v1\0");
    h.update(fingerprint.as_bytes());
    h.update(b"\0");
    h.update(payload.as_bytes());
    hex::encode(&h.finalize()[..8])
}

/// An opaque cursor for the position after `(declared_at, id)`. Not secret (it only says where a
/// list stopped), but checked: an edited cursor, or one made for other filters, is refused.
pub fn encode_cursor(filter: &IncidentFilter, at: chrono::NaiveDateTime, id: i64) -> String {
    let payload = format!("{}.{id}", at.and_utc().timestamp_micros());
    let check = cursor_check(&filter_fingerprint(filter), &payload);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{payload}.{check}"))
}

/// Reads a cursor made by [`encode_cursor`] for the same filters.
pub fn decode_cursor(filter: &IncidentFilter, cursor: &str) -> Option<(chrono::NaiveDateTime, i64)> {
    if cursor.len() > 200 {
        return None;
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (payload, check) = raw.rsplit_once('.')?;
    let expected = cursor_check(&filter_fingerprint(filter), payload);
    if !bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), check.as_bytes())) {
        return None;
    }
    let (micros, id) = payload.split_once('.')?;
    let at = chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?.naive_utc();
    Some((at, id.parse().ok()?))
}

#[utoipa::path(
    get,
    path = "/api/v1/incidents",
    operation_id = "listIncidents",
    tag = "incidents",
    summary = "List incidents, newest first",
    description = "Needs the `incidents:read` scope. Pages are cut by an opaque cursor: pass `next_cursor` back as \
                   `cursor`, with the same filters, until it is null.",
    params(ListParams),
    responses(
        (status = 200, description = "One page of incidents.", body = IncidentPage),
    ),
)]
/// `GET /api/v1/incidents`
pub async fn list(
    _who: Access<Read>,
    state: web::Data<AppState>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit must be from 1 to {MAX_LIMIT}.")));
    }
    let nonempty = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let filter = IncidentFilter {
        status: p.status.map(|s| s.to_domain().as_str().to_string()),
        severity: nonempty(p.severity),
        service: nonempty(p.service),
        text: nonempty(p.q),
        live: None,
        drill: p.drill,
    };
    let after = match p.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(decode_cursor(&filter, c).ok_or_else(|| {
            ApiError::bad_request(
                "The cursor is not one this server made for these filters. Start again without a cursor, and pass \
                 next_cursor back unchanged with the same filters.",
            )
        })?),
    };
    let (items, more) = queries::incident_page(&state, filter.clone(), after, limit)
        .await
        .map_err(|e| ApiError::from_service(e, None))?;
    let next_cursor = match items.last() {
        Some(last) if more => Some(encode_cursor(&filter, last.row.declared_at, last.row.id)),
        _ => None,
    };
    let page = IncidentPage {
        items: items.into_iter().map(|s| Incident::from_summary(&state, s)).collect(),
        next_cursor,
    };
    Ok(json(StatusCode::OK, &page))
}

#[utoipa::path(
    get,
    path = "/api/v1/incidents/{number}",
    operation_id = "getIncident",
    tag = "incidents",
    summary = "One incident, with its timeline and deliveries",
    description = "Needs the `incidents:read` scope.",
    params(("number" = i64, Path, description = "The incident's number (INC-`number`).", minimum = 1, example = 1)),
    responses(
        (status = 200, description = "The incident.", body = IncidentDetail),
    ),
)]
/// `GET /api/v1/incidents/{number}`
pub async fn show(
    _who: Access<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let number = number_from(&path)?;
    let d = queries::incident_detail(&state, number, None)
        .await
        .map_err(|e| ApiError::from_service(e, Some(number)))?;
    let latest = d.updates.last().map(|u| (u.at, u.next_update_at));
    let next_update_due_at = crate::domain::update::next_update_due(
        crate::domain::Status::parse(&d.row.status).unwrap_or(crate::domain::Status::Investigating),
        d.row.declared_at,
        latest,
        state.settings.cadence(&d.row.severity).update_minutes,
    );
    let detail = IncidentDetail {
        incident: Incident::from_row(&state, &d.row, d.services.clone()),
        timeline: d.timeline.iter().map(Into::into).collect(),
        deliveries: d.deliveries.iter().map(Into::into).collect(),
        updates: d.updates.iter().map(Into::into).collect(),
        next_update_due_at: next_update_due_at.map(|t| t.and_utc()),
        roles: crate::services::roles::held_roles(&state.settings.roles(), &d.row, &d.roles)
            .into_iter()
            .map(Into::into)
            .collect(),
    };
    Ok(json(StatusCode::OK, &detail))
}

#[utoipa::path(
    post,
    path = "/api/v1/incidents/{number}/status",
    operation_id = "changeStatus",
    tag = "incidents",
    summary = "Move the status",
    description = "Needs the `incidents:write` scope. Moves that the incident's rules forbid, and an `expected` \
                   status it no longer has, are refused with 409 and change nothing. `declined` and `merged` \
                   are refused with 422: declining needs a reason and merging a surviving incident, both given \
                   on the incident page.",
    params(("number" = i64, Path, description = "The incident's number.", minimum = 1, example = 1)),
    request_body(content = StatusRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Changed; the incident as it is now.", body = Incident),
    ),
)]
/// `POST /api/v1/incidents/{number}/status`
pub async fn status(
    who: Access<Work>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<StatusRequest>,
) -> Result<HttpResponse, ApiError> {
    let number = number_from(&path)?;
    let expected = match body.expected {
        Some(s) => s,
        None => current(&state, number).await?.status,
    };
    lifecycle::change_status(
        &state,
        number,
        who.actor.clone(),
        body.status.to_domain().as_str(),
        expected.to_domain().as_str(),
    )
    .await
    .map_err(|e| ApiError::from_service(e, Some(number)))?;
    Ok(json(StatusCode::OK, &current(&state, number).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/incidents/{number}/severity",
    operation_id = "changeSeverity",
    tag = "incidents",
    summary = "Change the severity",
    description = "Needs the `incidents:write` scope. The same severity again, or an `expected` severity it no \
                   longer has, is refused with 409.",
    params(("number" = i64, Path, description = "The incident's number.", minimum = 1, example = 1)),
    request_body(content = SeverityRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Changed; the incident as it is now.", body = Incident),
    ),
)]
/// `POST /api/v1/incidents/{number}/severity`
pub async fn severity(
    who: Access<Work>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<SeverityRequest>,
) -> Result<HttpResponse, ApiError> {
    let number = number_from(&path)?;
    let body = body.into_inner();
    let expected = match body.expected {
        Some(s) => s,
        None => current(&state, number).await?.severity,
    };
    lifecycle::change_severity(&state, number, who.actor.clone(), &body.severity, &expected)
        .await
        .map_err(|e| ApiError::from_service(e, Some(number)))?;
    Ok(json(StatusCode::OK, &current(&state, number).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/incidents/{number}/lead",
    operation_id = "changeLead",
    tag = "incidents",
    summary = "Set, hand over or clear the lead",
    description = "Needs the `incidents:write` scope. `{\"email\": …}` makes that person the lead (their name is \
                   taken from the people who have signed in unless `name` is given); `{\"clear\": true}` removes \
                   the lead.",
    params(("number" = i64, Path, description = "The incident's number.", minimum = 1, example = 1)),
    request_body(content = LeadRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Changed; the incident as it is now.", body = Incident),
    ),
)]
/// `POST /api/v1/incidents/{number}/lead`
pub async fn lead(
    who: Access<Work>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<LeadRequest>,
) -> Result<HttpResponse, ApiError> {
    let number = number_from(&path)?;
    let body = body.into_inner();
    let clear = body.clear.unwrap_or(false);
    let lead = match (&body.email, clear) {
        (None, true) if body.name.is_none() => None,
        (Some(email), false) => {
            let email = email.trim().to_ascii_lowercase();
            let mut name = body.name.clone().unwrap_or_default();
            if crate::domain::is_blank(&name) && !email.is_empty() {
                let lookup = email.clone();
                if let Some(user) = state
                    .db
                    .run(move |conn| crate::db::models::user::find_by_email(conn, &lookup))
                    .await
                    .map_err(|e| ApiError::from_service(ServiceError::Db(e), Some(number)))?
                {
                    name = user.name;
                } else if body.name.is_none() {
                    return Err(ApiError::invalid(vec![FieldProblem {
                        field: "name".into(),
                        message: "Nobody with that email has signed in yet, so give their name too.".into(),
                    }]));
                }
            }
            Some(
                parse_person(&name, &email)
                    .map_err(|e| ApiError::from_service(ServiceError::Invalid(vec![e]), None))?,
            )
        }
        _ => {
            return Err(ApiError::invalid(vec![FieldProblem {
                field: "email".into(),
                message: "Send {\"email\": …} (and optionally \"name\") to set the lead, or {\"clear\": true} \
                          alone to remove it."
                    .into(),
            }]));
        }
    };
    let expected = current(&state, number).await?.lead.map(|p| p.email).unwrap_or_default();
    lifecycle::change_lead(&state, number, who.actor.clone(), lead, &expected)
        .await
        .map_err(|e| ApiError::from_service(e, Some(number)))?;
    Ok(json(StatusCode::OK, &current(&state, number).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/incidents/{number}/notes",
    operation_id = "addNote",
    tag = "incidents",
    summary = "Add a note to the timeline",
    description = "Needs the `incidents:write` scope.",
    params(("number" = i64, Path, description = "The incident's number.", minimum = 1, example = 1)),
    request_body(content = NoteRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Added; the incident as it is now.", body = Incident,
         headers(("Location" = String, description = "The incident's address in the API."))),
    ),
)]
/// `POST /api/v1/incidents/{number}/notes`
pub async fn note(
    who: Access<Work>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<NoteRequest>,
) -> Result<HttpResponse, ApiError> {
    let number = number_from(&path)?;
    lifecycle::add_note(&state, number, who.actor.clone(), &body.body)
        .await
        .map_err(|e| ApiError::from_service(e, Some(number)))?;
    let mut response = json(StatusCode::CREATED, &current(&state, number).await?);
    if let Ok(v) = header::HeaderValue::from_str(&location(number)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

#[utoipa::path(
    post,
    path = "/api/v1/incidents/{number}/updates",
    operation_id = "postUpdate",
    tag = "incidents",
    summary = "Post a status update for stakeholders",
    description = "Needs the `incidents:write` scope. What we know, what we are doing, and when the next update is \
                   due. It goes on the timeline as its own kind and out wherever routing sends `status_update`: \
                   the incident's Slack channel and the announcement, the severity's email lists, a Jira comment, \
                   webhooks. Refused with 409 once the incident is resolved.",
    params(("number" = i64, Path, description = "The incident's number.", minimum = 1, example = 1)),
    request_body(content = UpdateRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Posted.", body = StatusUpdate,
         headers(("Location" = String, description = "The incident's address in the API."))),
    ),
)]
/// `POST /api/v1/incidents/{number}/updates`
pub async fn update(
    who: Access<Work>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<UpdateRequest>,
) -> Result<HttpResponse, ApiError> {
    let number = number_from(&path)?;
    let next = body
        .next_update_in_minutes
        .map(|m| m.to_string())
        .unwrap_or_else(|| "none".into());
    let input = crate::domain::update::UpdateInput::parse(&body.known, &body.doing, &next)
        .map_err(|e| ApiError::from_service(ServiceError::Invalid(e), Some(number)))?;
    lifecycle::post_update(&state, number, who.actor.clone(), input)
        .await
        .map_err(|e| ApiError::from_service(e, Some(number)))?;
    let d = queries::incident_detail(&state, number, None)
        .await
        .map_err(|e| ApiError::from_service(e, Some(number)))?;
    let posted: StatusUpdate = d
        .updates
        .last()
        .map(Into::into)
        .ok_or_else(|| ApiError::from_service(ServiceError::NotFound, Some(number)))?;
    let mut response = json(StatusCode::CREATED, &posted);
    if let Ok(v) = header::HeaderValue::from_str(&location(number)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

#[utoipa::path(
    post,
    path = "/api/v1/incidents/{number}/key-times",
    operation_id = "setKeyTimes",
    tag = "incidents",
    summary = "Set, correct or clear key times",
    description = "Needs the `incidents:write` scope. Each field absent is left as it is, `null` clears it, a time \
                   sets it. Times out of order (mitigated before impact started, say), in the future, or that \
                   contradict the status are refused with 422 naming the times, and nothing is stored. Each time \
                   that changes gets its own `key_time_changed` timeline entry.",
    params(("number" = i64, Path, description = "The incident's number.", minimum = 1, example = 1)),
    request_body(content = KeyTimesRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored (or nothing to change); the incident as it is now.", body = Incident),
    ),
)]
/// `POST /api/v1/incidents/{number}/key-times`
pub async fn key_times(
    who: Access<Work>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<KeyTimesRequest>,
) -> Result<HttpResponse, ApiError> {
    let number = number_from(&path)?;
    lifecycle::set_key_times(&state, number, who.actor.clone(), body.edits(), None)
        .await
        .map_err(|e| ApiError::from_service(e, Some(number)))?;
    Ok(json(StatusCode::OK, &current(&state, number).await?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_edits_and_other_filters() {
        let f = IncidentFilter::default();
        let at = crate::domain::declaration::now_utc();
        let c = encode_cursor(&f, at, 42);
        assert_eq!(decode_cursor(&f, &c), Some((at, 42)));
        let other = IncidentFilter {
            drill: Some(true),
            ..IncidentFilter::default()
        };
        assert_eq!(decode_cursor(&other, &c), None, "made for other filters");
        let raw = String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&c).unwrap()).unwrap();
        let forged = raw.replacen(".42.", ".41.", 1);
        let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged);
        assert_eq!(decode_cursor(&f, &forged), None, "edited");
        assert_eq!(decode_cursor(&f, "not a cursor"), None);
        assert_eq!(decode_cursor(&f, ""), None);
    }

    #[test]
    fn keys_are_scoped_per_token_and_fit_the_store() {
        let a = Via::Token { id: 1, scopes: vec![] };
        let b = Via::Token { id: 2, scopes: vec![] };
        let k = scoped_key(&a, "same key \u{7e}");
        assert_ne!(k, scoped_key(&b, "same key \u{7e}"));
        assert_eq!(k, scoped_key(&a, "same key \u{7e}"));
        assert!(k.len() <= 100);
        assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
}

/// The query string of the postmortem draft.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PostmortemParams {
    /// The IANA time zone the draft's times are shown in (`Europe/Paris`); UTC when absent.
    pub tz: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/incidents/{number}/postmortem",
    operation_id = "getPostmortem",
    tag = "incidents",
    summary = "A postmortem draft in Markdown, made from the incident's record",
    description = "Needs the `incidents:read` scope. Made again from the current record on every request: summary, \
                   impact, key times and durations, roles, timeline, notes, sections to fill in, and what was sent \
                   where. Times are in `tz` (UTC when absent).",
    params(
        ("number" = i64, Path, description = "The incident's number (INC-`number`).", minimum = 1, example = 1),
        PostmortemParams,
    ),
    responses(
        (status = 200, description = "The draft.", content_type = "text/markdown", body = String),
    ),
)]
/// `GET /api/v1/incidents/{number}/postmortem`
pub async fn postmortem(
    _who: Access<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<PostmortemParams>,
) -> Result<HttpResponse, ApiError> {
    let number = number_from(&path)?;
    let tz = match query.tz.as_deref().filter(|z| !z.trim().is_empty()) {
        Some(z) => crate::web::pages::postmortem::parse_zone(z).map_err(ApiError::bad_request)?,
        None => chrono_tz::Tz::UTC,
    };
    let d = queries::incident_detail(&state, number, None)
        .await
        .map_err(|e| ApiError::from_service(e, Some(number)))?;
    let md = crate::services::postmortem::render(&d, tz, &state.settings, crate::domain::declaration::now_utc());
    Ok(HttpResponse::Ok()
        .content_type("text/markdown; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(md))
}
