-- API keys for machines: only a hash of the key is kept. A key acts for its owner, with its own
-- scopes checked against the owner's entitlement at every use.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    -- SHA-256 (hex) of the whole key
    key_hash     TEXT NOT NULL UNIQUE,
    -- the first characters of the key, to recognise it in listings
    prefix       TEXT NOT NULL,
    -- space-separated scope patterns
    scopes       TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ
);

CREATE INDEX api_keys_user_id ON api_keys (user_id);
