-- Follow-ups (postgres): action items of an incident. Kept in step with the other backend's migration.
-- due_on is a calendar date written as ISO 8601 text (YYYY-MM-DD): it has no time or zone, it
-- sorts and compares correctly as text on both databases, and "overdue" is due_on < today (UTC).
-- jira_status is the status category key Jira last reported (new, indeterminate, done), so the
-- status sync only acts when Jira's side changes, never on a difference people made here.
CREATE TABLE follow_ups (
    id BIGSERIAL PRIMARY KEY,
    incident_id BIGINT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    owner_name TEXT NOT NULL,
    owner_email TEXT,
    due_on TEXT NOT NULL,
    status TEXT NOT NULL,
    jira_key TEXT,
    jira_url TEXT,
    jira_status TEXT,
    created_by_name TEXT NOT NULL,
    created_by_email TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    closed_at TIMESTAMP
);
CREATE INDEX follow_ups_incident ON follow_ups (incident_id, id);
-- The dashboard's overdue list: open ones, by due date.
CREATE INDEX follow_ups_status_due ON follow_ups (status, due_on);
