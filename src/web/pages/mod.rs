//! One module per page; each `*Page` template struct lives next to the handler that fills it.

pub mod admin;
pub mod assets;
pub mod dashboard;
pub mod declare;
pub mod drills;
pub mod follow_ups;
pub mod health;
pub mod identify;
pub mod incident;
pub mod insights;
pub mod me;
pub mod metrics;
pub mod postmortem;
pub mod roles;
pub mod signin;

use crate::auth::{Principal, Role};

/// What the layout needs about the person looking.
pub struct Me {
    /// Display name.
    pub name: String,
    /// Email.
    pub email: String,
    /// CSRF token for the sign-out form.
    pub csrf: String,
    /// Their role, in words.
    pub role: &'static str,
    /// Whether they may declare and work incidents (viewers see no forms).
    pub can_work: bool,
    /// Whether they are an admin (the tokens link).
    pub is_admin: bool,
    /// Development sign-in: show the banner.
    pub dev: bool,
    /// Whether sign-out is ours to do (not in proxy mode, where the proxy owns the session).
    pub can_sign_out: bool,
}

impl Me {
    /// The layout's view of a principal, in the server's sign-in mode.
    pub fn new(p: &Principal, mode: crate::config::AuthMode) -> Self {
        Me {
            name: p.actor.name.clone(),
            email: p.actor.email.clone(),
            csrf: p.csrf().to_string(),
            role: p.role.as_str(),
            can_work: p.role >= Role::Responder,
            is_admin: p.role >= Role::Admin,
            dev: mode == crate::config::AuthMode::Dev,
            can_sign_out: mode != crate::config::AuthMode::Proxy,
        }
    }
}
