-- Signed Slack slash-command requests already acted on, so a captured request replayed within
-- Slack's five-minute window is refused. Rows whose signed timestamp has left the window are
-- deleted as new requests arrive (they could not be accepted again anyway).
CREATE TABLE slack_requests_seen (
    signature TEXT PRIMARY KEY NOT NULL,
    request_ts BIGINT NOT NULL,
    seen_at TIMESTAMP NOT NULL
);
CREATE INDEX slack_requests_seen_ts ON slack_requests_seen (request_ts);
-- A slash command typed in an incident channel finds its incident by the stored channel id.
CREATE INDEX external_refs_by_value ON external_refs (integration, name, value);
