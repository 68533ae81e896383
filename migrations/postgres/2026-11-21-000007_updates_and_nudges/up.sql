-- Status updates for stakeholders: what we know, what we are doing, and when the next update is
-- due. Each is also a timeline entry (kind status_update); this table keeps the parts apart.
CREATE TABLE status_updates (
    id BIGSERIAL PRIMARY KEY,
    incident_id BIGINT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    timeline_entry_id BIGINT NOT NULL REFERENCES timeline_entries (id) ON DELETE CASCADE,
    at TIMESTAMP NOT NULL,
    author_name TEXT NOT NULL,
    author_email TEXT NOT NULL,
    known TEXT NOT NULL,
    doing TEXT NOT NULL,
    next_update_at TIMESTAMP
);
CREATE INDEX status_updates_incident ON status_updates (incident_id, id);

-- Nudges sent: one row per incident, kind and period. The unique key is what makes a nudge go
-- out once per period however many processes look for overdue incidents at the same moment.
CREATE TABLE nudges (
    id BIGSERIAL PRIMARY KEY,
    incident_id BIGINT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    period TEXT NOT NULL,
    at TIMESTAMP NOT NULL,
    UNIQUE (incident_id, kind, period)
);
