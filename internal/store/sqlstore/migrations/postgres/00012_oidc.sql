-- OpenID Provider (internal/oidcprovider): registered clients, authorization
-- requests with their codes, consents, and the grants that tie a session
-- (and so its refresh family) to the client it was issued to.
-- Timestamps are TIMESTAMPTZ, lists JSONB.
--
-- A client secret is stored only as its SHA-256 (the secret has 256 random
-- bits); a public client has none. An authorization code is stored only as
-- its SHA-256 and spent by one UPDATE ... WHERE used_at IS NULL, so two
-- parallel exchanges cannot both win. The admin role's "*" already grants
-- clients:read and clients:write.

-- +goose Up
CREATE TABLE oidc_clients (
    id                        TEXT PRIMARY KEY,
    name                      TEXT NOT NULL,
    secret_hash               BYTEA,
    redirect_uris             JSONB NOT NULL DEFAULT '[]',
    post_logout_redirect_uris JSONB NOT NULL DEFAULT '[]',
    grant_types               JSONB NOT NULL DEFAULT '[]',
    scopes                    JSONB NOT NULL DEFAULT '[]',
    public                    BOOLEAN NOT NULL DEFAULT FALSE,
    first_party               BOOLEAN NOT NULL DEFAULT FALSE,
    created_at                TIMESTAMPTZ NOT NULL,
    updated_at                TIMESTAMPTZ NOT NULL
);

CREATE TABLE oidc_auth_requests (
    id                    TEXT PRIMARY KEY,
    client_id             TEXT NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    redirect_uri          TEXT NOT NULL,
    scopes                JSONB NOT NULL DEFAULT '[]',
    state                 TEXT NOT NULL DEFAULT '',
    nonce                 TEXT NOT NULL DEFAULT '',
    response_type         TEXT NOT NULL DEFAULT '',
    response_mode         TEXT NOT NULL DEFAULT '',
    code_challenge        TEXT NOT NULL DEFAULT '',
    code_challenge_method TEXT NOT NULL DEFAULT '',
    prompt                JSONB NOT NULL DEFAULT '[]',
    max_age               INTEGER,
    login_hint            TEXT NOT NULL DEFAULT '',
    created_at            TIMESTAMPTZ NOT NULL,
    expires_at            TIMESTAMPTZ NOT NULL,
    login_at              TIMESTAMPTZ,
    user_id               TEXT REFERENCES users (id) ON DELETE CASCADE,
    session_id            TEXT NOT NULL DEFAULT '',
    auth_time             TIMESTAMPTZ,
    amr                   JSONB NOT NULL DEFAULT '[]',
    code_hash             BYTEA UNIQUE,
    code_expires_at       TIMESTAMPTZ,
    used_at               TIMESTAMPTZ
);

CREATE INDEX oidc_auth_requests_expires_at_idx ON oidc_auth_requests (expires_at);
CREATE INDEX oidc_auth_requests_client_id_idx ON oidc_auth_requests (client_id);
CREATE INDEX oidc_auth_requests_user_id_idx ON oidc_auth_requests (user_id);

CREATE TABLE oidc_consents (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    scopes     JSONB NOT NULL DEFAULT '[]',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE INDEX oidc_consents_client_id_idx ON oidc_consents (client_id);

CREATE TABLE oidc_grants (
    session_id TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scopes     JSONB NOT NULL DEFAULT '[]',
    created_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX oidc_grants_client_user_idx ON oidc_grants (client_id, user_id);
CREATE INDEX oidc_grants_user_id_idx ON oidc_grants (user_id);

-- +goose Down
DROP TABLE oidc_grants;
DROP TABLE oidc_consents;
DROP TABLE oidc_auth_requests;
DROP TABLE oidc_clients;
