//! Declaring an incident: the big red button.

use sha2::{Digest, Sha256};

use super::ServiceError;
use super::lifecycle::{enqueue, entry, snapshot};
use chrono::NaiveDateTime;

use crate::db::DbConnection;
use crate::db::models::{IdempotencyRecord, IncidentRow, NewIncident, idempotency, incident, timeline};
use crate::db::{DbError, is_unique_violation};
use crate::domain::declaration::now_utc;
use crate::domain::{Actor, Declaration, DeclarationInput, EventKind, Status};
use crate::state::AppState;

/// The result of pressing the button.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declared {
    /// The incident's human number.
    pub number: i64,
    /// False when this was a repeat of an earlier submission (same idempotency key).
    pub created: bool,
}

/// A fingerprint of the submitted form, so a reused idempotency key with different content is
/// told apart from a harmless double click.
pub fn request_hash(input: &DeclarationInput) -> String {
    let mut services = input
        .services
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>();
    services.sort_unstable();
    services.dedup();
    let mut h = Sha256::new();
    for part in [
        input.title.trim(),
        input.severity.trim(),
        &services.join(","),
        input.summary.trim(),
        if input.lead_self { "lead" } else { "" },
        if input.drill { "drill" } else { "" },
        input.impact_started.trim(),
    ] {
        h.update(part.len().to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Validates a declaration and saves it, with its first timeline entry and its outbox rows, in
/// one transaction. With an idempotency key, a repeat of the same submission returns the
/// incident the first one opened; the same key with different content is refused.
pub async fn declare(
    state: &AppState,
    actor: Actor,
    input: DeclarationInput,
    idempotency_key: Option<String>,
) -> Result<Declared, ServiceError> {
    let key = match idempotency_key.map(|k| k.trim().to_string()).filter(|k| !k.is_empty()) {
        Some(k) if k.len() > 100 || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') => {
            return Err(ServiceError::field(
                "idempotency_key",
                "The form is damaged; reload the page and try again.",
            ));
        }
        other => other,
    };
    let hash = request_hash(&input);
    let settings = state.settings.clone();
    let declaration = input
        .parse(
            actor.clone(),
            &settings.severity_ids(),
            &settings.service_ids(),
            now_utc(),
        )
        .map_err(ServiceError::Invalid)?;

    let severity = declaration.severity.clone();
    let st = state.clone();
    let (key2, hash2, actor2) = (key.clone(), hash.clone(), actor.clone());
    let result = state
        .db
        .write(move |conn| -> Result<Declared, ServiceError> {
            if let Some(k) = &key2
                && let Some(prior) = idempotency::find(conn, k)?
            {
                return repeat_of(&prior, &hash2, &actor2);
            }
            let now = now_utc();
            let (row, _) = write_declaration(conn, &st, &declaration, now)?;
            let number = row.number;
            if let Some(k) = &key2 {
                idempotency::insert(
                    conn,
                    &IdempotencyRecord {
                        key: k.clone(),
                        actor_email: actor2.email.clone(),
                        request_hash: hash2.clone(),
                        incident_number: number,
                        created_at: now,
                    },
                )?;
            }
            Ok(Declared { number, created: true })
        })
        .await;

    match result {
        Ok(d) => {
            if d.created {
                state.metrics.declared(&severity);
            }
            state.wake.notify_one();
            tracing::info!(incident.number = d.number, created = d.created, "incident declared");
            Ok(d)
        }
        // Two submissions with one key raced on PostgreSQL: the loser's insert hit the unique
        // key after the winner committed. Answer with the winner's incident.
        Err(ServiceError::Db(DbError::Query(e))) if is_unique_violation(&e) && key.is_some() => {
            let k = key.clone().unwrap_or_default();
            let prior = state.db.run(move |conn| idempotency::find(conn, &k)).await?;
            match prior {
                Some(prior) => repeat_of(&prior, &hash, &actor),
                None => Err(ServiceError::Db(DbError::Query(e))),
            }
        }
        Err(e) => Err(e),
    }
}

/// Writes a checked declaration inside the caller's transaction: the incident with its number,
/// services, `declared` entry (and `lead_changed` when the declarer leads) and its outbox rows.
/// Returns the stored incident and the id of its `declared` entry. Used by [`declare`] and by the
/// Alertmanager receiver, which adds its own rows in the same transaction.
pub(crate) fn write_declaration(
    conn: &mut DbConnection,
    st: &AppState,
    declaration: &Declaration,
    now: NaiveDateTime,
) -> Result<(IncidentRow, i64), ServiceError> {
    let number = incident::allocate_number(conn)?;
    let d = declaration;
    let id = incident::insert(
        conn,
        &NewIncident {
            number,
            title: d.title.as_str(),
            severity: &d.severity,
            status: Status::Investigating.as_str(),
            summary: &d.summary,
            declared_by_name: &d.declared_by.name,
            declared_by_email: &d.declared_by.email,
            lead_name: d.lead.as_ref().map(|l| l.name.as_str()),
            lead_email: d.lead.as_ref().map(|l| l.email.as_str()),
            drill: d.drill,
            impact_started_at: d.impact_started_at,
            declared_at: now,
            updated_at: now,
        },
    )?;
    incident::insert_services(conn, id, &d.services)?;
    let row = incident::find_by_number(conn, number)?.ok_or(ServiceError::NotFound)?;
    let mut declared = entry(&row, &d.declared_by, now, "declared");
    declared.new_value = Some(format!(
        "{} \u{00b7} {}{}",
        d.severity,
        Status::Investigating.as_str(),
        if d.drill { " \u{00b7} drill" } else { "" }
    ));
    let entry_id = timeline::insert(conn, &declared)?;
    if let Some(lead) = &d.lead {
        let mut took_lead = entry(&row, &d.declared_by, now, "lead_changed");
        took_lead.field = Some("lead".into());
        took_lead.new_value = Some(lead.name.clone());
        timeline::insert(conn, &took_lead)?;
    }
    let snap = snapshot(st, &row, d.services.clone());
    enqueue(
        conn,
        st,
        &snap,
        entry_id,
        EventKind::Declared,
        &d.declared_by,
        None,
        None,
        now,
    )?;
    Ok((row, entry_id))
}

fn repeat_of(prior: &IdempotencyRecord, hash: &str, actor: &Actor) -> Result<Declared, ServiceError> {
    if prior.request_hash == hash && prior.actor_email == actor.email {
        Ok(Declared {
            number: prior.incident_number,
            created: false,
        })
    } else {
        Err(ServiceError::Conflict(format!(
            "This form was already used to declare INC-{} with different details. Reload the declare page to declare another incident.",
            prior.incident_number
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_ignores_whitespace_and_service_order_but_not_content() {
        let a = DeclarationInput {
            title: " x ".into(),
            services: vec!["b".into(), "a".into()],
            ..Default::default()
        };
        let b = DeclarationInput {
            title: "x".into(),
            services: vec!["a".into(), "b".into(), "a".into()],
            ..Default::default()
        };
        assert_eq!(request_hash(&a), request_hash(&b));
        let c = DeclarationInput {
            title: "y".into(),
            ..b.clone()
        };
        assert_ne!(request_hash(&b), request_hash(&c));
        let d = DeclarationInput {
            drill: true,
            ..b.clone()
        };
        assert_ne!(request_hash(&b), request_hash(&d));
    }
}
