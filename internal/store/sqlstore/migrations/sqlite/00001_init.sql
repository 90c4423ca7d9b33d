-- Signing key ring and event log. Timestamps are TEXT in the fixed-width
-- UTC layout 2006-01-02T15:04:05.000000Z (see sqlstore/dialect.go), so they
-- compare and sort correctly as strings. JSON is TEXT checked by json_valid.
-- Tables are STRICT so a wrongly typed value fails instead of being coerced.

-- +goose Up
CREATE TABLE signing_keys (
    id              TEXT PRIMARY KEY NOT NULL,
    algorithm       TEXT NOT NULL,
    public_key_pem  TEXT NOT NULL,
    private_key_enc BLOB NOT NULL,
    created_at      TEXT NOT NULL,
    retired_at      TEXT,
    expires_at      TEXT
) STRICT;

CREATE INDEX signing_keys_created_at_idx ON signing_keys (created_at);

CREATE TABLE events (
    id         TEXT PRIMARY KEY NOT NULL,
    type       TEXT NOT NULL,
    user_id    TEXT,
    actor_id   TEXT,
    data       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(data)),
    created_at TEXT NOT NULL
) STRICT;

CREATE INDEX events_created_at_idx ON events (created_at);

-- +goose Down
DROP TABLE events;
DROP TABLE signing_keys;
