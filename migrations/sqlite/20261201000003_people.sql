-- People are keyed by (provider, subject), never by email: a second provider can no longer take
-- over the first one's users by asserting the same address. `users.key` stays for the rows it
-- keyed before (SQLite cannot drop a UNIQUE column in place); new people get `user:<id>`.

ALTER TABLE users ADD COLUMN disabled_at TEXT;
CREATE INDEX users_email ON users (email);

CREATE TABLE identities (
    provider      TEXT NOT NULL,
    subject       TEXT NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- the email this provider verified at the last sign-in, never an unverified one
    email         TEXT,
    -- JSON: the claims the admission and role rules read
    claims        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    last_login_at TEXT NOT NULL,
    PRIMARY KEY (provider, subject)
) STRICT;

CREATE INDEX identities_user_id ON identities (user_id);

-- Roles the operator assigned (`portcullis users roles add`).
CREATE TABLE user_roles (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, role)
) STRICT;

-- Carried over: a person keyed `sub:<provider>:<subject>` becomes that identity (provider ids
-- hold no `:`). Their stored email was never verified (a verified one would have keyed them by
-- email), so it is dropped. A person keyed `email:<address>` has no known subject: they are
-- kept as the operator's pre-provisioned people are, claimed by the next sign-in that carries
-- that verified email.
INSERT INTO identities (provider, subject, user_id, email, claims, created_at, last_login_at)
SELECT substr("key", 5, instr(substr("key", 5), ':') - 1),
       substr("key", 5 + instr(substr("key", 5), ':')),
       id, NULL, '{}', created_at, last_login_at
FROM users WHERE "key" LIKE 'sub:%:%';

UPDATE users SET email = NULL WHERE "key" LIKE 'sub:%';

