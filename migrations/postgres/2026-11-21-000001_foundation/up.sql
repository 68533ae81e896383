-- Foundation schema (PostgreSQL). Kept in step with migrations/sqlite: same tables, same columns,
-- same names; only the type spelling differs. Times are UTC, stored as TIMESTAMP text.

CREATE TABLE counters (
    name TEXT PRIMARY KEY NOT NULL,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('incident_number', 0);
INSERT INTO counters (name, value) VALUES ('write_lock', 0);

CREATE TABLE app_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE incidents (
    id BIGSERIAL PRIMARY KEY,
    number BIGINT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    summary TEXT NOT NULL,
    declared_by_name TEXT NOT NULL,
    declared_by_email TEXT NOT NULL,
    lead_name TEXT,
    lead_email TEXT,
    drill BOOLEAN NOT NULL,
    impact_started_at TIMESTAMP,
    declared_at TIMESTAMP NOT NULL,
    mitigated_at TIMESTAMP,
    resolved_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX incidents_status_declared ON incidents (status, declared_at);
CREATE INDEX incidents_declared ON incidents (declared_at);

CREATE TABLE incident_services (
    incident_id BIGINT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    service TEXT NOT NULL,
    PRIMARY KEY (incident_id, service)
);
CREATE INDEX incident_services_service ON incident_services (service, incident_id);

CREATE TABLE timeline_entries (
    id BIGSERIAL PRIMARY KEY,
    incident_id BIGINT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    at TIMESTAMP NOT NULL,
    actor_name TEXT NOT NULL,
    actor_email TEXT NOT NULL,
    kind TEXT NOT NULL,
    field TEXT,
    old_value TEXT,
    new_value TEXT,
    body TEXT
);
CREATE INDEX timeline_entries_incident ON timeline_entries (incident_id, id);

CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    incident_id BIGINT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    timeline_entry_id BIGINT REFERENCES timeline_entries (id) ON DELETE SET NULL,
    notifier TEXT NOT NULL,
    event TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    lease_until TIMESTAMP,
    lease_token TEXT,
    last_error TEXT,
    external_id TEXT,
    external_url TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    delivered_at TIMESTAMP
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_incident ON outbox (incident_id, id);

CREATE TABLE idempotency_keys (
    key TEXT PRIMARY KEY NOT NULL,
    actor_email TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    incident_number BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
