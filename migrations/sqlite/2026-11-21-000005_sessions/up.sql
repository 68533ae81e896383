-- Sessions that are signed in. The session cookie (a signed JWT) names its row by id; signing out
-- deletes the row, so a copied cookie stops working at once rather than at its expiry.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);
