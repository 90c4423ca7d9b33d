-- Accounts: users, roles and their assignments, sessions, refresh-token
-- families and one-time tokens. Everything a user owns goes with it (ON
-- DELETE CASCADE; foreign keys are enforced by the DSN's pragma), so
-- deleting an account is one statement. Secrets are stored only as hashes
-- (BLOB, unique so a hash names one token). Timestamps are fixed-width UTC
-- text, JSON is TEXT checked by json_valid, booleans are INTEGER 0/1 (STRICT
-- tables have no BOOLEAN; database/sql scans 0/1 into bool).

-- +goose Up
CREATE TABLE users (
    id                       TEXT PRIMARY KEY NOT NULL,
    -- Normalised (lower-cased) by the caller, so plain UNIQUE is
    -- case-insensitive in effect.
    email                    TEXT NOT NULL UNIQUE,
    email_verified           INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
    name                     TEXT NOT NULL DEFAULT '',
    phone_number             TEXT NOT NULL DEFAULT '',
    -- Empty for accounts without a password (passkey, magic link, social).
    password_hash            TEXT NOT NULL DEFAULT '',
    failed_logins            INTEGER NOT NULL DEFAULT 0,
    locked_until             TEXT,
    locked_by_admin          INTEGER NOT NULL DEFAULT 0 CHECK (locked_by_admin IN (0, 1)),
    lock_reason              TEXT NOT NULL DEFAULT '',
    mfa_enabled              INTEGER NOT NULL DEFAULT 0 CHECK (mfa_enabled IN (0, 1)),
    notification_preferences TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(notification_preferences)),
    created_at               TEXT NOT NULL,
    updated_at               TEXT NOT NULL,
    last_login_at            TEXT
) STRICT;

CREATE TABLE roles (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    -- A JSON array of permission strings; "*" grants everything.
    permissions TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(permissions)),
    -- System roles ship with Gatehouse and cannot be deleted.
    system      INTEGER NOT NULL DEFAULT 0 CHECK (system IN (0, 1)),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;

-- A plain account's own endpoints need no permission, so "user" has none.
-- strftime's %f is seconds with milliseconds; the literal 000 pads it to
-- the six fractional digits of the fixed-width layout.
INSERT INTO roles (id, name, description, permissions, system, created_at, updated_at) VALUES
    ('role_admin', 'admin', 'Full access to every operation.', '["*"]', 1,
        strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'), strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    ('role_moderator', 'moderator', 'Reads and locks accounts, reads the audit log.', '["users:read", "users:lock", "audit:read"]', 1,
        strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'), strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    ('role_user', 'user', 'A regular account.', '[]', 1,
        strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'), strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'));

CREATE TABLE user_roles (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id    TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, role_id)
) STRICT;

-- The primary key serves lookups by user; this serves the cascade from roles.
CREATE INDEX user_roles_role_id_idx ON user_roles (role_id);

CREATE TABLE sessions (
    id             TEXT PRIMARY KEY NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     TEXT NOT NULL,
    last_active_at TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    ip_address     TEXT NOT NULL DEFAULT '',
    user_agent     TEXT NOT NULL DEFAULT '',
    device_id      TEXT NOT NULL DEFAULT '',
    location       TEXT NOT NULL DEFAULT '',
    trust_score    INTEGER NOT NULL DEFAULT 0,
    -- A JSON array of RFC 8176 method names.
    amr            TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(amr)),
    mfa            INTEGER NOT NULL DEFAULT 0 CHECK (mfa IN (0, 1)),
    auth_time      TEXT NOT NULL,
    revoked_at     TEXT
) STRICT;

CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
-- For the cleanup's "revoked before cutoff"; most sessions are never
-- revoked, so the partial index stays small.
CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE refresh_tokens (
    id         TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash       BLOB NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
) STRICT;

-- Serve the cascades from sessions and users (SQLite, too, does not index
-- referencing columns by itself).
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_user_id_idx ON refresh_tokens (user_id);

CREATE TABLE one_time_tokens (
    id         TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    hash       BLOB NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
) STRICT;

CREATE INDEX one_time_tokens_user_id_purpose_idx ON one_time_tokens (user_id, purpose);
CREATE INDEX one_time_tokens_expires_at_idx ON one_time_tokens (expires_at);

-- +goose Down
DROP TABLE one_time_tokens;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE user_roles;
DROP TABLE roles;
DROP TABLE users;
