//! One module per page; each `*Page` template struct lives next to the handler that fills it.

pub mod assets;
pub mod dashboard;
pub mod declare;
pub mod health;
pub mod identify;
pub mod incident;

use crate::web::session::CurrentUser;

/// What the layout needs about the person looking.
pub struct Me {
    /// Display name.
    pub name: String,
    /// Email.
    pub email: String,
    /// CSRF token for the sign-out form.
    pub csrf: String,
}

impl From<&CurrentUser> for Me {
    fn from(u: &CurrentUser) -> Self {
        Me {
            name: u.actor.name.clone(),
            email: u.actor.email.clone(),
            csrf: u.csrf.clone(),
        }
    }
}
