-- Closing an incident other than by resolving it: declined (not an incident, with the reason
-- given) or merged into another incident that carries on (merged_into_number is that incident's
-- number, which never changes; incidents are never deleted, and the merge checks the survivor in
-- the same transaction).
ALTER TABLE incidents ADD COLUMN closed_reason TEXT;
ALTER TABLE incidents ADD COLUMN merged_into_number BIGINT;
CREATE INDEX incidents_merged_into ON incidents (merged_into_number);
