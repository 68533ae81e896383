ALTER TABLE users DROP COLUMN time_zone;
ALTER TABLE incidents DROP COLUMN mustered_at;
ALTER TABLE incidents DROP COLUMN detected_at;
