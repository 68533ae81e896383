//! Row types and the queries on them. Functions take `&mut DbConnection` so that services can
//! compose several of them inside one transaction.

pub mod alert;
pub mod api_token;
pub mod external_ref;
pub mod follow_up;
pub mod idempotency;
pub mod incident;
pub mod insights;
pub mod login_attempt;
pub mod outbox;
pub mod role;
pub mod secret;
pub mod session;
pub mod slack_request;
pub mod status_update;
pub mod timeline;
pub mod user;

pub use alert::{AlertGroupRow, AlertRow, NewAlert, NewAlertGroup};
pub use external_ref::ExternalRefRow;
pub use follow_up::{FollowUpRow, NewFollowUp};
pub use idempotency::IdempotencyRecord;
pub use incident::{IncidentFilter, IncidentRow, NewIncident};
pub use outbox::{DeliveryState, NewOutboxRow, OutboxRow};
pub use role::RoleRow;
pub use status_update::{NewStatusUpdate, NudgeRow, StatusUpdateRow};
pub use timeline::{NewTimelineEntry, TimelineEntryRow};
