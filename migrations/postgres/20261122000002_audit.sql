-- The audit trail: one row per tool call, sign-in, token issued/refreshed/revoked or refused
-- request. No foreign keys: the trail outlives the users, clients and grants it names.
-- Retention is not handled here (`purge_expired` leaves this table alone).

CREATE TABLE audit_events (
    id             TEXT PRIMARY KEY,
    time           TIMESTAMPTZ NOT NULL,
    kind           TEXT NOT NULL,
    request_id     TEXT,
    user_id        TEXT,
    user_email     TEXT,
    client_id      TEXT,
    backend        TEXT,
    tool           TEXT,
    decision       TEXT NOT NULL CHECK (decision IN ('allowed', 'denied')),
    reason         TEXT,
    outcome        TEXT,
    latency_ms     BIGINT,
    response_bytes BIGINT
);

CREATE INDEX audit_events_time ON audit_events (time);
CREATE INDEX audit_events_user_id_time ON audit_events (user_id, time);
-- `portcullis audit --user` matches the id or the email.
CREATE INDEX audit_events_user_email_time ON audit_events (user_email, time);
CREATE INDEX audit_events_tool_time ON audit_events (tool, time);
