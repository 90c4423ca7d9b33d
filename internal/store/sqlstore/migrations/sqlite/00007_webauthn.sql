-- +goose Up
-- WebAuthn credentials (passkeys). credential_id is the authenticator's
-- raw credential id, unique across every user, so an assertion names its
-- credential (and so its user) without a username. public_key is the COSE
-- key from the attestation. sign_count only moves forward: the service
-- advances it with a conditional UPDATE, so a counter that goes backwards
-- (a possible cloned authenticator) is refused. transports is a JSON array
-- of the hints the browser reported (usb, nfc, ble, internal, hybrid).
-- attachment is "platform", "cross-platform" or "" when unknown.
-- Timestamps are fixed-width UTC text, JSON is TEXT checked by json_valid,
-- booleans are INTEGER 0/1 (see 00002_accounts.sql).
CREATE TABLE webauthn_credentials (
    id               TEXT PRIMARY KEY NOT NULL,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id    BLOB NOT NULL UNIQUE,
    public_key       BLOB NOT NULL,
    attestation_type TEXT NOT NULL DEFAULT '',
    aaguid           BLOB,
    sign_count       INTEGER NOT NULL DEFAULT 0,
    transports       TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(transports)),
    backup_eligible  INTEGER NOT NULL DEFAULT 0 CHECK (backup_eligible IN (0, 1)),
    backup_state     INTEGER NOT NULL DEFAULT 0 CHECK (backup_state IN (0, 1)),
    attachment       TEXT NOT NULL DEFAULT '',
    name             TEXT NOT NULL DEFAULT '',
    created_at       TEXT NOT NULL,
    last_used_at     TEXT
) STRICT;

CREATE INDEX webauthn_credentials_user_id_idx ON webauthn_credentials (user_id, id);

-- +goose Down
DROP TABLE webauthn_credentials;
