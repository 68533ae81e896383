-- Prometheus Alertmanager groups and their alerts (postgres). Kept in step with the other backend.
-- One row per Alertmanager group, keyed by the SHA-256 of its groupKey (which can be long): the
-- unique key is what makes concurrent first notifications of a group open exactly one incident.
-- incident_id is the group's current incident; a group that fires again after its incident was
-- closed gets a new incident and the row moves to it (the old one stays on the timelines).
CREATE TABLE alert_groups (
    id BIGSERIAL PRIMARY KEY,
    group_key_hash TEXT NOT NULL UNIQUE,
    group_key TEXT NOT NULL,
    receiver TEXT NOT NULL,
    incident_id BIGINT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    external_url TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX alert_groups_incident ON alert_groups (incident_id);

-- One row per alert (fingerprint + startsAt) an incident has seen: the unique key is the
-- deduplication of repeated notifications. starts_at is kept to the microsecond on both backends.
-- firing_entry_id and resolved_entry_id are the timeline entries that recorded it.
CREATE TABLE alerts (
    id BIGSERIAL PRIMARY KEY,
    group_id BIGINT NOT NULL REFERENCES alert_groups (id) ON DELETE CASCADE,
    incident_id BIGINT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    fingerprint TEXT NOT NULL,
    starts_at TIMESTAMP NOT NULL,
    ends_at TIMESTAMP,
    status TEXT NOT NULL,
    labels TEXT NOT NULL,
    annotations TEXT NOT NULL,
    generator_url TEXT NOT NULL,
    firing_entry_id BIGINT REFERENCES timeline_entries (id) ON DELETE SET NULL,
    resolved_entry_id BIGINT REFERENCES timeline_entries (id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (incident_id, fingerprint, starts_at)
);
CREATE INDEX alerts_group ON alerts (group_id);
