-- +goose Up
-- Second factors. A factor is written at setup and counts only once
-- activated_at is set (the user proved a code from it). TOTP secrets are
-- sealed under the master key; last_used_step makes each TOTP code single
-- use (a conditional UPDATE advances it). Backup codes are stored as
-- SHA-256 hashes and spent with a conditional UPDATE, so of concurrent
-- uses of one code exactly one succeeds. SMS codes live in
-- one_time_tokens (purpose mfa_sms).
CREATE TABLE mfa_factors (
    id             TEXT PRIMARY KEY NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    method         TEXT NOT NULL CHECK (method IN ('totp', 'sms')),
    secret         BLOB,
    phone_number   TEXT NOT NULL DEFAULT '',
    last_used_step INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    activated_at   TEXT
) STRICT;

CREATE INDEX mfa_factors_user_id_idx ON mfa_factors (user_id);

CREATE TABLE mfa_backup_codes (
    id         TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash       BLOB NOT NULL,
    created_at TEXT NOT NULL,
    used_at    TEXT,
    UNIQUE (user_id, hash)
) STRICT;

-- +goose Down
DROP TABLE mfa_backup_codes;
DROP TABLE mfa_factors;
