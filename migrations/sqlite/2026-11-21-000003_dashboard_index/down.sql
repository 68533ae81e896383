CREATE INDEX incidents_status_declared ON incidents (status, declared_at);
DROP INDEX incidents_status_declared_id;
