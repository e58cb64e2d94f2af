-- Step-up requests: a grant whose access token was refused a scope at the gateway. The next
-- refresh of that grant within a short window answers `invalid_grant` when the person may have
-- the scope, so that clients which refresh on a 403 (the TypeScript SDK 1.x) authorize again,
-- asking for it, instead of getting the same scopes back.
CREATE TABLE step_ups (
    grant_id     TEXT PRIMARY KEY REFERENCES grants (id) ON DELETE CASCADE,
    -- the scope the refused call required
    scope        TEXT NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL
);
