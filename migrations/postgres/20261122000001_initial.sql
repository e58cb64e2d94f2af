-- Timestamps are TIMESTAMPTZ (microsecond precision). JSON documents and string lists are JSONB.

CREATE TABLE clients (
    client_id                  TEXT PRIMARY KEY,
    secret_hash                TEXT,
    token_endpoint_auth_method TEXT NOT NULL,
    client_name                TEXT,
    redirect_uris              JSONB NOT NULL,
    grant_types                JSONB NOT NULL,
    response_types             JSONB NOT NULL,
    scope                      TEXT,
    metadata                   JSONB NOT NULL,
    created_at                 TIMESTAMPTZ NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    "key"         TEXT NOT NULL UNIQUE,
    email         TEXT,
    name          TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    last_login_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE flows (
    id         TEXT PRIMARY KEY,
    data       JSONB NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX flows_expires_at ON flows (expires_at);

-- No foreign key on client_id: a client identified by a metadata document URL (CIMD) need not
-- have a row in `clients`.
CREATE TABLE grants (
    id                         TEXT PRIMARY KEY,
    user_id                    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id                  TEXT NOT NULL,
    provider                   TEXT NOT NULL,
    scope                      TEXT NOT NULL,
    resource                   TEXT NOT NULL,
    upstream_access_token_enc  TEXT,
    upstream_refresh_token_enc TEXT,
    upstream_id_token_enc      TEXT,
    upstream_expires_at        TIMESTAMPTZ,
    created_at                 TIMESTAMPTZ NOT NULL,
    revoked_at                 TIMESTAMPTZ
);

CREATE INDEX grants_user_id ON grants (user_id);
CREATE INDEX grants_client_id ON grants (client_id);
CREATE INDEX grants_revoked_at ON grants (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE authorization_codes (
    code_hash      TEXT PRIMARY KEY,
    grant_id       TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    redeemed_at    TIMESTAMPTZ
);

CREATE INDEX authorization_codes_grant_id ON authorization_codes (grant_id);
CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);

CREATE TABLE refresh_tokens (
    token_hash    TEXT PRIMARY KEY,
    grant_id      TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    client_id     TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    rotated_at    TIMESTAMPTZ,
    successor_enc TEXT
);

CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE revoked_access_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX revoked_access_tokens_revoked_at ON revoked_access_tokens (revoked_at);
CREATE INDEX revoked_access_tokens_expires_at ON revoked_access_tokens (expires_at);

CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY,
    alg             TEXT NOT NULL,
    private_key_enc TEXT NOT NULL,
    public_jwk      TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL
);
