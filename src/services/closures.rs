//! Closing an incident other than by resolving it: declining it (not an incident, with a reason)
//! and merging a duplicate into the incident that carries on. Both are status moves checked by
//! the one transition rule ([`check_transition`]), recorded on the timeline and fanned out like a
//! resolve (a `status_changed` event whose new status is `declined` or `merged`), in the same
//! transaction as the change.

use super::ServiceError;
use super::lifecycle::{Applied, enqueue, entry, load_snapshot, mutate, stale};
use crate::db::models::{incident, timeline};
use crate::domain::declaration::now_utc;
use crate::domain::{Actor, EventKind, IncidentNumber, Status, check_transition};
use crate::notifiers::Change;
use crate::state::AppState;

/// The longest reason kept for declining, in characters.
pub const REASON_MAX_CHARS: usize = 2000;

/// Checks the reason for declining: something visible, at most [`REASON_MAX_CHARS`], no NUL.
pub fn parse_reason(raw: &str) -> Result<String, ServiceError> {
    let reason = raw.trim().replace("\r\n", "\n");
    if crate::domain::is_blank(&reason) {
        return Err(ServiceError::field(
            "reason",
            "Say why this is not an incident (for example \u{201c}a test alert\u{201d}); the reason is kept on the timeline.",
        ));
    }
    if reason.chars().count() > REASON_MAX_CHARS {
        return Err(ServiceError::field(
            "reason",
            "A reason can be at most 2,000 characters.",
        ));
    }
    if reason.contains('\0') {
        return Err(ServiceError::field("reason", "A reason cannot contain NUL characters."));
    }
    Ok(reason)
}

fn current_status(raw: &str) -> Result<Status, ServiceError> {
    Status::parse(raw).ok_or_else(|| ServiceError::Conflict("stored status is corrupt".into()))
}

/// Declines an open incident: it was not an incident. Closes it with the reason kept on the
/// incident and on its `declined` timeline entry, and fans out as a status change to `declined`
/// (pages resolved, channel told and archived, ticket closed). `expected` is the status the form
/// showed. A declined incident can be reopened like a resolved one.
pub async fn decline(
    state: &AppState,
    number: i64,
    actor: Actor,
    reason: &str,
    expected: &str,
) -> Result<(), ServiceError> {
    let reason = parse_reason(reason)?;
    let expected = expected.to_string();
    mutate(state, number, actor, move |row, actor, now| {
        let from = current_status(&row.status)?;
        if from.as_str() != expected {
            return Err(stale("status", from.as_str()));
        }
        check_transition(from, Status::Declined).map_err(|e| ServiceError::Conflict(e.to_string()))?;
        row.status = Status::Declined.as_str().into();
        row.closed_reason = Some(reason.clone());
        let mut e = entry(row, actor, now, "declined");
        e.field = Some("status".into());
        e.old_value = Some(from.as_str().into());
        e.new_value = Some(Status::Declined.as_str().into());
        e.body = Some(reason.clone());
        Ok(Applied {
            entry: e,
            event: EventKind::StatusChanged,
            change: Some(Change {
                field: "status".into(),
                old: Some(from.as_str().into()),
                new: Some(Status::Declined.as_str().into()),
            }),
            note: None,
            update: None,
        })
    })
    .await
}

/// Merges the open incident `number` (the duplicate) into `into` (the survivor, as typed: `7` or
/// `INC-7`). The survivor must exist, be another incident, not be merged itself (so no chain or
/// cycle can form: a merged incident is final and can never be a survivor), not be declined, and
/// be a drill exactly when the duplicate is. In one transaction: the duplicate closes as
/// `merged` pointing at the survivor, both timelines get an entry naming the other, and the
/// duplicate fans out a status change to `merged` that carries the survivor's number and link.
/// Returns the survivor's number. A refusal changes nothing.
pub async fn merge(
    state: &AppState,
    number: i64,
    actor: Actor,
    into: &str,
    expected: &str,
) -> Result<i64, ServiceError> {
    let survivor_number = IncidentNumber::parse(into)
        .ok_or_else(|| {
            ServiceError::field(
                "into",
                "Give the number of the incident that carries on, like INC-7 or 7.",
            )
        })?
        .0;
    if survivor_number == number {
        return Err(ServiceError::field(
            "into",
            "An incident cannot be merged into itself; give the number of the other incident.",
        ));
    }
    let expected = expected.to_string();
    let st = state.clone();
    state
        .db
        .write(move |conn| -> Result<(), ServiceError> {
            // Lock both rows, lower number first, so two merges of the same pair in opposite
            // directions queue instead of deadlocking.
            let (first, second) = if number < survivor_number {
                (number, survivor_number)
            } else {
                (survivor_number, number)
            };
            let a = incident::find_by_number_for_update(conn, first)?;
            let b = incident::find_by_number_for_update(conn, second)?;
            let (dup, survivor) = if first == number { (a, b) } else { (b, a) };
            let mut dup = dup.ok_or(ServiceError::NotFound)?;
            let survivor = survivor.ok_or_else(|| {
                ServiceError::field(
                    "into",
                    format!("There is no INC-{survivor_number}; check the number of the incident that carries on."),
                )
            })?;
            let from = current_status(&dup.status)?;
            if from.as_str() != expected {
                return Err(stale("status", from.as_str()));
            }
            check_transition(from, Status::Merged).map_err(|e| ServiceError::Conflict(e.to_string()))?;
            match current_status(&survivor.status)? {
                Status::Merged => {
                    return Err(ServiceError::field(
                        "into",
                        format!(
                            "INC-{survivor_number} was itself merged into another incident; merge into that one instead."
                        ),
                    ));
                }
                Status::Declined => {
                    return Err(ServiceError::field(
                        "into",
                        format!(
                            "INC-{survivor_number} was declined as not an incident; decline this one too, or reopen it first."
                        ),
                    ));
                }
                _ => {}
            }
            if survivor.drill != dup.drill {
                return Err(ServiceError::field(
                    "into",
                    "A drill can only be merged into a drill, and a real incident only into a real incident.",
                ));
            }

            let now = now_utc();
            dup.status = Status::Merged.as_str().into();
            dup.merged_into_number = Some(survivor_number);
            dup.updated_at = now;
            incident::update(conn, &dup)?;
            let mut e = entry(&dup, &actor, now, "merged");
            e.field = Some("merged_into".into());
            e.old_value = Some(from.as_str().into());
            e.new_value = Some(survivor_number.to_string());
            e.body = Some(survivor.title.clone());
            let entry_id = timeline::insert(conn, &e)?;
            let mut e = entry(&survivor, &actor, now, "merged_in");
            e.field = Some("merged_from".into());
            e.new_value = Some(number.to_string());
            e.body = Some(dup.title.clone());
            timeline::insert(conn, &e)?;
            incident::touch(conn, survivor.id, now)?;

            let snap = load_snapshot(conn, &st, &dup)?;
            enqueue(
                conn,
                &st,
                &snap,
                entry_id,
                EventKind::StatusChanged,
                &actor,
                Some(Change {
                    field: "status".into(),
                    old: Some(from.as_str().into()),
                    new: Some(Status::Merged.as_str().into()),
                }),
                None,
                now,
            )?;
            Ok(())
        })
        .await?;
    state.wake.notify_one();
    Ok(survivor_number)
}

/// Where a merged incident's page sends its readers: the survivor's number, or `None` when the
/// incident was not merged (or does not exist).
pub async fn survivor_of(state: &AppState, number: i64) -> Result<Option<i64>, ServiceError> {
    Ok(state
        .db
        .run(move |conn| Ok(incident::find_by_number(conn, number)?.and_then(|row| row.merged_into_number)))
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons() {
        assert_eq!(
            parse_reason("  a test alert \r\nfrom staging ").unwrap(),
            "a test alert \nfrom staging"
        );
        for bad in ["", "   ", "\u{200b}", "a\0b"] {
            assert!(parse_reason(bad).is_err(), "{bad:?}");
        }
        assert!(parse_reason(&"x".repeat(REASON_MAX_CHARS)).is_ok());
        assert!(parse_reason(&"x".repeat(REASON_MAX_CHARS + 1)).is_err());
    }
}
