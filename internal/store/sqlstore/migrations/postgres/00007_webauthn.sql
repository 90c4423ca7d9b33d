-- +goose Up
-- WebAuthn credentials (passkeys). credential_id is the authenticator's
-- raw credential id, unique across every user, so an assertion names its
-- credential (and so its user) without a username. public_key is the COSE
-- key from the attestation. sign_count only moves forward: the service
-- advances it with a conditional UPDATE, so a counter that goes backwards
-- (a possible cloned authenticator) is refused. transports is a JSON array
-- of the hints the browser reported (usb, nfc, ble, internal, hybrid).
-- attachment is "platform", "cross-platform" or "" when unknown.
CREATE TABLE webauthn_credentials (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id    BYTEA NOT NULL UNIQUE,
    public_key       BYTEA NOT NULL,
    attestation_type TEXT NOT NULL DEFAULT '',
    aaguid           BYTEA,
    sign_count       BIGINT NOT NULL DEFAULT 0,
    transports       JSONB NOT NULL DEFAULT '[]',
    backup_eligible  BOOLEAN NOT NULL DEFAULT FALSE,
    backup_state     BOOLEAN NOT NULL DEFAULT FALSE,
    attachment       TEXT NOT NULL DEFAULT '',
    name             TEXT NOT NULL DEFAULT '',
    created_at       TIMESTAMPTZ NOT NULL,
    last_used_at     TIMESTAMPTZ
);

CREATE INDEX webauthn_credentials_user_id_idx ON webauthn_credentials (user_id, id);

-- +goose Down
DROP TABLE webauthn_credentials;
