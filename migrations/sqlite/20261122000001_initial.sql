-- Timestamps are TEXT in one fixed-width UTC form, `YYYY-MM-DDTHH:MM:SS.ffffffZ` (microseconds,
-- like Postgres), written by the store itself: fixed width makes text order time order, so
-- `expires_at > ?` and the indexes work on plain strings and the file stays readable.
-- JSON documents and string lists are TEXT holding JSON.

CREATE TABLE clients (
    client_id                  TEXT PRIMARY KEY NOT NULL,
    secret_hash                TEXT,
    token_endpoint_auth_method TEXT NOT NULL,
    client_name                TEXT,
    redirect_uris              TEXT NOT NULL,
    grant_types                TEXT NOT NULL,
    response_types             TEXT NOT NULL,
    scope                      TEXT,
    metadata                   TEXT NOT NULL,
    created_at                 TEXT NOT NULL
) STRICT;

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    "key"         TEXT NOT NULL UNIQUE,
    email         TEXT,
    name          TEXT,
    created_at    TEXT NOT NULL,
    last_login_at TEXT NOT NULL
) STRICT;

CREATE TABLE flows (
    id         TEXT PRIMARY KEY NOT NULL,
    data       TEXT NOT NULL,
    expires_at TEXT NOT NULL
) STRICT;

CREATE INDEX flows_expires_at ON flows (expires_at);

-- No foreign key on client_id: a client identified by a metadata document URL (CIMD) need not
-- have a row in `clients`.
CREATE TABLE grants (
    id                         TEXT PRIMARY KEY NOT NULL,
    user_id                    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id                  TEXT NOT NULL,
    provider                   TEXT NOT NULL,
    scope                      TEXT NOT NULL,
    resource                   TEXT NOT NULL,
    upstream_access_token_enc  TEXT,
    upstream_refresh_token_enc TEXT,
    upstream_id_token_enc      TEXT,
    upstream_expires_at        TEXT,
    created_at                 TEXT NOT NULL,
    revoked_at                 TEXT
) STRICT;

CREATE INDEX grants_user_id ON grants (user_id);
CREATE INDEX grants_client_id ON grants (client_id);
CREATE INDEX grants_revoked_at ON grants (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE authorization_codes (
    code_hash      TEXT PRIMARY KEY NOT NULL,
    grant_id       TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    redeemed_at    TEXT
) STRICT;

CREATE INDEX authorization_codes_grant_id ON authorization_codes (grant_id);
CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);

CREATE TABLE refresh_tokens (
    token_hash    TEXT PRIMARY KEY NOT NULL,
    grant_id      TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    client_id     TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    rotated_at    TEXT,
    successor_enc TEXT
) STRICT;

CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE revoked_access_tokens (
    jti        TEXT PRIMARY KEY NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT NOT NULL
) STRICT;

CREATE INDEX revoked_access_tokens_revoked_at ON revoked_access_tokens (revoked_at);
CREATE INDEX revoked_access_tokens_expires_at ON revoked_access_tokens (expires_at);

CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY NOT NULL,
    alg             TEXT NOT NULL,
    private_key_enc TEXT NOT NULL,
    public_jwk      TEXT NOT NULL,
    created_at      TEXT NOT NULL
) STRICT;
