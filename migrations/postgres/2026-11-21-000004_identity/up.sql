-- Identity and access (postgres). Kept in step with the other backend's migration.

-- One row per person who has signed in; the lead picker offers them.
CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    slack_user_id TEXT,
    role TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL
);

-- API tokens. The secret is never stored: only its SHA-256, looked up by the public id that
-- prefixes it (rbt_<public_id>_<secret>) and compared in constant time.
CREATE TABLE api_tokens (
    id BIGSERIAL PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_by_email TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);

-- OpenID Connect logins between the redirect to the provider and its answer. A row is deleted
-- when the answer arrives, so a state (and its nonce) works once.
CREATE TABLE login_attempts (
    state TEXT PRIMARY KEY NOT NULL,
    nonce TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    next_path TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX login_attempts_created ON login_attempts (created_at);
