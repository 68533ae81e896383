//! Receiving Prometheus Alertmanager notifications: one incident per alert group.
//!
//! ```text
//! notification (checked) ── Db::write, ONE transaction:
//!   group row by SHA-256(groupKey)?
//!     none, something fires  → declare (write_declaration: incident, `declared`, outbox)
//!                               + INSERT group (unique key: a concurrent twin fails here,
//!                                 rolls back, and is retried once the winner committed)
//!     none, all resolved     → nothing (a group never seen is not worth an incident)
//!     found                  → lock the group row, then its incident:
//!        closed and a new alert fires → declare a new incident that names the old one
//!        otherwise                    → this incident
//!   per alert, by (incident, fingerprint, startsAt):
//!     new firing     → `alert_firing` entry + alerts row
//!     new resolved   → `alert_resolved` entry + alerts row (only on an existing incident)
//!     firing→resolved→ `alert_resolved` entry, row updated
//!     anything else  → nothing (repeats, replicas, resolved stays resolved)
//!   mitigate_on_resolved, something resolved now, nothing firing, status investigating or
//!   identified → the status change use case's own change (`status_changed`, fan-out)
//! after commit: wake the worker
//! ```

use sha2::{Digest, Sha256};

use super::ServiceError;
use super::declare::write_declaration;
use super::lifecycle::{entry, iso, move_status, mutate_in};
use crate::config::AlertmanagerSettings;
use crate::db::models::alert::{self, NewAlert, NewAlertGroup};
use crate::db::models::{IncidentRow, incident, timeline};
use crate::db::{DbConnection, DbError, is_unique_violation};
use crate::domain::alert::{Alert, AlertStatus, Notification, entry_text};
use crate::domain::declaration::now_utc;
use crate::domain::{Actor, DeclarationInput, Status};
use crate::state::AppState;

/// What a notification did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Received {
    /// The group's incident number, if it has one.
    pub incident: Option<i64>,
    /// Whether this notification opened that incident.
    pub opened: bool,
    /// How many alerts were newly recorded (fired or resolved) on the timeline.
    pub recorded: usize,
    /// Whether this notification marked the incident mitigated.
    pub mitigated: bool,
}

/// The severity an incident opened by this notification gets.
fn severity_of(settings: &crate::config::Settings, cfg: &AlertmanagerSettings, n: &Notification) -> String {
    n.severity(
        &cfg.severity_label,
        &cfg.severities,
        &settings.severity_ids(),
        &cfg.default_severity,
    )
}

/// How many times a notification is tried again after losing a race to store its group first.
const GROUP_RACE_RETRIES: usize = 3;

/// The stored identity of a group key.
pub fn group_key_hash(group_key: &str) -> String {
    hex::encode(Sha256::digest(group_key.as_bytes()))
}

/// Records a notification: opens, updates or (when configured) mitigates the group's incident,
/// in one transaction. `actor` is who the API token speaks for.
pub async fn receive(
    state: &AppState,
    cfg: &AlertmanagerSettings,
    actor: Actor,
    notification: Notification,
) -> Result<Received, ServiceError> {
    let mut alerts: Vec<Alert> = Vec::with_capacity(notification.alerts.len());
    for a in notification.alerts {
        // The same alert twice in one body counts once.
        if !alerts
            .iter()
            .any(|b| b.fingerprint == a.fingerprint && b.starts_at == a.starts_at)
        {
            alerts.push(a);
        }
    }
    let notification = Notification { alerts, ..notification };
    let key_hash = group_key_hash(&notification.group_key);
    let mut tries = 0;
    loop {
        let (st, cfg2, actor2, n, key) = (
            state.clone(),
            cfg.clone(),
            actor.clone(),
            notification.clone(),
            key_hash.clone(),
        );
        let result = state
            .db
            .write(move |conn| receive_in(conn, &st, &cfg2, &actor2, &n, &key))
            .await;
        match result {
            Ok(r) => {
                if r.opened {
                    state
                        .metrics
                        .declared(&severity_of(&state.settings, cfg, &notification));
                }
                state.wake.notify_one();
                tracing::info!(
                    incident.number = r.incident,
                    opened = r.opened,
                    recorded = r.recorded,
                    mitigated = r.mitigated,
                    "alertmanager notification received"
                );
                return Ok(r);
            }
            // Another request stored this group first (PostgreSQL): everything this one wrote was
            // rolled back; now it finds the group and adds only what is new.
            Err(ServiceError::Db(DbError::Query(e))) if is_unique_violation(&e) && tries < GROUP_RACE_RETRIES => {
                tries += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

fn receive_in(
    conn: &mut DbConnection,
    st: &AppState,
    cfg: &AlertmanagerSettings,
    actor: &Actor,
    n: &Notification,
    key_hash: &str,
) -> Result<Received, ServiceError> {
    let now = now_utc();
    let Some(found) = alert::find_group(conn, key_hash)? else {
        if !n.any_firing() {
            return Ok(Received::default());
        }
        let row = open_incident(conn, st, cfg, actor, n, None, now)?;
        let group_id = alert::insert_group(
            conn,
            &NewAlertGroup {
                group_key_hash: key_hash,
                group_key: &n.group_key,
                receiver: &n.receiver,
                incident_id: row.id,
                external_url: &n.external_url,
                created_at: now,
                updated_at: now,
            },
        )?;
        let recorded = record_alerts(conn, &row, group_id, actor, n, now)?;
        return Ok(Received {
            incident: Some(row.number),
            opened: true,
            recorded: recorded.fired + recorded.resolved,
            mitigated: false,
        });
    };
    alert::lock_group(conn, found.id)?;
    let group = alert::find_group(conn, key_hash)?.ok_or(ServiceError::NotFound)?;
    let current = incident_by_id(conn, group.incident_id)?;
    let closed = Status::parse(&current.status).is_some_and(Status::is_closed);
    let fires_anew = n.alerts.iter().filter(|a| a.status == AlertStatus::Firing).try_fold(
        false,
        |acc, a| -> Result<bool, ServiceError> {
            Ok(acc || alert::find_alert(conn, current.id, &a.fingerprint, a.starts_at)?.is_none())
        },
    )?;
    if closed && fires_anew {
        let row = open_incident(conn, st, cfg, actor, n, Some(&current), now)?;
        let mut e = entry(&current, actor, now, "alert_group_moved");
        e.field = Some("incident".into());
        e.new_value = Some(row.number.to_string());
        e.body = Some(format!(
            "The alert group fired again after this incident was closed; it continues in INC-{}.",
            row.number
        ));
        timeline::insert(conn, &e)?;
        incident::touch(conn, current.id, now)?;
        alert::move_group(conn, group.id, row.id, &n.receiver, &n.external_url, now)?;
        let recorded = record_alerts(conn, &row, group.id, actor, n, now)?;
        return Ok(Received {
            incident: Some(row.number),
            opened: true,
            recorded: recorded.fired + recorded.resolved,
            mitigated: false,
        });
    }
    alert::touch_group(conn, group.id, now)?;
    let recorded = record_alerts(conn, &current, group.id, actor, n, now)?;
    if recorded.fired + recorded.resolved > 0 {
        incident::touch(conn, current.id, now)?;
    }
    let status = Status::parse(&current.status);
    let mitigate = cfg.mitigate_on_resolved
        && recorded.resolved > 0
        && matches!(status, Some(Status::Investigating | Status::Identified))
        && alert::count_firing(conn, current.id)? == 0;
    if let (true, Some(from)) = (mitigate, status) {
        mutate_in(
            conn,
            st,
            current.number,
            actor,
            &move_status(Status::Mitigated, from.as_str().to_string()),
        )?;
    }
    Ok(Received {
        incident: Some(current.number),
        opened: false,
        recorded: recorded.fired + recorded.resolved,
        mitigated: mitigate,
    })
}

fn incident_by_id(conn: &mut DbConnection, id: i64) -> Result<IncidentRow, ServiceError> {
    let number = alert::incident_number(conn, id)?.ok_or(ServiceError::NotFound)?;
    incident::find_by_number(conn, number)?.ok_or(ServiceError::NotFound)
}

/// Declares the group's incident through the declare use case's own writer, and records what
/// the declaration could not say: a service label naming no configured service, and the closed
/// incident this one follows.
fn open_incident(
    conn: &mut DbConnection,
    st: &AppState,
    cfg: &AlertmanagerSettings,
    actor: &Actor,
    n: &Notification,
    follows: Option<&IncidentRow>,
    now: chrono::NaiveDateTime,
) -> Result<IncidentRow, ServiceError> {
    let settings = &st.settings;
    let known_services = settings.service_ids();
    let service = n.label(&cfg.service_label).map(str::trim);
    let unknown_service = service.filter(|s| !known_services.contains(s));
    let mut summary = n.summary(&cfg.summary_annotation);
    if let Some(prev) = follows {
        summary = format!(
            "This alert group fired again after INC-{} was closed. [INC-{}]({})\n\n{summary}",
            prev.number,
            prev.number,
            st.incident_url(prev.number)
        );
        summary = summary
            .chars()
            .take(crate::domain::declaration::SUMMARY_MAX_CHARS)
            .collect();
    }
    let first_start = n
        .alerts
        .iter()
        .filter(|a| a.status == AlertStatus::Firing)
        .map(|a| a.starts_at)
        .min()
        .filter(|t| *t <= now && t.and_utc().timestamp() >= 946_684_800);
    let input = DeclarationInput {
        title: n.title(&cfg.title_annotation),
        severity: severity_of(settings, cfg, n),
        services: service
            .filter(|s| known_services.contains(s))
            .map(|s| vec![s.to_string()])
            .unwrap_or_default(),
        summary,
        lead_self: false,
        drill: false,
        impact_started: first_start
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
            .unwrap_or_default(),
    };
    let declaration = input
        .parse(actor.clone(), &settings.severity_ids(), &known_services, now)
        .map_err(ServiceError::Invalid)?;
    let (row, _) = write_declaration(conn, st, &declaration, now)?;
    if let Some(s) = unknown_service {
        let mut e = entry(&row, actor, now, "alert_unknown_service");
        e.field = Some(cfg.service_label.clone());
        e.new_value = Some(crate::domain::alert::one_line(s).chars().take(200).collect());
        timeline::insert(conn, &e)?;
    }
    if let Some(prev) = follows {
        let mut e = entry(&row, actor, now, "alert_group_follows");
        e.field = Some("incident".into());
        e.old_value = Some(prev.number.to_string());
        e.body = Some(format!(
            "This alert group fired again after INC-{} was closed; this incident continues it.",
            prev.number
        ));
        timeline::insert(conn, &e)?;
    }
    Ok(row)
}

#[derive(Debug, Default)]
struct Recorded {
    fired: usize,
    resolved: usize,
}

/// Adds what is new in the notification to the incident's alerts and timeline.
fn record_alerts(
    conn: &mut DbConnection,
    row: &IncidentRow,
    group_id: i64,
    actor: &Actor,
    n: &Notification,
    now: chrono::NaiveDateTime,
) -> Result<Recorded, ServiceError> {
    let mut out = Recorded::default();
    for a in &n.alerts {
        let stored = alert::find_alert(conn, row.id, &a.fingerprint, a.starts_at)?;
        match (stored, a.status) {
            (None, status) => {
                let entry_id = timeline::insert(conn, &alert_entry(row, actor, a, status, now))?;
                let labels = serde_json::to_string(&a.labels).map_err(|e| ServiceError::Conflict(e.to_string()))?;
                let annotations =
                    serde_json::to_string(&a.annotations).map_err(|e| ServiceError::Conflict(e.to_string()))?;
                alert::insert_alert(
                    conn,
                    &NewAlert {
                        group_id,
                        incident_id: row.id,
                        fingerprint: &a.fingerprint,
                        starts_at: a.starts_at,
                        ends_at: if status == AlertStatus::Resolved {
                            a.ends_at
                        } else {
                            None
                        },
                        status: status.as_str(),
                        labels: &labels,
                        annotations: &annotations,
                        generator_url: &a.generator_url,
                        firing_entry_id: (status == AlertStatus::Firing).then_some(entry_id),
                        resolved_entry_id: (status == AlertStatus::Resolved).then_some(entry_id),
                        created_at: now,
                        updated_at: now,
                    },
                )?;
                match status {
                    AlertStatus::Firing => out.fired += 1,
                    AlertStatus::Resolved => out.resolved += 1,
                }
            }
            (Some(s), AlertStatus::Resolved) if s.status == AlertStatus::Firing.as_str() => {
                let entry_id = timeline::insert(conn, &alert_entry(row, actor, a, AlertStatus::Resolved, now))?;
                alert::resolve_alert(conn, s.id, a.ends_at, entry_id, now)?;
                out.resolved += 1;
            }
            // A repeat, a replica's copy, or a late "firing" after "resolved" (an alert that
            // fires again gets a new start time, so it is a new alert).
            (Some(_), _) => {}
        }
    }
    Ok(out)
}

/// An `alert_firing` or `alert_resolved` entry: the fingerprint as field, the start (or end) time
/// as value, the labels, annotations and source link as body.
fn alert_entry(
    row: &IncidentRow,
    actor: &Actor,
    a: &Alert,
    status: AlertStatus,
    now: chrono::NaiveDateTime,
) -> crate::db::models::NewTimelineEntry {
    let kind = match status {
        AlertStatus::Firing => "alert_firing",
        AlertStatus::Resolved => "alert_resolved",
    };
    let mut e = entry(row, actor, now, kind);
    e.field = Some(a.fingerprint.clone());
    e.old_value = Some(iso(a.starts_at));
    e.new_value = match status {
        AlertStatus::Firing => None,
        AlertStatus::Resolved => a.ends_at.map(iso),
    };
    e.body = Some(entry_text(a));
    e
}
