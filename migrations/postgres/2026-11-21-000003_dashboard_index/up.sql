-- The dashboard lists incidents of a status newest first, ties broken by id. With id in the index
-- the database walks it in that order and stops after one page, instead of sorting every past
-- incident (PostgreSQL indexes, unlike SQLite's, do not carry the row id implicitly).
CREATE INDEX incidents_status_declared_id ON incidents (status, declared_at, id);
DROP INDEX incidents_status_declared;
