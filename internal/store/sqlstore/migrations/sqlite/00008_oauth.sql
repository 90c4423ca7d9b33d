-- +goose Up
-- Links between users and accounts at external identity providers (social
-- login). An external account is identified by (provider, subject), the
-- provider's stable user id, never by email: email is only what the
-- provider reported at linking, kept for display. No provider tokens are
-- stored. Timestamps are fixed-width UTC text (see 00002_accounts.sql).
CREATE TABLE oauth_accounts (
    id         TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider   TEXT NOT NULL,
    subject    TEXT NOT NULL,
    email      TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    UNIQUE (provider, subject)
) STRICT;

CREATE INDEX oauth_accounts_user_id_idx ON oauth_accounts (user_id, id);

-- +goose Down
DROP TABLE oauth_accounts;
