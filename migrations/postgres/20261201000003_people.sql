-- People are keyed by (provider, subject), never by email: a second provider can no longer take
-- over the first one's users by asserting the same address. `users.key` stays for the rows it
-- keyed before (as on SQLite, which cannot drop it); new people get `user:<id>`.

ALTER TABLE users ADD COLUMN disabled_at TIMESTAMPTZ;
CREATE INDEX users_email ON users (email);

CREATE TABLE identities (
    provider      TEXT NOT NULL,
    subject       TEXT NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- the email this provider verified at the last sign-in, never an unverified one
    email         TEXT,
    -- the claims the admission and role rules read
    claims        JSONB NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    last_login_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (provider, subject)
);

CREATE INDEX identities_user_id ON identities (user_id);

-- Roles the operator assigned (`portcullis users roles add`).
CREATE TABLE user_roles (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, role)
);

-- Carried over: a person keyed `sub:<provider>:<subject>` becomes that identity (provider ids
-- hold no `:`). Their stored email was never verified (a verified one would have keyed them by
-- email), so it is dropped. A person keyed `email:<address>` has no known subject: they are
-- kept as the operator's pre-provisioned people are, claimed by the next sign-in that carries
-- that verified email.
INSERT INTO identities (provider, subject, user_id, email, claims, created_at, last_login_at)
SELECT split_part("key", ':', 2),
       substr("key", 5 + strpos(substr("key", 5), ':')),
       id, NULL, '{}'::jsonb, created_at, last_login_at
FROM users WHERE "key" LIKE 'sub:%:%';

UPDATE users SET email = NULL WHERE "key" LIKE 'sub:%';

