-- A client identified by a metadata document (CIMD) is one client_id shared by every
-- installation of it: its grants are told apart by the redirect URI they were issued through.
-- NULL for grants issued before this migration.
ALTER TABLE grants ADD COLUMN redirect_uri TEXT;

CREATE INDEX grants_client_id_redirect_uri ON grants (client_id, redirect_uri);

-- Remembered consent (off unless the operator sets [consent] remember_for_secs): the person who
-- approved a client (client_id and redirect URI) for a resource and scopes, in one browser (by
-- the hash of its binding cookie), is not asked again until expires_at. Revoking a grant of that
-- person, client and redirect URI deletes it.
CREATE TABLE consents (
    browser_hash TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    resource     TEXT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- space-separated scopes the person approved
    scope        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    PRIMARY KEY (browser_hash, client_id, redirect_uri, resource)
) STRICT;

CREATE INDEX consents_user_client ON consents (user_id, client_id, redirect_uri);
CREATE INDEX consents_expires_at ON consents (expires_at);
