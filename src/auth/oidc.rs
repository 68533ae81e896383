//! OpenID Connect sign-in (authorization code flow with PKCE, state and nonce).
//! (Placeholder until the client lands on this branch.)

/// `[auth.oidc]`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcSettings {
    /// Issuer URL.
    pub issuer: String,
    /// Client id.
    pub client_id: String,
    /// Env var with the client secret.
    pub client_secret_env: Option<String>,
}

impl OidcSettings {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}
