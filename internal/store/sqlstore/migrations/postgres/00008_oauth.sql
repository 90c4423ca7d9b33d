-- +goose Up
-- Links between users and accounts at external identity providers (social
-- login). An external account is identified by (provider, subject), the
-- provider's stable user id, never by email: email is only what the
-- provider reported at linking, kept for display. No provider tokens are
-- stored.
CREATE TABLE oauth_accounts (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider   TEXT NOT NULL,
    subject    TEXT NOT NULL,
    email      TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (provider, subject)
);

CREATE INDEX oauth_accounts_user_id_idx ON oauth_accounts (user_id, id);

-- +goose Down
DROP TABLE oauth_accounts;
