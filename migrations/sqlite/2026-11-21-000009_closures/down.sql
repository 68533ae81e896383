DROP INDEX incidents_merged_into;
ALTER TABLE incidents DROP COLUMN merged_into_number;
ALTER TABLE incidents DROP COLUMN closed_reason;
