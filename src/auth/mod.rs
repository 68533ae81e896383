//! Who may do what: sign-in modes (OpenID Connect, trusted proxy, development), users, roles and
//! API tokens.
//!
//! Every request is resolved once, by `web::session::resolve_principal`, into a [`Principal`]:
//! a person signed in through a session cookie or a trusted proxy, or a script holding an API
//! token. Handlers then ask for a [`Permission`] through the one extractor `web::session::Access`;
//! the rules of who holds which permission live here, as pure functions.

pub mod oidc;
pub mod proxy;
pub mod slack_signature;
pub mod tokens;

use crate::config::AuthSettings;
use crate::domain::Actor;

/// What a signed-in person may do, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads incidents; changes nothing.
    Viewer,
    /// Declares and works incidents. Everyone signed in, unless configured otherwise.
    Responder,
    /// Also manages API tokens and sees who has signed in.
    Admin,
}

impl Role {
    /// Stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Responder => "responder",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "viewer" => Some(Role::Viewer),
            "responder" => Some(Role::Responder),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// What an API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// List and read incidents.
    IncidentsRead,
    /// Change status, severity and lead; add notes.
    IncidentsWrite,
    /// Declare incidents.
    IncidentsDeclare,
    /// Scrape the operational metrics at `/metrics`.
    MetricsRead,
}

impl Scope {
    /// Every scope, in display order.
    pub const ALL: [Scope; 4] = [
        Scope::IncidentsRead,
        Scope::IncidentsWrite,
        Scope::IncidentsDeclare,
        Scope::MetricsRead,
    ];

    /// The scope's name, as written in tokens and documentation.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::IncidentsRead => "incidents:read",
            Scope::IncidentsWrite => "incidents:write",
            Scope::IncidentsDeclare => "incidents:declare",
            Scope::MetricsRead => "metrics:read",
        }
    }

    /// Parses a scope name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// What the scope allows, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Scope::IncidentsRead => "list and read incidents, their timelines and deliveries",
            Scope::IncidentsWrite => "change status, severity and lead, and add notes",
            Scope::IncidentsDeclare => "declare incidents",
            Scope::MetricsRead => "scrape the operational metrics at /metrics (for Prometheus)",
        }
    }
}

/// Parses a space- or comma-separated scope list; unknown names are an error naming them.
pub fn parse_scopes(raw: &str) -> Result<Vec<Scope>, String> {
    let mut scopes = Vec::new();
    for part in raw.split([' ', ',']).map(str::trim).filter(|p| !p.is_empty()) {
        let scope = Scope::parse(part).ok_or_else(|| format!("unknown scope \u{201c}{part}\u{201d}"))?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    scopes.sort_unstable();
    Ok(scopes)
}

/// Writes scopes as stored: space-separated names.
pub fn format_scopes(scopes: &[Scope]) -> String {
    scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
}

/// How a request proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A session cookie (OpenID Connect or development sign-in); forms echo `csrf`.
    Session {
        /// The CSRF token bound to this session.
        csrf: String,
        /// The session's id (its row in `sessions`), so signing out can end it.
        sid: String,
    },
    /// Headers from a trusted authenticating proxy; forms echo `csrf`, derived from the person.
    Proxy {
        /// The CSRF token bound to this person.
        csrf: String,
    },
    /// An API token (only on `/api/`).
    Token {
        /// The token's row id.
        id: i64,
        /// What it may do.
        scopes: Vec<Scope>,
    },
}

/// Who is asking, resolved once per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The name and email changes are recorded under.
    pub actor: Actor,
    /// For people: their role. Tokens carry [`Role::Responder`] but are limited by their scopes.
    pub role: Role,
    /// How they proved it.
    pub via: Via,
}

impl Principal {
    /// The CSRF token a person's forms must carry (empty for tokens, which do not use forms).
    pub fn csrf(&self) -> &str {
        match &self.via {
            Via::Session { csrf, .. } | Via::Proxy { csrf } => csrf,
            Via::Token { .. } => "",
        }
    }

    /// Whether this principal holds a permission.
    pub fn holds(&self, need: Need) -> bool {
        match &self.via {
            Via::Token { scopes, .. } => need.scope.is_some_and(|s| scopes.contains(&s)),
            Via::Session { .. } | Via::Proxy { .. } => self.role >= need.role,
        }
    }
}

/// What a handler needs: a role for people, a scope for tokens (`None`: tokens never qualify).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// The least role a person needs.
    pub role: Role,
    /// The scope a token needs.
    pub scope: Option<Scope>,
    /// What is being done, in words, for the refusal message.
    pub doing: &'static str,
}

/// A permission a handler asks for through the `Access<P>` extractor.
pub trait Permission {
    /// What it takes.
    const NEED: Need;
}

/// Read incidents.
pub struct Read;
/// Declare an incident.
pub struct Declare;
/// Work an incident: status, severity, lead, notes, retries.
pub struct Work;
/// Manage tokens and see users.
pub struct Administer;

impl Permission for Read {
    const NEED: Need = Need {
        role: Role::Viewer,
        scope: Some(Scope::IncidentsRead),
        doing: "read incidents",
    };
}
impl Permission for Declare {
    const NEED: Need = Need {
        role: Role::Responder,
        scope: Some(Scope::IncidentsDeclare),
        doing: "declare incidents",
    };
}
impl Permission for Work {
    const NEED: Need = Need {
        role: Role::Responder,
        scope: Some(Scope::IncidentsWrite),
        doing: "change incidents",
    };
}
impl Permission for Administer {
    const NEED: Need = Need {
        role: Role::Admin,
        scope: None,
        doing: "manage API tokens",
    };
}

/// The role configuration gives a person, from their email and groups.
///
/// Admin when the email or a group is listed as admin. Otherwise a responder, unless the email is
/// listed as a viewer, or `responder_groups` is set and they are in none of them. In development
/// sign-in with no admin configured, everyone who is not a viewer is an admin.
pub fn role_for(auth: &AuthSettings, email: &str, groups: &[String]) -> Role {
    let email = email.to_ascii_lowercase();
    let listed = |list: &[String]| list.iter().any(|e| e.eq_ignore_ascii_case(&email));
    let in_any = |list: &[String]| groups.iter().any(|g| list.iter().any(|l| l == g));
    // Trying it out on one machine (dev mode, nobody named admin): whoever is there is the admin,
    // so API tokens can be made without writing a configuration first.
    let dev_without_admins =
        auth.mode == crate::config::AuthMode::Dev && auth.admin_emails.is_empty() && auth.admin_groups.is_empty();
    if listed(&auth.viewer_emails) || (!auth.responder_groups.is_empty() && !in_any(&auth.responder_groups)) {
        if listed(&auth.admin_emails) || in_any(&auth.admin_groups) {
            Role::Admin
        } else {
            Role::Viewer
        }
    } else if listed(&auth.admin_emails) || in_any(&auth.admin_groups) || dev_without_admins {
        Role::Admin
    } else {
        Role::Responder
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> AuthSettings {
        AuthSettings {
            admin_emails: vec!["Boss@Example.com".into()],
            admin_groups: vec!["sre-leads".into()],
            viewer_emails: vec!["auditor@example.com".into()],
            ..AuthSettings::default()
        }
    }

    #[test]
    fn roles_come_from_emails_and_groups() {
        let a = auth();
        assert_eq!(role_for(&a, "boss@example.com", &[]), Role::Admin);
        assert_eq!(role_for(&a, "x@example.com", &["sre-leads".into()]), Role::Admin);
        assert_eq!(role_for(&a, "AUDITOR@example.com", &[]), Role::Viewer);
        assert_eq!(role_for(&a, "anyone@example.com", &[]), Role::Responder);
        let restricted = AuthSettings {
            responder_groups: vec!["eng".into()],
            ..a
        };
        assert_eq!(role_for(&restricted, "anyone@example.com", &[]), Role::Viewer);
        assert_eq!(
            role_for(&restricted, "anyone@example.com", &["eng".into()]),
            Role::Responder
        );
    }

    #[test]
    fn people_need_a_role_and_tokens_need_a_scope() {
        let person = |role| Principal {
            actor: Actor::system(),
            role,
            via: Via::Session {
                csrf: "c".into(),
                sid: "s".into(),
            },
        };
        assert!(person(Role::Viewer).holds(Read::NEED));
        assert!(!person(Role::Viewer).holds(Work::NEED));
        assert!(!person(Role::Viewer).holds(Declare::NEED));
        assert!(person(Role::Responder).holds(Declare::NEED));
        assert!(!person(Role::Responder).holds(Administer::NEED));
        assert!(person(Role::Admin).holds(Administer::NEED));

        let token = Principal {
            actor: Actor::system(),
            role: Role::Responder,
            via: Via::Token {
                id: 1,
                scopes: vec![Scope::IncidentsRead],
            },
        };
        assert!(token.holds(Read::NEED));
        assert!(!token.holds(Work::NEED));
        assert!(!token.holds(Declare::NEED));
        assert!(!token.holds(Administer::NEED), "no token administers");
    }

    #[test]
    fn scopes_parse_strictly() {
        assert_eq!(
            parse_scopes("incidents:write, incidents:read incidents:read").unwrap(),
            vec![Scope::IncidentsRead, Scope::IncidentsWrite]
        );
        assert!(parse_scopes("incidents:admin").unwrap_err().contains("incidents:admin"));
        assert_eq!(
            format_scopes(&[Scope::IncidentsRead, Scope::IncidentsDeclare]),
            "incidents:read incidents:declare"
        );
    }
}
