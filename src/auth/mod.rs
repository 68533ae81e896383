//! Who may do what: sign-in modes (OpenID Connect, trusted proxy, development), users, roles and
//! API tokens.

pub mod oidc;
