-- The session an authorization code's exchange started, so that a replay
-- of the code ends it (RFC 6749 §4.1.2). '' until the code is exchanged.

-- +goose Up
ALTER TABLE oidc_auth_requests ADD COLUMN grant_session_id TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE oidc_auth_requests DROP COLUMN grant_session_id;
