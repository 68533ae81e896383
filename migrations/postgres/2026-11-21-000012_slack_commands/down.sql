DROP INDEX external_refs_by_value;
DROP TABLE slack_requests_seen;
