//! The delivery worker: takes outbox rows and hands them to notifiers, durably.
//!
//! ```text
//!   commit (declare/change) ──notify──┐
//!   poll timer ───────────────────────┤
//!                                     ▼
//!   claim due rows (lease + token) ──► spawn one task per row (bounded by a semaphore)
//!                                          │  timeout + catch_unwind around Notifier::deliver
//!                                          ▼
//!                    done (external id/link) | pending again at now+backoff | dead
//! ```
//!
//! Notifiers run outside any transaction. A row is only finished by the worker that still holds
//! its lease token. A worker that dies leaves its rows leased; once the lease expires any worker
//! (this process after a restart, or another replica) claims them again.

pub mod backoff;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use futures_util::FutureExt;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::config::OutboxSettings;
use crate::db::Db;
use crate::db::models::{OutboxRow, outbox};
use crate::domain::declaration::now_utc;
use crate::notifiers::{Delivery, EventPayload, NotifyError, RefStore, Registry};
use crate::prometheus::Outcome;

/// The worker and what it needs.
pub struct Worker {
    db: Db,
    registry: Registry,
    settings: OutboxSettings,
    wake: Arc<Notify>,
    /// Starts every lease token this worker writes, so a claim can count its rows in flight.
    id: String,
    /// Where attempts and latencies are counted for `/metrics`.
    metrics: Arc<crate::prometheus::Metrics>,
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn after(now: NaiveDateTime, d: Duration) -> NaiveDateTime {
    now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(1))
}

impl Worker {
    /// A worker over `db` delivering through `registry`.
    pub fn new(db: Db, registry: Registry, settings: OutboxSettings, wake: Arc<Notify>) -> Self {
        Self {
            db,
            registry,
            settings,
            wake,
            id: uuid::Uuid::new_v4().simple().to_string(),
            metrics: Arc::default(),
        }
    }

    /// Counts this worker's attempts and latencies in `metrics` (the process's `/metrics`).
    pub fn with_metrics(mut self, metrics: Arc<crate::prometheus::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Runs until `shutdown` turns true, then lets in-flight deliveries finish for the grace
    /// period and abandons the rest (their leases expire and they are retried later).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let me = Arc::new(self);
        let permits = Arc::new(Semaphore::new(me.settings.concurrency as usize));
        let mut tasks = JoinSet::new();
        tracing::info!(concurrency = me.settings.concurrency, "delivery worker started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            while tasks.try_join_next().is_some() {}
            let free = permits.available_permits();
            let mut claimed_all = false;
            if free > 0 {
                match me.claim(free as i64).await {
                    Ok(rows) => {
                        claimed_all = !rows.is_empty() && rows.len() == free;
                        for row in rows {
                            let Ok(permit) = permits.clone().acquire_owned().await else {
                                break;
                            };
                            let worker = me.clone();
                            tasks.spawn(async move {
                                worker.deliver(row).await;
                                drop(permit);
                            });
                        }
                    }
                    Err(e) => tracing::error!(error.message = %e, "claiming deliveries failed"),
                }
            }
            if claimed_all {
                // There may be more due rows; wait only for a free slot.
                tokio::select! {
                    _ = tasks.join_next(), if !tasks.is_empty() => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            tokio::select! {
                _ = me.wake.notified() => {}
                _ = tokio::time::sleep(ms(me.settings.poll_interval_ms)) => {}
                _ = tasks.join_next(), if !tasks.is_empty() => {}
                _ = shutdown.changed() => {}
            }
        }
        let in_flight = tasks.len();
        if in_flight > 0 {
            tracing::info!(
                in_flight,
                "delivery worker stopping; letting in-flight deliveries finish"
            );
            let grace = tokio::time::sleep(ms(me.settings.shutdown_grace_ms));
            tokio::pin!(grace);
            loop {
                tokio::select! {
                    next = tasks.join_next() => if next.is_none() { break },
                    _ = &mut grace => {
                        tracing::warn!(abandoned = tasks.len(), "grace period over; abandoned deliveries will be retried after their lease expires");
                        tasks.abort_all();
                        break;
                    }
                }
            }
        }
        tracing::info!("delivery worker stopped");
    }

    async fn claim(&self, limit: i64) -> Result<Vec<OutboxRow>, crate::db::DbError> {
        // A read first: when nothing is due (the usual case), polling costs no write.
        let due = self.db.run(outbox::next_due).await?;
        if due.is_none_or(|at| at > now_utc()) {
            return Ok(Vec::new());
        }
        let lease_ms = i64::try_from(self.settings.lease_ms).unwrap_or(i64::MAX / 2);
        let own = format!("{}.", self.id);
        let token = format!("{own}{}", uuid::Uuid::new_v4().simple());
        // One integration never holds more than half the slots: a vendor that hangs until the
        // time limit leaves the rest for the others.
        let per_notifier = i64::from(self.settings.concurrency.div_ceil(2));
        self.db
            .write(move |conn| {
                outbox::claim(conn, lease_ms, &token, limit, per_notifier, &own).map_err(crate::db::DbError::from)
            })
            .await
    }

    async fn deliver(&self, row: OutboxRow) {
        let span = tracing::info_span!(
            "delivery",
            outbox.id = row.id,
            notifier.kind = %row.notifier,
            event = %row.event,
            attempt = row.attempts,
        );
        self.deliver_inner(row).instrument(span).await;
    }

    async fn deliver_inner(&self, row: OutboxRow) {
        let token = row.lease_token.clone().unwrap_or_default();
        let started = std::time::Instant::now();
        let outcome = match (
            serde_json::from_str::<EventPayload>(&row.payload),
            self.registry.get(&row.notifier),
        ) {
            (Err(e), _) => Err(NotifyError::Permanent(format!("unreadable payload: {e}"))),
            (_, None) => Err(NotifyError::Permanent(format!(
                "notifier \u{201c}{}\u{201d} is not configured on this server",
                row.notifier
            ))),
            (Ok(payload), Some(notifier)) => {
                let delivery = Delivery {
                    id: row.id,
                    idempotency_key: row.idempotency_key.clone(),
                    attempt: row.attempts.max(1) as u32,
                    incident_id: row.incident_id,
                    payload,
                    store: RefStore::new(self.db.clone(), row.incident_id),
                };
                let call = AssertUnwindSafe(notifier.deliver(&delivery)).catch_unwind();
                match tokio::time::timeout(ms(self.settings.delivery_timeout_ms), call).await {
                    Err(_) => Err(NotifyError::Retryable(format!(
                        "timed out after {} ms",
                        self.settings.delivery_timeout_ms
                    ))),
                    Ok(Err(panic)) => Err(NotifyError::Retryable(format!(
                        "notifier panicked: {}",
                        panic_message(&panic)
                    ))),
                    Ok(Ok(result)) => result,
                }
            }
        };
        let duration_ms = started.elapsed().as_millis() as u64;
        let notifier_name = row.notifier.clone();
        let id = row.id;
        let created_at = row.created_at;
        let attempts = row.attempts.max(1) as u32;
        let (max_attempts, base, max) = (
            self.settings.max_attempts,
            ms(self.settings.backoff_base_ms),
            ms(self.settings.backoff_max_ms),
        );
        let recorded = match outcome {
            Ok(done) => {
                tracing::info!(
                    duration_ms,
                    external.id = done.external_id.as_deref().unwrap_or(""),
                    "delivered"
                );
                let incident_id = row.incident_id;
                let recorded = self
                    .db
                    .write(move |conn| {
                        let now = now_utc();
                        let done = outbox::mark_done(
                            conn,
                            id,
                            &token,
                            done.external_id.as_deref(),
                            done.external_url.as_deref(),
                            now,
                        )?;
                        // Whatever waited on this delivery (a ticket to bookmark, posts before an
                        // archive) can look again now rather than at its next scheduled check.
                        let woken = if done {
                            outbox::wake_waiting(conn, incident_id, now)?
                        } else {
                            0
                        };
                        Ok::<_, crate::db::DbError>((done, woken))
                    })
                    .await;
                match recorded {
                    Ok((done, woken)) => {
                        if woken > 0 {
                            self.wake.notify_one();
                        }
                        if done {
                            self.metrics.attempt(&notifier_name, Outcome::Delivered);
                            let latency = (now_utc() - created_at).num_milliseconds() as f64 / 1000.0;
                            self.metrics.delivered_after(&notifier_name, latency);
                        }
                        Ok(done)
                    }
                    Err(e) => Err(e),
                }
            }
            Err(err) => {
                // Waiting is not a failure: look again later without spending an attempt, less
                // often as the wait grows, and give up (visibly) after a day.
                let age = (now_utc() - created_at).to_std().unwrap_or_default();
                let waited = match &err {
                    NotifyError::Waiting(_) => Some(backoff::waiting_delay(age, base)),
                    _ => None,
                };
                let waiting = matches!(waited, Some(Some(_)));
                let retry = waiting
                    || (waited.is_none()
                        && !matches!(err, NotifyError::Permanent(_))
                        && backoff::should_retry(attempts, max_attempts));
                let wait = match (&err, waited) {
                    // The vendor said when; sooner would only be refused again.
                    (NotifyError::RetryAfter(_, after), _) => *after,
                    (_, Some(Some(d))) => d,
                    _ => backoff::delay(attempts, base, max, rand::random::<f64>()),
                };
                let message = match waited {
                    Some(None) => truncate(&format!("gave up after waiting a day: {err}"), 2000),
                    _ => truncate(&err.to_string(), 2000),
                };
                self.metrics.attempt(
                    &notifier_name,
                    if waiting {
                        Outcome::Waiting
                    } else if retry {
                        Outcome::Retry
                    } else {
                        Outcome::Dead
                    },
                );
                if waiting {
                    tracing::info!(duration_ms, reason = %message, "delivery waiting");
                } else if retry {
                    tracing::warn!(duration_ms, error.message = %message, retry_in_ms = wait.as_millis() as u64, "delivery failed; will retry");
                } else {
                    tracing::error!(duration_ms, error.message = %message, "delivery failed; dead-lettered");
                }
                self.db
                    .write(move |conn| {
                        let now = now_utc();
                        let retry_at = retry.then(|| after(now, wait));
                        outbox::mark_failed(conn, id, &token, &message, retry_at, waiting, now)
                            .map_err(crate::db::DbError::from)
                    })
                    .await
            }
        };
        match recorded {
            Ok(true) => {}
            Ok(false) => tracing::warn!("lease lost before the result was recorded; another worker owns this delivery"),
            Err(e) => {
                tracing::error!(error.message = %e, "could not record the delivery result; it will be retried after its lease expires")
            }
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\u{2026}", &s[..end])
}
