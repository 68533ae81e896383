//! OpenID Connect sign-in (authorization code flow with PKCE, state and nonce).
