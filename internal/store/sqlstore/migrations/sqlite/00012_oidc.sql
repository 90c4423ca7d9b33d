-- OpenID Provider (internal/oidcprovider): registered clients, authorization
-- requests with their codes, consents, and the grants that tie a session
-- (and so its refresh family) to the client it was issued to.
-- Timestamps are fixed-width UTC text, JSON is TEXT checked by json_valid,
-- booleans are INTEGER 0/1 (see 00002_accounts.sql).
--
-- A client secret is stored only as its SHA-256 (the secret has 256 random
-- bits); a public client has none. An authorization code is stored only as
-- its SHA-256 and spent by one UPDATE ... WHERE used_at IS NULL, so two
-- parallel exchanges cannot both win. The admin role's "*" already grants
-- clients:read and clients:write.

-- +goose Up
CREATE TABLE oidc_clients (
    id                        TEXT PRIMARY KEY NOT NULL,
    name                      TEXT NOT NULL,
    secret_hash               BLOB,
    redirect_uris             TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(redirect_uris)),
    post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(post_logout_redirect_uris)),
    grant_types               TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(grant_types)),
    scopes                    TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(scopes)),
    public                    INTEGER NOT NULL DEFAULT 0 CHECK (public IN (0, 1)),
    first_party               INTEGER NOT NULL DEFAULT 0 CHECK (first_party IN (0, 1)),
    created_at                TEXT NOT NULL,
    updated_at                TEXT NOT NULL
) STRICT;

CREATE TABLE oidc_auth_requests (
    id                    TEXT PRIMARY KEY NOT NULL,
    client_id             TEXT NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    redirect_uri          TEXT NOT NULL,
    scopes                TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(scopes)),
    state                 TEXT NOT NULL DEFAULT '',
    nonce                 TEXT NOT NULL DEFAULT '',
    response_type         TEXT NOT NULL DEFAULT '',
    response_mode         TEXT NOT NULL DEFAULT '',
    code_challenge        TEXT NOT NULL DEFAULT '',
    code_challenge_method TEXT NOT NULL DEFAULT '',
    prompt                TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(prompt)),
    max_age               INTEGER,
    login_hint            TEXT NOT NULL DEFAULT '',
    created_at            TEXT NOT NULL,
    expires_at            TEXT NOT NULL,
    login_at              TEXT,
    user_id               TEXT REFERENCES users (id) ON DELETE CASCADE,
    session_id            TEXT NOT NULL DEFAULT '',
    auth_time             TEXT,
    amr                   TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(amr)),
    code_hash             BLOB UNIQUE,
    code_expires_at       TEXT,
    used_at               TEXT
) STRICT;

CREATE INDEX oidc_auth_requests_expires_at_idx ON oidc_auth_requests (expires_at);
CREATE INDEX oidc_auth_requests_client_id_idx ON oidc_auth_requests (client_id);
CREATE INDEX oidc_auth_requests_user_id_idx ON oidc_auth_requests (user_id);

CREATE TABLE oidc_consents (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(scopes)),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (user_id, client_id)
) STRICT;

CREATE INDEX oidc_consents_client_id_idx ON oidc_consents (client_id);

CREATE TABLE oidc_grants (
    session_id TEXT PRIMARY KEY NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(scopes)),
    created_at TEXT NOT NULL
) STRICT;

CREATE INDEX oidc_grants_client_user_idx ON oidc_grants (client_id, user_id);
CREATE INDEX oidc_grants_user_id_idx ON oidc_grants (user_id);

-- +goose Down
DROP TABLE oidc_grants;
DROP TABLE oidc_consents;
DROP TABLE oidc_auth_requests;
DROP TABLE oidc_clients;
