//! Use cases: each one validates with the domain rules, then writes the change, its timeline
//! entry and its outbox rows in one transaction, and wakes the worker after commit. This is the
//! only layer that opens multi-statement transactions; handlers stay thin.

pub mod alertmanager;
pub mod closures;
pub mod declare;
pub mod follow_ups;
pub mod insights;
pub mod lifecycle;
pub mod metrics;
pub mod nudges;
pub mod postmortem;
pub mod queries;
pub mod roles;
pub mod tokens;

use crate::db::DbError;
use crate::domain::FieldError;

/// Why a use case refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Input problems, one per field.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// No such incident (or delivery).
    #[error("not found")]
    NotFound,
    /// The request no longer fits the current state (stale form, refused transition).
    #[error("{0}")]
    Conflict(String),
    /// A storage failure.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for ServiceError {
    fn from(e: diesel::result::Error) -> Self {
        ServiceError::Db(DbError::Query(e))
    }
}

impl ServiceError {
    /// A single-field validation error.
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        ServiceError::Invalid(vec![FieldError::new(field, message)])
    }
}
