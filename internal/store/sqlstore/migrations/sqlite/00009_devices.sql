-- Devices: one row per user per fingerprint (internal/device), and the
-- risk engine's per-user sign-in profile (internal/risk).
--
-- Sessions name their device in device_ref (sessions.device_id keeps the
-- client's own id, as sent). Removing a device ends its sessions through
-- the device service (revoked, recorded, deny-listed) before the row goes;
-- there is no foreign key, so the cleanup job can still find the sessions
-- of the devices it has just deleted (and a dangling reference is harmless:
-- the join to devices finds nothing).

-- +goose Up
CREATE TABLE devices (
    id            TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    fingerprint   TEXT NOT NULL,
    name          TEXT NOT NULL DEFAULT '',
    user_agent    TEXT NOT NULL DEFAULT '',
    trusted       INTEGER NOT NULL DEFAULT 0 CHECK (trusted IN (0, 1)),
    first_seen_at TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    last_ip       TEXT NOT NULL DEFAULT '',
    UNIQUE (user_id, fingerprint)
) STRICT;

-- The unique constraint serves lookups and lists by user; this serves the
-- cleanup of unused devices.
CREATE INDEX devices_last_seen_at_idx ON devices (last_seen_at);

ALTER TABLE sessions ADD COLUMN device_ref TEXT;
CREATE INDEX sessions_device_ref_idx ON sessions (device_ref) WHERE device_ref IS NOT NULL;

CREATE TABLE login_profiles (
    user_id    TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    data       TEXT NOT NULL CHECK (json_valid(data)),
    updated_at TEXT NOT NULL
) STRICT;

-- +goose Down
DROP TABLE login_profiles;
DROP INDEX sessions_device_ref_idx;
ALTER TABLE sessions DROP COLUMN device_ref;
DROP TABLE devices;
