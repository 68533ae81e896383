//! API tokens: made by admins, shown once, stored hashed, revoked at once.

use chrono::NaiveDateTime;

use super::ServiceError;
use crate::auth::{Scope, format_scopes, parse_scopes, tokens};
use crate::db::models::api_token::{self, ApiTokenRow, NewApiToken};
use crate::domain::declaration::now_utc;
use crate::domain::{Actor, is_blank};
use crate::state::AppState;

/// A token just made: its row and the secret, which is never available again.
#[derive(Debug)]
pub struct Created {
    /// The stored row.
    pub row: ApiTokenRow,
    /// The whole token to hand over.
    pub secret: String,
}

/// What an admin asks for.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    /// A name saying who or what uses it ("alertmanager", "deploy bot").
    pub name: String,
    /// Scopes, by name.
    pub scopes: Vec<String>,
    /// Days until it stops working; empty for never.
    pub expires_in_days: String,
}

/// Validates a request into (name, scopes, expiry).
fn parse(req: &TokenRequest, now: NaiveDateTime) -> Result<(String, Vec<Scope>, Option<NaiveDateTime>), ServiceError> {
    let mut errors = Vec::new();
    let name = req.name.trim().to_string();
    if is_blank(&name) {
        errors.push(crate::domain::FieldError::new(
            "name",
            "Give the token a name that says who uses it.",
        ));
    } else if name.chars().count() > 80 || name.chars().any(char::is_control) {
        errors.push(crate::domain::FieldError::new(
            "name",
            "The name must be one line of at most 80 characters.",
        ));
    }
    let scopes = match parse_scopes(&req.scopes.join(" ")) {
        Ok(s) if s.is_empty() => {
            errors.push(crate::domain::FieldError::new("scopes", "Choose at least one scope."));
            Vec::new()
        }
        Ok(s) => s,
        Err(e) => {
            errors.push(crate::domain::FieldError::new("scopes", e));
            Vec::new()
        }
    };
    let days = req.expires_in_days.trim();
    let expires = if days.is_empty() {
        None
    } else {
        match days.parse::<i64>() {
            Ok(d) if (1..=3650).contains(&d) => Some(now + chrono::Duration::days(d)),
            _ => {
                errors.push(crate::domain::FieldError::new(
                    "expires_in_days",
                    "Expiry must be a whole number of days from 1 to 3650, or empty for never.",
                ));
                None
            }
        }
    };
    if errors.is_empty() {
        Ok((name, scopes, expires))
    } else {
        Err(ServiceError::Invalid(errors))
    }
}

/// Makes a token.
pub async fn create(state: &AppState, by: &Actor, req: &TokenRequest) -> Result<Created, ServiceError> {
    let now = now_utc();
    let (name, scopes, expires_at) = parse(req, now)?;
    let made = tokens::generate();
    let scopes = format_scopes(&scopes);
    let by = by.email.clone();
    let hash = made.hash.clone();
    let public_id = made.public_id.clone();
    let row = state
        .db
        .write(move |conn| -> Result<ApiTokenRow, ServiceError> {
            let id = api_token::insert(
                conn,
                &NewApiToken {
                    public_id: &public_id,
                    name: &name,
                    secret_hash: &hash,
                    scopes: &scopes,
                    created_by_email: &by,
                    created_at: now,
                    expires_at,
                },
            )?;
            api_token::list(conn)?
                .into_iter()
                .find(|t| t.id == id)
                .ok_or(ServiceError::NotFound)
        })
        .await?;
    tracing::info!(token.id = row.id, token.name = %row.name, token.scopes = %row.scopes, "API token created");
    Ok(Created {
        row,
        secret: made.token,
    })
}

/// Revokes a token; it stops working with the next request.
pub async fn revoke(state: &AppState, id: i64) -> Result<(), ServiceError> {
    let now = now_utc();
    let existed = state
        .db
        .write(move |conn| api_token::revoke(conn, id, now).map_err(ServiceError::from))
        .await?;
    if existed {
        tracing::info!(token.id = id, "API token revoked");
        Ok(())
    } else {
        Err(ServiceError::NotFound)
    }
}

/// Every token, newest first.
pub async fn list(state: &AppState) -> Result<Vec<ApiTokenRow>, ServiceError> {
    Ok(state.db.run(api_token::list).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(name: &str, scopes: &[&str], days: &str) -> TokenRequest {
        TokenRequest {
            name: name.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            expires_in_days: days.into(),
        }
    }

    #[test]
    fn requests_are_checked_field_by_field() {
        let now = now_utc();
        let (name, scopes, exp) = parse(&req(" bot ", &["incidents:read"], "30"), now).unwrap();
        assert_eq!(name, "bot");
        assert_eq!(scopes, vec![Scope::IncidentsRead]);
        assert_eq!(exp, Some(now + chrono::Duration::days(30)));
        let Err(ServiceError::Invalid(errors)) = parse(&req("\u{200b}", &[], "0"), now) else {
            panic!("accepted")
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, vec!["name", "scopes", "expires_in_days"]);
        assert!(parse(&req("x", &["incidents:everything"], ""), now).is_err());
    }
}
