DROP TABLE nudges;
DROP TABLE status_updates;
