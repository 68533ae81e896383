//! The per-incident memory an integration keeps between deliveries: ids of what it created
//! outside, and markers for calls in flight. Backed by the `external_refs` table.

use crate::db::Db;
use crate::db::models::{ExternalRefRow, external_ref, outbox};
use crate::domain::declaration::now_utc;

use super::NotifyError;

/// A stored reference: a value (an id, a key, a message ts) and maybe a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRef {
    /// The value.
    pub value: String,
    /// A link a person can open, if any.
    pub url: Option<String>,
    /// When it was written (UTC).
    pub at: chrono::NaiveDateTime,
}

/// Where an earlier delivery of the same incident stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryStatus {
    /// `pending`, `leased`, `done` or `dead`.
    pub state: String,
    /// Its last error, if any.
    pub last_error: Option<String>,
}

/// Where the declaration delivery of an integration stands, seen by a delivery that needs what
/// it makes (the channel to post in, the ticket to bookmark or comment on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Awaited {
    /// No such delivery: the declaration was never routed there.
    NotRouted,
    /// It failed for good, with this error.
    Failed(String),
    /// It is still to run or running.
    Underway,
    /// It was delivered.
    Done,
}

impl Awaited {
    /// The outcome for a delivery that needs `what` (e.g. "Jira issue for INC-4") and did not
    /// find it: fail with the cause when its maker failed, wait while it is under way, and
    /// `None` when the caller must decide (never routed, or delivered without a result).
    pub fn blocking(self, what: &str) -> Option<NotifyError> {
        match self {
            Awaited::Failed(e) => Some(NotifyError::Permanent(format!(
                "no {what}: creating it failed ({e}); retry that delivery first, then this one"
            ))),
            Awaited::Underway => Some(NotifyError::Waiting(format!("waiting for the {what}"))),
            Awaited::NotRouted | Awaited::Done => None,
        }
    }
}

/// Reads and writes one incident's references.
#[derive(Clone)]
pub struct RefStore {
    db: Db,
    incident_id: i64,
}

impl std::fmt::Debug for RefStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefStore")
            .field("incident_id", &self.incident_id)
            .finish()
    }
}

fn db_error(e: crate::db::DbError) -> NotifyError {
    NotifyError::Retryable(format!("could not reach our own database: {e}"))
}

impl RefStore {
    /// The store of one incident.
    pub fn new(db: Db, incident_id: i64) -> Self {
        Self { db, incident_id }
    }

    /// Reads `integration`/`name`.
    pub async fn get(&self, integration: &str, name: &str) -> Result<Option<StoredRef>, NotifyError> {
        let (id, integration, name) = (self.incident_id, integration.to_string(), name.to_string());
        let row = self
            .db
            .run(move |conn| external_ref::get(conn, id, &integration, &name))
            .await
            .map_err(db_error)?;
        Ok(row.map(|r| StoredRef {
            value: r.value,
            url: r.url,
            at: r.updated_at,
        }))
    }

    /// Writes `integration`/`name`.
    pub async fn put(&self, integration: &str, name: &str, value: &str, url: Option<&str>) -> Result<(), NotifyError> {
        let row = ExternalRefRow {
            incident_id: self.incident_id,
            integration: integration.into(),
            name: name.into(),
            value: value.into(),
            url: url.map(str::to_string),
            updated_at: now_utc(),
        };
        self.db
            .write(move |conn| external_ref::put(conn, &row).map_err(crate::db::DbError::from))
            .await
            .map_err(db_error)
    }

    /// Removes `integration`/`name`.
    pub async fn delete(&self, integration: &str, name: &str) -> Result<(), NotifyError> {
        let (id, integration, name) = (self.incident_id, integration.to_string(), name.to_string());
        self.db
            .write(move |conn| external_ref::delete(conn, id, &integration, &name).map_err(crate::db::DbError::from))
            .await
            .map_err(db_error)
    }

    /// The Jira issue recorded on follow-up `id` of this incident, as (key, link).
    pub async fn follow_up_issue(&self, id: i64) -> Result<Option<(String, Option<String>)>, NotifyError> {
        let incident_id = self.incident_id;
        self.db
            .run(move |conn| crate::db::models::follow_up::jira_issue(conn, incident_id, id))
            .await
            .map_err(db_error)
    }

    /// Records the Jira issue of follow-up `id` unless one is recorded already; returns the key
    /// recorded now (`None` if the follow-up is gone).
    pub async fn set_follow_up_issue(&self, id: i64, key: &str, url: &str) -> Result<Option<String>, NotifyError> {
        let (incident_id, key, url) = (self.incident_id, key.to_string(), url.to_string());
        self.db
            .write(move |conn| {
                crate::db::models::follow_up::set_jira_issue(conn, incident_id, id, &key, &url, now_utc())
                    .map_err(crate::db::DbError::from)
            })
            .await
            .map_err(db_error)
    }

    /// The incident's status now (not when the event happened).
    pub async fn incident_status(&self) -> Result<Option<String>, NotifyError> {
        Ok(self.incident_now().await?.map(|(status, _)| status))
    }

    /// The incident's status and severity now (not when the event happened): a delivery retried
    /// long after its event checks that its action still fits.
    pub async fn incident_now(&self) -> Result<Option<(String, String)>, NotifyError> {
        use crate::db::schema::incidents;
        use diesel::prelude::*;
        let id = self.incident_id;
        self.db
            .run(move |conn| {
                incidents::table
                    .find(id)
                    .select((incidents::status, incidents::severity))
                    .first::<(String, String)>(conn)
                    .optional()
            })
            .await
            .map_err(db_error)
    }

    /// The first delivery of this incident to `notifier` for `event`, if there is one.
    pub async fn delivery_status(&self, notifier: &str, event: &str) -> Result<Option<DeliveryStatus>, NotifyError> {
        let (id, notifier, event) = (self.incident_id, notifier.to_string(), event.to_string());
        let row = self
            .db
            .run(move |conn| outbox::first_state(conn, id, &notifier, &event))
            .await
            .map_err(db_error)?;
        Ok(row.map(|(state, last_error)| DeliveryStatus { state, last_error }))
    }

    /// Where `notifier`'s declaration delivery for this incident stands.
    pub async fn declaration(&self, notifier: &str) -> Result<Awaited, NotifyError> {
        Ok(match self.delivery_status(notifier, "declared").await? {
            None => Awaited::NotRouted,
            Some(s) if s.state == "dead" => Awaited::Failed(s.last_error.unwrap_or_else(|| "no error recorded".into())),
            Some(s) if s.state == "done" => Awaited::Done,
            Some(_) => Awaited::Underway,
        })
    }

    /// What `integration`'s declaration delivery stored under `name`, or, when nothing is stored,
    /// where that delivery stands. The delivery's state is read *before* the reference: a delivery
    /// stores what it made before it is marked done, so "done and nothing stored" really means
    /// nothing was made, never that the maker finished between the two reads.
    pub async fn made_by_declaration(
        &self,
        integration: &str,
        name: &str,
    ) -> Result<Result<StoredRef, Awaited>, NotifyError> {
        let status = self.declaration(integration).await?;
        Ok(match self.get(integration, name).await? {
            Some(found) => Ok(found),
            None => Err(status),
        })
    }

    /// How many of this incident's main-line deliveries to `notifier` are still to run.
    pub async fn unfinished(&self, notifier: &str) -> Result<i64, NotifyError> {
        let key = format!("{}:{notifier}", self.incident_id);
        self.db
            .run(move |conn| outbox::unfinished_in_sequence(conn, &key))
            .await
            .map_err(db_error)
    }
}
