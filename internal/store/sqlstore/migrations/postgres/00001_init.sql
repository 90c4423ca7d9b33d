-- Signing key ring and event log. Timestamps are TIMESTAMPTZ (microsecond
-- precision); the SQLite twin of this file stores them as fixed-width text.

-- +goose Up
CREATE TABLE signing_keys (
    id              TEXT PRIMARY KEY,
    algorithm       TEXT NOT NULL,
    public_key_pem  TEXT NOT NULL,
    private_key_enc BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    retired_at      TIMESTAMPTZ,
    expires_at      TIMESTAMPTZ
);

CREATE INDEX signing_keys_created_at_idx ON signing_keys (created_at);

CREATE TABLE events (
    id         TEXT PRIMARY KEY,
    type       TEXT NOT NULL,
    user_id    TEXT,
    actor_id   TEXT,
    data       JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX events_created_at_idx ON events (created_at);

-- +goose Down
DROP TABLE events;
DROP TABLE signing_keys;
