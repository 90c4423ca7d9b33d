-- Accounts: users, roles and their assignments, sessions, refresh-token
-- families and one-time tokens. Everything a user owns goes with it (ON
-- DELETE CASCADE), so deleting an account is one statement. Secrets are
-- stored only as hashes (BYTEA, unique so a hash names one token).

-- +goose Up
CREATE TABLE users (
    id                       TEXT PRIMARY KEY,
    -- Normalised (lower-cased) by the caller, so plain UNIQUE is
    -- case-insensitive in effect.
    email                    TEXT NOT NULL UNIQUE,
    email_verified           BOOLEAN NOT NULL DEFAULT FALSE,
    name                     TEXT NOT NULL DEFAULT '',
    phone_number             TEXT NOT NULL DEFAULT '',
    -- Empty for accounts without a password (passkey, magic link, social).
    password_hash            TEXT NOT NULL DEFAULT '',
    failed_logins            INTEGER NOT NULL DEFAULT 0,
    locked_until             TIMESTAMPTZ,
    locked_by_admin          BOOLEAN NOT NULL DEFAULT FALSE,
    lock_reason              TEXT NOT NULL DEFAULT '',
    mfa_enabled              BOOLEAN NOT NULL DEFAULT FALSE,
    notification_preferences JSONB NOT NULL DEFAULT '{}',
    created_at               TIMESTAMPTZ NOT NULL,
    updated_at               TIMESTAMPTZ NOT NULL,
    last_login_at            TIMESTAMPTZ
);

CREATE TABLE roles (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    -- A JSON array of permission strings; "*" grants everything.
    permissions JSONB NOT NULL DEFAULT '[]',
    -- System roles ship with Gatehouse and cannot be deleted.
    system      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

-- A plain account's own endpoints need no permission, so "user" has none.
INSERT INTO roles (id, name, description, permissions, system, created_at, updated_at) VALUES
    ('role_admin', 'admin', 'Full access to every operation.', '["*"]', TRUE, now(), now()),
    ('role_moderator', 'moderator', 'Reads and locks accounts, reads the audit log.', '["users:read", "users:lock", "audit:read"]', TRUE, now(), now()),
    ('role_user', 'user', 'A regular account.', '[]', TRUE, now(), now());

CREATE TABLE user_roles (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id    TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, role_id)
);

-- The primary key serves lookups by user; this serves the cascade from roles.
CREATE INDEX user_roles_role_id_idx ON user_roles (role_id);

CREATE TABLE sessions (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     TIMESTAMPTZ NOT NULL,
    last_active_at TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    ip_address     TEXT NOT NULL DEFAULT '',
    user_agent     TEXT NOT NULL DEFAULT '',
    device_id      TEXT NOT NULL DEFAULT '',
    location       TEXT NOT NULL DEFAULT '',
    trust_score    INTEGER NOT NULL DEFAULT 0,
    -- A JSON array of RFC 8176 method names.
    amr            JSONB NOT NULL DEFAULT '[]',
    mfa            BOOLEAN NOT NULL DEFAULT FALSE,
    auth_time      TIMESTAMPTZ NOT NULL,
    revoked_at     TIMESTAMPTZ
);

CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
-- For the cleanup's "revoked before cutoff"; most sessions are never
-- revoked, so the partial index stays small.
CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE refresh_tokens (
    id         TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash       BYTEA NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);

-- Serve the cascades from sessions and users (PostgreSQL does not index
-- referencing columns by itself).
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_user_id_idx ON refresh_tokens (user_id);

CREATE TABLE one_time_tokens (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    hash       BYTEA NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);

CREATE INDEX one_time_tokens_user_id_purpose_idx ON one_time_tokens (user_id, purpose);
CREATE INDEX one_time_tokens_expires_at_idx ON one_time_tokens (expires_at);

-- +goose Down
DROP TABLE one_time_tokens;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE user_roles;
DROP TABLE roles;
DROP TABLE users;
