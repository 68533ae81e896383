-- Incident roles other than the lead (which stays in incidents.lead_name/lead_email): who holds
-- the comms lead, the scribe, and any role from the config file. No row means nobody holds it.
CREATE TABLE incident_roles (
    incident_id INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    assigned_at TIMESTAMP NOT NULL,
    PRIMARY KEY (incident_id, role)
);
