DROP TABLE idempotency_keys;
DROP TABLE outbox;
DROP TABLE timeline_entries;
DROP TABLE incident_services;
DROP TABLE incidents;
DROP TABLE app_secrets;
DROP TABLE counters;
