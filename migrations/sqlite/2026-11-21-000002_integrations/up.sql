-- Deliveries of one incident to one integration run in order (channel before posts in it).
ALTER TABLE outbox ADD COLUMN sequence_key TEXT;
-- Where a delivery goes, in words, for the incident page (a channel, a project, a host).
ALTER TABLE outbox ADD COLUMN target TEXT;
CREATE INDEX outbox_sequence ON outbox (sequence_key, id);

-- What integrations created outside for an incident (channel id, ticket key, message ts), and
-- the markers they leave before a call whose outcome could be lost in a crash.
CREATE TABLE external_refs (
    incident_id INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    integration TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    url TEXT,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (incident_id, integration, name)
);
