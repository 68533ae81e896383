DROP TABLE external_refs;
DROP INDEX outbox_sequence;
ALTER TABLE outbox DROP COLUMN target;
ALTER TABLE outbox DROP COLUMN sequence_key;
