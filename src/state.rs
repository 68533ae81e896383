//! What every request handler and use case shares.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::config::Settings;
use crate::db::Db;

/// Shared application state (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    /// Validated configuration.
    pub settings: Arc<Settings>,
    /// Database handle.
    pub db: Db,
    /// Names of the notifiers that exist in this process.
    pub notifiers: Arc<Vec<String>>,
    /// The notifiers themselves (consulted when enqueueing: what each accepts, and its target).
    pub registry: crate::notifiers::Registry,
    /// Wakes the delivery worker after a commit that enqueued something.
    pub wake: Arc<Notify>,
    /// Public URL prefix for links, without a trailing slash.
    pub base_url: Arc<str>,
    /// Key that signs session cookies.
    pub session_key: Arc<crate::web::session::SessionKey>,
    /// Addresses an authenticating proxy may connect from (proxy sign-in mode).
    pub trusted_proxies: Arc<Vec<crate::auth::proxy::TrustedNet>>,
    /// People a proxy vouched for recently, so their user row is not rewritten on every page.
    pub seen_users: Arc<std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>>,
    /// The OpenID Connect client, in `oidc` sign-in mode.
    pub oidc: Option<Arc<crate::auth::oidc::OidcClient>>,
    /// Sessions this process found live in the database recently (id → when), so most page views
    /// skip the lookup. Signing out here removes the entry at once; a sign-out on another replica
    /// is seen within [`crate::web::session::LIVE_SESSION_TTL`].
    pub live_sessions: Arc<std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>>,
    /// Request rate limits for sign-in and the API.
    pub limits: Arc<crate::web::limits::RateLimits>,
    /// This process's counters for `/metrics` (declarations, delivery attempts and latency).
    pub metrics: Arc<crate::prometheus::Metrics>,
    /// When this process started, in seconds since the Unix epoch.
    pub started_unix: f64,
    /// The `/incident` Slack slash command, when its signing secret is configured.
    pub slack_commands: Option<Arc<crate::web::slack_commands::SlackCommands>>,
}

impl AppState {
    /// The public link to an incident page.
    pub fn incident_url(&self, number: i64) -> String {
        format!("{}/incidents/{number}", self.base_url)
    }
}
