-- Key times: when the incident was detected and when responders mustered (the first action by
-- someone other than the declarer, or set by hand). Both unknown until recorded.
ALTER TABLE incidents ADD COLUMN detected_at TIMESTAMP;
ALTER TABLE incidents ADD COLUMN mustered_at TIMESTAMP;
-- The IANA time zone a person reads times in (e.g. Europe/Paris); NULL means UTC.
ALTER TABLE users ADD COLUMN time_zone TEXT;
